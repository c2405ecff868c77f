"""The two commands and the bad environments a newcomer or deployer can meet: each gets a clear
message, not a traceback. Subprocesses run the real manage.py; HTTP goes through the real server."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from ncmec import localdb

ROOT = Path(__file__).resolve().parent.parent


def manage(*args: str, env: dict | None = None, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, **(env or {})},
    )  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def local_url() -> str:
    return localdb.ensure_running().url


def test_a_malformed_database_url_is_named():
    result = manage("check", env={"DATABASE_URL": "mysql//nope"})
    assert result.returncode == 2
    assert "error: DATABASE_URL" in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unreachable_database_is_named_not_a_traceback():
    result = manage("serve", "--port", str(free_port()),
                    env={"DATABASE_URL": "postgresql://u:p@127.0.0.1:1/x", "SECRET_KEY": "x" * 50})  # fmt: skip
    assert result.returncode != 0
    assert "cannot connect to the database at 127.0.0.1:1 (from DATABASE_URL)" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_port_in_use_is_named():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = manage("serve", "--port", str(port))
    assert result.returncode != 0
    assert f"port {port} on 127.0.0.1 is already in use; choose another with --port" in result.stderr


def test_debug_is_off_and_a_secret_key_is_required_in_production():
    from django.conf import settings

    assert settings.DEBUG is False
    result = manage("check", env={"DATABASE_URL": local_url(), "SECRET_KEY": "", "DEBUG": "0"})
    assert result.returncode == 2
    assert "SECRET_KEY is required" in result.stderr


def test_check_deploy_is_clean_under_production_settings():
    env = {"DATABASE_URL": local_url(), "SECRET_KEY": "a" * 20 + "-production-secret-" + "b" * 30, "DEBUG": "0",
           "ALLOWED_HOSTS": "stats.example.org"}  # fmt: skip
    result = manage("check", "--deploy", "--fail-level", "WARNING", env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.fixture
def scratch_cluster(tmp_path_factory):
    """A throwaway embedded cluster (its own data folder), stopped afterwards."""
    base = Path("/tmp") / f"ncmec-test-{os.getpid()}"
    base.mkdir(exist_ok=True)
    data_dir = base / "pgdata"
    yield data_dir
    localdb.stop(data_dir)
    subprocess.run(["rm", "-rf", str(base)], check=False)


def test_a_stale_pid_file_from_a_crashed_run_is_handled(scratch_cluster):
    first = localdb.ensure_running(scratch_cluster)
    assert first.started_here
    pid = int((scratch_cluster / "postmaster.pid").read_text().splitlines()[0])
    os.kill(pid, signal.SIGKILL)
    for _ in range(50):
        if not localdb.is_running(scratch_cluster):
            break
        time.sleep(0.1)
    assert (scratch_cluster / "postmaster.pid").exists()  # what a crash leaves behind
    again = localdb.ensure_running(scratch_cluster)
    assert again.started_here
    assert localdb.is_running(scratch_cluster)


def test_a_data_folder_of_another_major_version_is_named(tmp_path):
    data_dir = tmp_path / "pgdata"
    data_dir.mkdir()
    (data_dir / "PG_VERSION").write_text("15\n")
    with pytest.raises(localdb.LocalDatabaseError) as failure:
        localdb.ensure_running(data_dir)
    message = str(failure.value)
    assert f"created by PostgreSQL 15, but this project runs PostgreSQL {localdb.bundled_major_version()}" in message
    assert "Move the folder aside" in message


def test_the_image_installs_from_the_lock_file_and_runs_as_its_own_user():
    # The compose file's wiring: tests/test_scaleout.py::test_the_compose_file_is_wired_for_scale_out
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "uv sync --frozen" in dockerfile
    assert "\nUSER ncmec" in dockerfile
    assert 'exec uv run --no-sync manage.py "$@"' in (ROOT / "docker-entrypoint.sh").read_text()


def test_no_migration_is_missing():
    result = manage("makemigrations", "--check", "--dry-run")
    assert result.returncode == 0, result.stdout + result.stderr


def test_serve_answers_graphql_and_admin_over_http_and_stops_on_ctrl_c():
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--port", str(port), "--workers", "1"], cwd=ROOT,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", headers={"Accept": "text/html"})
                page = urllib.request.urlopen(request, timeout=5)
                break
            except OSError:
                assert server.poll() is None, server.stdout.read()
                assert time.monotonic() < deadline, "serve did not answer within 60 s"
                time.sleep(0.5)
        assert page.status == 200
        assert "graphiql" in page.read().decode().lower()
        login = urllib.request.urlopen(f"http://127.0.0.1:{port}/admin/login/", timeout=5).read().decode()
        assert 'name="password"' in login
    finally:
        server.send_signal(signal.SIGINT)
        try:
            output, _ = server.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            raise
    assert server.returncode == 0, output
    assert f"GraphiQL: http://localhost:{port}/graphql" in output
    assert "Admin:" in output


def test_a_vanished_socket_file_falls_back_to_loopback_tcp(scratch_cluster):
    import psycopg

    server = localdb.ensure_running(scratch_cluster)
    assert "?host=" in server.url
    for socket_file in scratch_cluster.glob(".s.PGSQL.*"):
        socket_file.unlink()
    again = localdb.ensure_running(scratch_cluster)
    assert not again.started_here
    assert again.url.startswith("postgresql://postgres@127.0.0.1:")
    with psycopg.connect(again.url.replace("/ncmec", "/postgres")) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


@pytest.mark.parametrize("cache_mb", ["64", "0"])  # 0: no fast path; the view reads the version with its query
def test_the_database_going_away_gives_a_clear_503_and_the_service_recovers(scratch_cluster, cache_mb):
    """A server on its own cluster: stop the database under it, then bring it back."""
    url = localdb.ensure_running(scratch_cluster).url.replace("?host=", "?connect_timeout=2&host=")
    env = {"DATABASE_URL": url, "SECRET_KEY": "s" * 50, "HTTPS": "0", "DB_POOL_TIMEOUT": "2"}
    env["GRAPHQL_CACHE_MB"] = cache_mb
    assert manage("migrate", "--noinput", env=env).returncode == 0
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "manage.py", "serve", "--port", str(port), "--workers", "1", "--no-demo-admin"], cwd=ROOT,
        env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip

    def ask() -> int:
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/graphql", b'{"query": "{ dataVersion }"}', {"Content-Type": "application/json"}
        )
        try:
            response = urllib.request.urlopen(request, timeout=20)
            body = json.loads(response.read())
            assert "errors" not in body, body
            return response.status
        except urllib.error.HTTPError as error:
            unavailable = error.code == 503 and error.headers["Retry-After"] == "5"
            message = "The database is unavailable; try again in a few seconds."
            return error.code if unavailable and message in error.read().decode() else -1

    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                assert ask() == 200
                break
            except (OSError, AssertionError):
                assert server.poll() is None, server.stdout.read()
                assert time.monotonic() < deadline
                time.sleep(0.5)
        localdb.stop(scratch_cluster)
        assert ask() == 503
        localdb.ensure_running(scratch_cluster)
        recovered = time.monotonic() + 15
        while ask() != 200:  # broken pooled connections are dropped one request at a time
            assert time.monotonic() < recovered, "the service did not recover within 15 s"
            time.sleep(0.5)
    finally:
        server.send_signal(signal.SIGINT)
        server.communicate(timeout=20)
