"""Two web servers on one database, as several replicas run: an import previewed on one is
confirmed on the other, because the preview waits in the database, not on a server's disk.

Real `manage.py serve` processes over HTTP against the test database, with committed data
(transaction=True), so both servers see what the test creates.
"""

import http.cookiejar
import re
import urllib.error
import urllib.parse
import urllib.request
import uuid
from datetime import timedelta
from importlib import import_module

import pytest
from django.apps import apps as django_apps
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.utils import timezone

from bench import server
from stats.models import ImportPreview, ImportRecord, Observation, Source

pytestmark = pytest.mark.django_db(transaction=True)
STATES_2025 = "MISSING STATE,ACTIVE,RESOLVED,GRAND TOTAL\nAK,3,30,33\nNevada,4,40,44\nTotal,7,70,77\n"
PASSWORD = "a-long-test-password-1"


class Browser:
    """Just enough of a browser for the admin: cookies (shared by host, like a browser's), CSRF, forms."""

    def __init__(self) -> None:
        self.cookies = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.cookies), NoRedirect
        )  # fmt: skip

    def get(self, url: str) -> tuple[int, str]:
        return self._send(urllib.request.Request(url))

    def post(self, url: str, fields: dict, files: dict | None = None) -> tuple[int, str]:
        fields = {"csrfmiddlewaretoken": self.csrf(), **fields}
        if files:
            boundary = uuid.uuid4().hex
            parts = [
                f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
                for k, v in fields.items()
            ]
            for name, (file_name, content) in files.items():
                head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{file_name}"\r\n'
                parts.append(head.encode() + b"Content-Type: text/csv\r\n\r\n" + content + b"\r\n")
            body = b"".join(parts) + f"--{boundary}--\r\n".encode()
            content_type = f"multipart/form-data; boundary={boundary}"
        else:
            body, content_type = urllib.parse.urlencode(fields).encode(), "application/x-www-form-urlencoded"
        return self._send(urllib.request.Request(url, body, {"Content-Type": content_type}))

    def csrf(self) -> str:
        return next(c.value for c in self.cookies if c.name == "csrftoken")

    def _send(self, request) -> tuple[int, str]:
        try:
            with self.opener.open(request, timeout=60) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:  # redirects and errors: the status is the answer
            return exc.code, exc.read().decode()


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def hidden(page: str, name: str) -> str:
    match = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert match, f"no {name} field on the page"
    return match.group(1)


@pytest.fixture
def editor(transactional_db):
    """Published data, the roles (a flush by an earlier transactional test removes them), a data editor."""
    call_command("load_reports", verbosity=0)
    import_module("stats.migrations.0007_roles").create_roles(django_apps, None)
    Source.objects.create(
        slug="impact-2025", title="Our 2025 Impact", kind="impact_report", edition=2025, document="not-yet.txt"
    )
    user = User.objects.create_user("dana", password=PASSWORD, is_staff=True)
    user.groups.add(Group.objects.get(name="Data editor"))
    return user


def test_a_preview_made_on_one_server_is_confirmed_on_another(editor, database_url):
    stale = ImportPreview.objects.create(user=editor, checksum="a" * 64, file_name="old.csv", shape="long")
    ImportPreview.objects.filter(id=stale.id).update(created_at=timezone.now() - timedelta(days=2))
    env = {"SECRET_KEY": "two-servers-test-" * 4, "HTTPS": "0"}
    with (
        server.running(database_url, workers=1, **env) as first,
        server.running(database_url, workers=1, **env) as second,
    ):
        assert not ImportPreview.objects.filter(id=stale.id).exists()  # serve expired it at start
        one, two = f"http://127.0.0.1:{first}", f"http://127.0.0.1:{second}"
        browser = Browser()
        assert browser.get(f"{one}/admin/login/")[0] == 200
        assert browser.post(f"{one}/admin/login/?next=/admin/", {"username": "dana", "password": PASSWORD})[0] == 302
        assert browser.get(f"{one}/admin/stats/observation/import/")[0] == 200
        table = {"shape": "table", "indicator": "missing.cases", "year": "2025", "source": "impact-2025",
                 "rows": "state", "columns": "case_status", "title": "", "reason": ""}  # fmt: skip
        files = {"file": ("states-2025.csv", STATES_2025.encode())}
        status, preview = browser.post(f"{one}/admin/stats/observation/import/", table, files)
        assert status == 200
        assert "<b>9</b> new" in preview
        assert not Observation.objects.filter(year=2025).exists()

        confirm = {"preview": hidden(preview, "preview"), "checksum": hidden(preview, "checksum"), "confirm": "1"}
        status, _ = browser.post(f"{two}/admin/stats/observation/import/", confirm)
        assert status == 302
        assert Observation.objects.filter(year=2025, source__slug="impact-2025").count() == 9
        record = ImportRecord.objects.get(status=ImportRecord.Status.COMMITTED, file_name="states-2025.csv")
        assert (record.user, record.new) == (editor, 9)
        assert not ImportPreview.objects.exists()

        # Confirmed once: the same confirm, on either server, is refused and writes nothing more.
        status, again = browser.post(f"{one}/admin/stats/observation/import/", confirm)
        assert status == 200
        assert "this preview is not yours, has expired or was already confirmed" in again
        assert (
            ImportRecord.objects.filter(status=ImportRecord.Status.COMMITTED, file_name="states-2025.csv").count() == 1
        )
