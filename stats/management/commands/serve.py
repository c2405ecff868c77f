"""`manage.py serve`: the whole service in one command.

Database up (settings start the embedded PostgreSQL in local mode), migrations applied, import
previews left unconfirmed for a day deleted, the published reports loaded when the warehouse is
empty, static files collected, then uvicorn. With ``--no-migrate`` (web replicas in a deployment)
it only serves: a one-off job runs ``migrate`` and ``load_reports`` once, and the image has its
static files collected at build.
"""

from __future__ import annotations

import io
import secrets
import socket

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import OperationalError, connection, connections


def _database_label() -> str:
    db = settings.DATABASES["default"]
    where = f"{db.get('HOST') or 'localhost'}{':' + str(db['PORT']) if db.get('PORT') else ''}"
    return where + (" (the embedded PostgreSQL)" if settings.LOCAL_MODE else " (from DATABASE_URL)")


def port_is_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


class Command(BaseCommand):
    help = "Run the service: database, migrations, published data and the web server (GraphQL + admin)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1", help="Address to listen on (default 127.0.0.1).")
        parser.add_argument("--port", type=int, default=8000, help="Port to listen on (default 8000).")
        parser.add_argument("--workers", type=int, default=2, help="Server processes (default 2).")
        parser.add_argument("--no-demo-admin", action="store_true", help="Do not create the local demo admin account.")
        parser.add_argument("--access-log", action="store_true", help="Log every request (costs ~5 ms a request).")
        parser.add_argument(
            "--no-migrate",
            action="store_true",
            help="Serve only: no migrations, data loading or collectstatic (a one-off job does them once).",
        )

    def handle(
        self,
        *args,
        host: str,
        port: int,
        workers: int,
        no_demo_admin: bool,
        access_log: bool,
        no_migrate: bool,
        **options,
    ):
        if not port_is_free(host, port):
            raise CommandError(f"port {port} on {host} is already in use; choose another with --port")
        try:
            connection.ensure_connection()
        except OperationalError as exc:
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
            raise CommandError(f"cannot connect to the database at {_database_label()}: {reason}") from exc
        if not no_migrate:
            self._prepare()
        login = self._demo_admin() if settings.LOCAL_MODE and not no_demo_admin else None
        base = f"http://{'localhost' if host in ('127.0.0.1', '0.0.0.0') else host}:{port}"
        self.stdout.write(self.style.SUCCESS(f"\nNCMEC statistics warehouse on {base}"))
        self.stdout.write(f"  GraphiQL: {base}/graphql")
        self.stdout.write(f"  Admin:    {base}/admin/")
        if login:
            self.stdout.write(f"  Log in as {login[0]!r} with password {login[1]!r}")
        elif settings.LOCAL_MODE and not no_demo_admin:
            self.stdout.write("  Log in with the account you created (manage.py changepassword admin resets it)")
        else:
            self.stdout.write("  Create a staff account with: uv run manage.py createsuperuser")
        self.stdout.write("  Stop with Ctrl-C\n")
        connections.close_all()  # the server processes open their own
        import uvicorn

        uvicorn.run(
            "ncmec.asgi:application",
            host=host,
            port=port,
            workers=workers,
            log_level="info",
            access_log=access_log,
            lifespan="off",
            proxy_headers=bool(getattr(settings, "SECURE_PROXY_SSL_HEADER", None)),
        )

    def _prepare(self) -> None:
        """What one process does before serving: migrate, expire old previews, load the reports into an empty
        warehouse, collectstatic."""
        call_command("migrate", interactive=False, verbosity=0)
        call_command("expire_import_previews", stdout=io.StringIO())
        from stats.models import Observation

        if not Observation.objects.exists():
            self.stdout.write("The warehouse is empty: loading the published reports...")
            call_command("load_reports", stdout=self.stdout)
        call_command("collectstatic", interactive=False, verbosity=0)

    def _demo_admin(self) -> tuple[str, str] | None:
        """Create the local demo superuser once, with a generated password kept in .local/."""
        from django.contrib.auth import get_user_model

        User = get_user_model()
        password_file = settings.LOCAL_DIR / "admin-password"
        if User.objects.filter(username="admin").exists():
            if password_file.exists():
                return "admin", password_file.read_text().strip()
            return None
        password = secrets.token_urlsafe(12)
        User.objects.create_superuser("admin", "admin@localhost", password)
        settings.LOCAL_DIR.mkdir(exist_ok=True)
        password_file.write_text(password)
        password_file.chmod(0o600)
        return "admin", password
