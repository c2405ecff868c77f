"""Shared test set-up: the test database holds the published reports (loaded once per run),
and each test runs in a transaction that is rolled back."""

from pathlib import Path

import pytest
from django.core.management import call_command

from stats.services.reports import FIXTURES_DIR
from tests.builders import Builder

SEEDS_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "seeds"


@pytest.fixture(scope="session", autouse=True)
def _static_files_without_collectstatic():
    """Tests render admin pages without running collectstatic: serve static files from the apps."""
    from django.conf import settings

    settings.STORAGES = {
        **settings.STORAGES,
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    settings.WHITENOISE_USE_FINDERS = True


@pytest.fixture(autouse=True)
def _empty_response_cache(settings):
    """Each test starts without cached GraphQL answers or documents (they are per process), and
    without the per-client time budget: every test client is 127.0.0.1 (tests/graphql/test_ratelimit.py
    turns it on)."""
    from stats.graphql import documents
    from stats.graphql.cache import responses

    responses.clear()
    documents.clear()
    settings.GRAPHQL_RATE_BUDGET_MS = 0


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    # tests/test_fixtures.py fails when the published data is missing; here we just load it.
    if (FIXTURES_DIR / "catalog.yaml").exists():
        with django_db_blocker.unblock():
            call_command("load_reports", verbosity=0)


@pytest.fixture(scope="module")
def database_url(django_db_setup, django_db_blocker) -> str:
    """The test database's URL, for a real server (`serve`) started by a test."""
    from django.db import connection

    db = connection.settings_dict
    host = db["HOST"]
    if host.startswith("/"):
        return f"postgresql://{db['USER']}@:{db['PORT']}/{db['NAME']}?host={host}"
    return f"postgresql://{db['USER']}:{db['PASSWORD']}@{host}:{db['PORT']}/{db['NAME']}"


@pytest.fixture
def build(db) -> Builder:
    """Small builders for catalog rows and observations (see tests/builders.py)."""
    return Builder()


@pytest.fixture
def editor(db, client):
    """A staff user in the Data editor role, logged in on ``client``."""
    from django.contrib.auth.models import Group, User

    user = User.objects.create_user("editor", password="pw-for-tests-only", is_staff=True)
    user.groups.add(Group.objects.get(name="Data editor"))
    client.force_login(user)
    return user


@pytest.fixture
def seeds_dir() -> Path:
    if not SEEDS_DIR.is_dir():
        pytest.skip(f"the source documents are not here ({SEEDS_DIR}): a user's clone has no ../shared; CI has")
    return SEEDS_DIR
