"""The two staff roles: Data editor (import, change, flag, export) and Viewer (read-only, export).

Exports need the view permission (settings.IMPORT_EXPORT_EXPORT_PERMISSION_CODE), so both roles export.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

CATALOG = ["topic", "source", "indicator", "dimension", "member", "memberalias"]
EDITOR = (
    ["view_observation", "change_observation", "import_observation", "view_restatement", "view_importrecord"]
    + [f"view_{m}" for m in CATALOG]
    + [f"change_{m}" for m in CATALOG]
    + [f"add_{m}" for m in ["topic", "source", "indicator", "dimension", "member", "memberalias"]]
)
VIEWER = ["view_observation", "view_restatement", "view_importrecord"] + [f"view_{m}" for m in CATALOG]
ROLES = {"Data editor": EDITOR, "Viewer": VIEWER}


def create_roles(apps, schema_editor):
    for app_config in apps.get_app_configs():  # permissions are normally created after migrations
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for name, codenames in ROLES.items():
        group, _ = Group.objects.get_or_create(name=name)
        permissions = Permission.objects.filter(content_type__app_label="stats", codename__in=codenames)
        missing = set(codenames) - set(permissions.values_list("codename", flat=True))
        if missing:
            raise RuntimeError(f"role {name}: permissions not found: {sorted(missing)}")
        group.permissions.set(permissions)


def delete_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [("stats", "0006_observation_import_permission"), ("auth", "0012_alter_user_first_name_max_length")]

    operations = [migrations.RunPython(create_roles, delete_roles)]
