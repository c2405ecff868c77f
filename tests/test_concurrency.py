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
from django.db import connection, transaction

from stats.models import DataVersion, ImportRecord, Observation, Unit
from stats.services.errors import BusyError, ConflictError, ImportFailed
from stats.services.observations import ImportResult, ObservationRow, observation_correct, observations_import

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
            while True:  # until the child's COPY (into its staging table) or merge is under way
                cursor.execute("SELECT 1 FROM pg_stat_activity WHERE (query LIKE 'COPY import_staging%%' "
                               "OR query LIKE '%%INSERT INTO stats_observation%%') "
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
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE (query LIKE 'COPY import_staging%%' "
                           "OR query LIKE '%%INSERT INTO stats_observation%%') "
                           "AND pid <> pg_backend_pid() AND state <> 'idle'")  # fmt: skip
            if cursor.fetchone()[0] == 0:
                break
            time.sleep(0.05)
    assert (Observation.objects.count(), DataVersion.stamp(), ImportRecord.objects.count()) == before
    assert not Observation.objects.filter(indicator__code__startswith="kill.").exists()


class HeldImport:
    """An import in its own thread that, once it has written, waits (holding its locks) until released."""

    def __init__(self, rows, **options):
        self.written = threading.Event()
        self.release = threading.Event()
        self.outcome = None

        def hold(_count):
            self.written.set()
            assert self.release.wait(timeout=120), "the test never released the import"

        def run():
            try:
                self.outcome = observations_import(rows=rows, progress=hold, **options)
            except Exception as exc:
                self.outcome = exc
            finally:
                connection.close()

        self.thread = threading.Thread(target=run)

    def __enter__(self):
        self.thread.start()
        assert self.written.wait(timeout=120), "the import did not get to writing"
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.thread.join(timeout=120)


def in_thread(job):
    """Run ``job`` on its own connection; returns its result or exception (None if it did not end in time)."""
    outcome = []

    def run():
        try:
            outcome.append(job())
        except Exception as exc:
            outcome.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=60)
    return outcome[0] if outcome else None


def test_a_correction_completes_while_an_import_is_being_written(catalog):
    observations_import(rows=rows("Nevada"))
    nevada = Observation.objects.get(indicator__code="conc.cases")
    version = DataVersion.current()
    with HeldImport(rows("Alaska", "Texas")) as held:
        corrected = in_thread(
            lambda: observation_correct(observation_id=nevada.id, value=Decimal("12"), reason="erratum")
        )
        assert isinstance(corrected, Observation), corrected
        assert held.thread.is_alive()  # the import is still uncommitted: the correction did not wait for it
        assert DataVersion.current() > version  # the correction's own bump is visible at once
    assert isinstance(held.outcome, ImportResult), held.outcome
    assert held.outcome.new == 2
    assert Observation.objects.get(id=nevada.id).corrected_value == 12
    assert DataVersion.current() >= version + 2  # the import bumped too, at its commit


def test_a_correction_of_a_figure_an_import_is_rewriting_is_told_to_try_again(catalog):
    observations_import(rows=rows("Nevada"))
    nevada = Observation.objects.get(indicator__code="conc.cases")
    with HeldImport(rows("Nevada", value="11"), reason="re-issued table") as held:
        refused = in_thread(
            lambda: observation_correct(observation_id=nevada.id, value=Decimal("12"), reason="erratum")
        )
        assert isinstance(refused, BusyError), refused
        assert str(refused) == "an import is being written; try again in a moment"
        assert held.thread.is_alive()  # told while the import still held the figure, not after it
    assert isinstance(held.outcome, ImportResult), held.outcome
    nevada.refresh_from_db()
    assert (nevada.value, nevada.corrected_value, nevada.version) == (11, None, 2)
    again = observation_correct(observation_id=nevada.id, value=Decimal("12"), reason="erratum")
    assert again.corrected_value == 12


def test_an_edit_holding_a_figure_an_import_needs_does_not_deadlock_and_is_not_overwritten(catalog):
    """The edit has locked the figure; the import (which has written new rows) waits for it; the edit saves,
    and the import, planned on the figure as it was, refuses instead of overwriting the correction."""
    observations_import(rows=rows("Nevada"))
    nevada = Observation.objects.get(indicator__code="conc.cases")
    locked, import_waits = threading.Event(), threading.Event()

    def edit():
        with transaction.atomic():
            Observation.objects.select_for_update().get(id=nevada.id)
            locked.set()
            assert import_waits.wait(timeout=60)
            return observation_correct(observation_id=nevada.id, value=Decimal("12"), reason="erratum")

    def import_both():
        assert locked.wait(timeout=60)
        return observations_import(rows=rows("Texas", "Nevada", value="11"), reason="re-issued table")

    def watch():
        with connection.cursor() as cursor:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:  # until the import waits for the edit's row lock
                # The only lock wait here: the import, at the figure the edit holds.
                cursor.execute("SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND wait_event = "
                               "'transactionid' AND query LIKE '%%stats_observation%%'")  # fmt: skip
                if cursor.fetchone():
                    import_waits.set()
                    return True
                time.sleep(0.01)
        return False

    outcomes = run_at_once(edit, import_both, watch)
    assert outcomes[2] is True
    assert isinstance(outcomes[0], Observation), outcomes[0]
    assert isinstance(outcomes[1], ImportFailed), outcomes[1]
    assert f"observation #{nevada.id} was changed by someone else while this import ran" in str(outcomes[1])
    nevada.refresh_from_db()
    assert (nevada.value, nevada.corrected_value) == (10, 12)
    assert Observation.objects.filter(indicator__code="conc.cases").count() == 1  # the import wrote nothing
