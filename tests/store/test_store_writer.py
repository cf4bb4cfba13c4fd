"""The writer thread: data reaches disk quickly, in few transactions, and survives failures."""

from __future__ import annotations

import resource
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, event, func, select
from sqlalchemy.exc import OperationalError

from infusion_monitor.devices.base import DeviceEvent, DeviceEventKind
from infusion_monitor.store import Database, Repository, StoreWriter
from infusion_monitor.store.models import ReadingRow
from infusion_monitor.vitals import Reading, Vital

T0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)


def reading(i: int) -> Reading:
    return Reading(Vital.HR, 60.0 + i % 40, t_received=T0 + timedelta(milliseconds=i))


@pytest.fixture
def sid(db: Database) -> int:
    return db.repository.create_session(source="record", protocol="p", started=T0)


class FlakyRepository:
    """Fails the first ``failures`` writes like a locked database, then delegates."""

    def __init__(self, inner: Repository, failures: int) -> None:
        self.inner = inner
        self.failures = failures
        self.calls = 0

    def insert_batch(
        self, readings: list[tuple[int, Reading]], events: list[tuple[int, DeviceEvent]]
    ) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise OperationalError("INSERT INTO readings", {}, Exception("database is locked"))
        self.inner.insert_batch(readings, events)


def test_data_visible_to_another_connection_within_a_second(
    db: Database, db_url: str, sid: int
) -> None:
    writer = StoreWriter(db.repository)
    other = create_engine(db_url)  # independent engine, as another process would have
    try:
        writer.submit(sid, reading(1))
        writer.submit(sid, DeviceEvent(DeviceEventKind.LINK_UP, t_received=T0))
        deadline = time.monotonic() + 1.0
        count = 0
        while time.monotonic() < deadline:
            with other.connect() as conn:
                count = conn.execute(
                    select(func.count()).select_from(ReadingRow).where(ReadingRow.session_id == sid)
                ).scalar_one()
            if count == 1:
                break
            time.sleep(0.02)
        assert count == 1, "a submitted reading was not on disk within 1 s"
    finally:
        other.dispose()
        writer.close()
    assert db.repository.device_events(sid)[0].kind is DeviceEventKind.LINK_UP


def test_batches_use_few_transactions(db: Database, sid: int) -> None:
    commits = 0

    def count(_conn: object) -> None:
        nonlocal commits
        commits += 1

    event.listen(db.engine, "commit", count)
    writer = StoreWriter(db.repository)
    for i in range(2000):
        writer.submit(sid, reading(i))
    assert writer.flush(timeout=10)
    writer.close()
    event.remove(db.engine, "commit", count)
    assert writer.written_readings == 2000 and writer.pending == 0
    assert commits <= 20, f"{commits} commits for 2000 readings"
    assert db.repository.readings(sid) == [reading(i) for i in range(2000)]


def test_failures_keep_everything_and_recover(db: Database, sid: int) -> None:
    errors: list[Exception] = []
    recovered = threading.Event()
    flaky = FlakyRepository(db.repository, failures=3)
    writer = StoreWriter(
        flaky, flush_interval=0.05, on_error=errors.append, on_recovered=recovered.set
    )
    for i in range(50):
        writer.submit(sid, reading(i))
    time.sleep(0.1)
    for i in range(50, 100):  # keeps accepting while failing
        writer.submit(sid, reading(i))
    assert recovered.wait(10), "on_recovered never fired"
    assert writer.flush(timeout=10)
    writer.close()
    assert len(errors) == 1 and isinstance(errors[0], OperationalError)
    assert flaky.calls > 3
    assert db.repository.readings(sid) == [reading(i) for i in range(100)]


def test_flush_blocks_until_committed_and_times_out_while_failing(
    db: Database, sid: int
) -> None:
    writer = StoreWriter(db.repository, flush_interval=30)  # flush must not wait for the timer
    writer.submit(sid, reading(0))
    assert writer.flush(timeout=5)
    assert len(db.repository.readings(sid)) == 1
    writer.close()

    stuck = StoreWriter(FlakyRepository(db.repository, failures=10**9))
    stuck.submit(sid, reading(1))
    assert not stuck.flush(timeout=0.3)
    assert stuck.pending == 1
    assert not stuck.close(timeout=0.3)  # gives up so the app can exit, and says so
    assert stuck.pending == 1


def test_close_writes_everything_and_stops_thread(db: Database, sid: int) -> None:
    writer = StoreWriter(db.repository, flush_interval=30)
    for i in range(10):
        writer.submit(sid, reading(i))
    assert writer.close()
    assert not any(t.name == "store-writer" and t.is_alive() for t in threading.enumerate())
    assert len(db.repository.readings(sid)) == 10
    with pytest.raises(RuntimeError):
        writer.submit(sid, reading(11))


def test_unstorable_items_fail_in_the_caller(db: Database, sid: int) -> None:
    writer = StoreWriter(db.repository)
    try:
        with pytest.raises(ValueError, match="no time"):
            writer.submit(sid, Reading(Vital.HR, 60.0))
        with pytest.raises(ValueError, match="naive"):
            writer.submit(sid, Reading(Vital.HR, 60.0, t_received=datetime(2026, 1, 1)))
        assert writer.pending == 0
    finally:
        writer.close()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_idle_writer_does_not_spin(db: Database) -> None:
    # One engine: this measures the idle writer thread's own CPU, and nothing is written.
    writer = StoreWriter(db.repository, flush_interval=0.01)
    try:
        before = resource.getrusage(resource.RUSAGE_SELF)
        time.sleep(0.5)
        after = resource.getrusage(resource.RUSAGE_SELF)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        assert cpu < 0.1, f"idle writer used {cpu:.2f} s of CPU in 0.5 s"
    finally:
        writer.close()
