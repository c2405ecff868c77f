from pathlib import Path

from strawberry.printer import print_schema

from stats.graphql.schema import schema

SCHEMA_FILE = Path(__file__).resolve().parent.parent.parent / "schema.graphql"


def test_the_checked_in_schema_matches_the_code():
    assert SCHEMA_FILE.read_text().strip() == print_schema(schema).strip(), (
        "schema.graphql is out of date: "
        "uv run manage.py export_schema stats.graphql.schema:schema --path schema.graphql"
    )


def test_every_type_field_argument_and_enum_value_is_described():
    """Also where node is missing (the linter's rules, tests/graphql/test_schema_lint.py, check the same and more)."""
    undescribed = []
    for name, graphql_type in schema._schema.type_map.items():
        if name.startswith("__") or name in {"String", "Int", "Boolean", "ID", "Float", "Date"}:
            continue
        if not graphql_type.description:
            undescribed.append(name)
        for field_name, field in (getattr(graphql_type, "fields", None) or {}).items():
            if not field.description:
                undescribed.append(f"{name}.{field_name}")
            for argument_name, argument in (getattr(field, "args", None) or {}).items():
                if not argument.description:
                    undescribed.append(f"{name}.{field_name}({argument_name})")
        for value_name, value in (getattr(graphql_type, "values", None) or {}).items():
            if not value.description:
                undescribed.append(f"{name}.{value_name}")
    assert undescribed == []
