"""Two editors, two imports at once: nothing is silently overwritten, nothing interleaves.

These tests need several real connections that see each other's commits, so they run with
committed data (transaction=True) and create everything they use.
"""

import os
import signal
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest
from django.db import connection

from stats.models import DataVersion, ImportRecord, Observation, Unit
from stats.services.errors import ConflictError, ImportFailed
from stats.services.observations import ObservationRow, observation_correct, observations_import

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parent.parent


def run_at_once(*jobs):
    """Run each job in its own thread (own database connection), started together."""
    barrier = threading.Barrier(len(jobs))
    outcomes = [None] * len(jobs)

    def worker(i, job):
        try:
            barrier.wait()
            outcomes[i] = job()
        except Exception as exc:
            outcomes[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i, job)) for i, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return outcomes


@pytest.fixture
def catalog(build):
    build.indicator("conc.cases", unit=Unit.COUNT)
    state = build.dimension("conc_state")
    for order, name in enumerate(["Nevada", "Alaska", "Texas"]):
        build.member(state, name, order=order)
    build.source("conc-2025", edition=2025)


def rows(*states, value="10"):
    return [
        ObservationRow(
            indicator="conc.cases",
            source="conc-2025",
            year=2025,
            members={"conc_state": s},
            value_text=value,
            quote="q",
            row=i + 2,
        )
        for i, s in enumerate(states)
    ]


def test_two_editors_correcting_one_observation_one_wins_one_is_told(catalog):
    observations_import(rows=rows("Nevada"))
    obs = Observation.objects.get(indicator__code="conc.cases")
    outcomes = run_at_once(
        lambda: observation_correct(observation_id=obs.id, value=Decimal("11"), reason="A", expected_version=1),
        lambda: observation_correct(observation_id=obs.id, value=Decimal("12"), reason="B", expected_version=1),
    )
    conflicts = [o for o in outcomes if isinstance(o, ConflictError)]
    saved = [o for o in outcomes if isinstance(o, Observation)]
    assert len(conflicts) == 1
    assert len(saved) == 1
    obs.refresh_from_db()
    assert obs.version == 2
    assert obs.corrected_value == saved[0].corrected_value


def test_two_imports_of_the_same_rows_are_serialized_never_interleaved(catalog):
    outcomes = run_at_once(
        lambda: observations_import(rows=rows("Nevada", "Alaska", value="10")),
        lambda: observations_import(rows=rows("Alaska", "Texas", value="20")),
    )
    failures = [o for o in outcomes if isinstance(o, ImportFailed)]
    assert len(failures) == 1, outcomes
    assert "conflicts with existing observation" in str(failures[0])
    values = Observation.objects.filter(indicator__code="conc.cases").values_list("value", flat=True)
    # All rows of exactly one import are there: 10/10 (first won) or 20/20 (second won), never a mix.
    assert sorted(values) in ([Decimal(10), Decimal(10)], [Decimal(20), Decimal(20)])


def test_two_imports_of_different_rows_both_land(catalog):
    outcomes = run_at_once(
        lambda: observations_import(rows=rows("Nevada")),
        lambda: observations_import(rows=rows("Texas")),
    )
    assert all(not isinstance(o, Exception) for o in outcomes), outcomes
    assert Observation.objects.filter(indicator__code="conc.cases").count() == 2


def test_an_import_killed_mid_write_leaves_the_warehouse_exactly_as_before(build, tmp_path):
    """`import_facts` in its own process, killed (SIGKILL) while it copies rows: PostgreSQL rolls it all back."""
    build.source("kill-2025", edition=2025)
    state = build.dimension("kill_state")
    for order in range(40):
        build.member(state, f"S{order:02d}", order=order)
    codes = [build.indicator(f"kill.i{i:02d}", unit=Unit.COUNT).code for i in range(20)]
    path = tmp_path / "big.csv"
    with path.open("w") as handle:
        handle.write("indicator,source,year,kill_state,value,quote\n")
        for code in codes:
            for year in range(1984, 2101):
                handle.writelines(f"{code},kill-2025,{year},S{s:02d},{year + s},q\n" for s in range(40))
    before = (Observation.objects.count(), DataVersion.stamp(), ImportRecord.objects.count())
    settings = connection.settings_dict
    url = f"postgresql://{settings['USER']}@/{settings['NAME']}?host={settings['HOST']}&port={settings['PORT']}"
    env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": "k" * 50, "HTTPS": "0"}
    command = [sys.executable, "manage.py", "import_facts", str(path), "--confirm-years-outside-edition"]
    child = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        with connection.cursor() as cursor:
            while True:  # until the child's COPY is under way
                cursor.execute("SELECT 1 FROM pg_stat_activity WHERE query LIKE 'COPY stats_observation%%' "
                               "AND state = 'active' AND pid <> pg_backend_pid()")  # fmt: skip
                if cursor.fetchone():
                    break
                assert child.poll() is None, "the import ended before it was killed: make the file bigger"
                assert time.monotonic() < deadline
                time.sleep(0.01)
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=30)
    with connection.cursor() as cursor:
        while True:  # the server notices the lost client and rolls its transaction back
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY stats_observation%%' "
                           "AND pid <> pg_backend_pid() AND state <> 'idle'")  # fmt: skip
            if cursor.fetchone()[0] == 0:
                break
            time.sleep(0.05)
    assert (Observation.objects.count(), DataVersion.stamp(), ImportRecord.objects.count()) == before
    assert not Observation.objects.filter(indicator__code__startswith="kill.").exists()
