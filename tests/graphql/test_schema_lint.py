"""schema.graphql passes graphql-schema-linter's description rules: GraphiQL's docs panel answers
"what does this argument mean?" for every argument, enum value and input field."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
FRONTEND = ROOT / "frontend"
LINTER = FRONTEND / "node_modules" / ".bin" / "graphql-schema-linter"
RULES = ",".join(
    [
        "arguments-have-descriptions",
        "deprecations-have-a-reason",
        "descriptions-are-capitalized",
        "enum-values-have-descriptions",
        "fields-have-descriptions",
        "input-object-values-have-descriptions",
        "types-have-descriptions",
    ]
)


def unavailable(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


@pytest.fixture(scope="module")
def linter() -> Path:
    """The linter pinned in frontend/package-lock.json, installed there with `npm ci` on first use."""
    if not LINTER.exists():
        missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
        if missing:
            unavailable(
                f"{' and '.join(missing)} not found: graphql-schema-linter needs them (apt-get install nodejs npm)"
            )
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=FRONTEND, check=True, timeout=900)
    return LINTER


def lint(linter: Path, schema: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(linter), "--rules", RULES, "--format", "text", "--stdin"],
        input=schema, capture_output=True, text=True, cwd=ROOT, timeout=120,
    )  # fmt: skip


@pytest.mark.timeout(1200)  # the first run installs frontend/ (npm ci)
def test_the_schema_passes_the_description_rules(linter):
    result = lint(linter, (ROOT / "schema.graphql").read_text())
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_linter_refuses_an_undescribed_argument(linter):
    """The rules are on: a schema like ours with one undescribed argument fails."""
    schema = '"""Read."""\ntype Query {\n  """One thing."""\n  thing(code: String!): String\n}\n'
    result = lint(linter, schema)
    assert result.returncode != 0
    assert "The `code` argument of `thing` is missing a description." in result.stdout
