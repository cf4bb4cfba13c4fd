"""Storage faults, for real: locks from another process or connection, a full memory buffer,
and database files the app must refuse at start without touching them."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from infusion_monitor.devices.base import DeviceEventKind
from infusion_monitor.store import Database, StoreWriter, open_database
from infusion_monitor.vitals import Reading, Vital
from tests.storage_faults import hold_write_lock, release

T0 = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)


def reading(i: int) -> Reading:
    return Reading(Vital.HR, 40.0 + i % 100, t_received=T0 + timedelta(milliseconds=i))


class Episodes:
    """What the writer reported, with the monotonic time of each report."""

    def __init__(self) -> None:
        self.log: list[tuple[str, float, object]] = []
        self.changed = threading.Event()

    def error(self, exc: Exception) -> None:
        self.log.append(("error", time.monotonic(), exc))
        self.changed.set()

    def recovered(self) -> None:
        self.log.append(("recovered", time.monotonic(), None))
        self.changed.set()

    def overflow(self, dropped: int) -> None:
        self.log.append(("overflow", time.monotonic(), dropped))

    def kinds(self) -> list[str]:
        return [k for k, _, _ in self.log]

    def writer(self, db: Database, **kw: object) -> StoreWriter:
        return StoreWriter(db.repository, on_error=self.error, on_recovered=self.recovered,
                           on_overflow=self.overflow, **kw)  # type: ignore[arg-type]


def wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture
def sqlite_db(sqlite_url: str) -> Iterator[Database]:
    database = open_database(sqlite_url)
    yield database
    database.close()


def db_file(database: Database) -> Path:
    return Path(str(database.engine.url.database))


def test_busy_timeout_is_five_seconds_and_a_shorter_lock_is_no_fault(sqlite_db: Database):
    with sqlite_db.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
    sid = sqlite_db.repository.create_session(source="record", protocol="p", started=T0)
    seen = Episodes()
    writer = seen.writer(sqlite_db)
    holder = hold_write_lock(db_file(sqlite_db))
    try:
        for i in range(200):
            writer.submit(sid, reading(i))
        time.sleep(2.0)  # the lock lasts 2 s: the write waits inside SQLite, then goes through
    finally:
        release(holder)
    assert writer.flush(30)
    writer.close()
    assert seen.kinds() == []
    assert len(sqlite_db.repository.readings(sid)) == 200


def test_sqlite_lock_past_the_busy_timeout_is_a_fault_and_loses_nothing(sqlite_db: Database):
    sid = sqlite_db.repository.create_session(source="record", protocol="p", started=T0)
    seen = Episodes()
    writer = seen.writer(sqlite_db)
    holder = hold_write_lock(db_file(sqlite_db))
    t_lock = time.monotonic()
    try:
        n = 0
        while not seen.log:  # readings keep coming while the store is locked
            writer.submit(sid, reading(n))
            n += 1
            time.sleep(0.01)
            assert time.monotonic() - t_lock < 60, "no storage fault reported"
        for _ in range(300):
            writer.submit(sid, reading(n))
            n += 1
        assert writer.pending > 0 and writer.failing
    finally:
        release(holder)
    assert writer.flush(60)
    writer.close()
    kind, t_error, exc = seen.log[0]
    assert kind == "error" and "locked" in str(exc)
    print(f"\nSQLite lock detected after {t_error - t_lock:.2f} s (busy timeout 5 s)")
    assert t_error - t_lock >= 4.5  # not before the busy timeout: a shorter lock is no fault
    assert seen.kinds() == ["error", "recovered"]
    values = [r.t_received for r in sqlite_db.repository.readings(sid)]
    assert len(values) == n and len(set(values)) == n  # every one, once


@pytest.mark.postgres
def test_postgres_table_lock_is_a_fault_after_the_stall_time(pg_url: str):
    database = open_database(pg_url)
    other = create_engine(pg_url)
    try:
        sid = database.repository.create_session(source="record", protocol="p", started=T0)
        seen = Episodes()
        writer = seen.writer(database, stall_s=3.0)
        with other.connect() as conn:
            tx = conn.begin()
            conn.execute(text("LOCK TABLE readings IN ACCESS EXCLUSIVE MODE"))
            t_lock = time.monotonic()
            for i in range(100):
                writer.submit(sid, reading(i))
            assert seen.changed.wait(60), "a blocked write was never reported"
            for i in range(100, 150):
                writer.submit(sid, reading(i))
            tx.rollback()
        assert writer.flush(60)
        writer.close()
        kind, t_error, exc = seen.log[0]
        print(f"\nPostgreSQL table lock detected after {t_error - t_lock:.2f} s (stall 3 s)")
        assert kind == "error" and "waited" in str(exc)
        assert t_error - t_lock >= 3.0
        assert seen.kinds() == ["error", "recovered"]
        assert len(database.repository.readings(sid)) == 150
    finally:
        other.dispose()
        database.close()


def test_a_full_memory_buffer_counts_what_it_drops_and_records_it(sqlite_db: Database):
    sid = sqlite_db.repository.create_session(source="record", protocol="p", started=T0)
    seen = Episodes()
    writer = seen.writer(sqlite_db, max_pending=50, max_batch=20)
    holder = hold_write_lock(db_file(sqlite_db))
    try:
        for i in range(20):
            writer.submit(sid, reading(i))
        wait_until(lambda: writer.failing, 60, "the storage fault")
        for i in range(20, 130):
            writer.submit(sid, reading(i))
        assert writer.pending == 50 and writer.dropped == 80
        overflows = [v for k, _, v in seen.log if k == "overflow"]
        assert overflows == [1]  # once, at the first reading lost
    finally:
        release(holder)
    assert writer.flush(60)
    writer.close()
    assert len(sqlite_db.repository.readings(sid)) == 50
    gaps = [e for e in sqlite_db.repository.device_events(sid) if e.kind is DeviceEventKind.GAP]
    assert len(gaps) == 1 and gaps[0].count == 80
    assert "not saved: 80 readings" in gaps[0].detail


# -- start-up -----------------------------------------------------------------------------------
def _ours(path: Path) -> bytes:
    open_database(f"sqlite:///{path}").close()
    con = sqlite3.connect(path)
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    return path.read_bytes()


def make_bad(kind: str, path: Path) -> None:
    if kind == "random bytes":
        path.write_bytes(os.urandom(65536))
    elif kind == "truncated":
        data = _ours(path)
        path.write_bytes(data[: len(data) // 2])
    elif kind == "damaged page":
        data = bytearray(_ours(path))
        page = 4096
        data[5 * page: 6 * page] = os.urandom(page)
        path.write_bytes(bytes(data))
    elif kind == "foreign":
        con = sqlite3.connect(path)
        con.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
        con.commit()
        con.close()
    elif kind == "text":
        path.write_text("%PDF-1.4 not a database\n" * 100)
    elif kind == "newer schema":
        _ours(path)
        con = sqlite3.connect(path)
        con.execute("UPDATE alembic_version SET version_num = 'f0f0f0f0'")
        con.commit()
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.close()
    elif kind == "directory":
        path.mkdir()


BAD = ["random bytes", "truncated", "damaged page", "foreign", "text", "newer schema",
       "directory"]
COMMANDS = {
    "sessions": ["sessions"],
    "export": ["export", "1", "--format", "csv"],
    "record": ["record", "--protocol", "datex-s5", "--port", "loop://", "--seconds", "1"],
}


def fingerprint(path: Path) -> bytes | list[str]:
    return sorted(os.listdir(path)) if path.is_dir() else path.read_bytes()


@pytest.mark.parametrize("kind", BAD)
def test_a_bad_database_file_is_one_clear_line_and_left_untouched(tmp_path: Path, kind: str):
    path = tmp_path / "clinic.db"
    make_bad(kind, path)
    before = fingerprint(path)
    for name, args in COMMANDS.items():
        done = subprocess.run([sys.executable, "-m", "infusion_monitor.cli", "--db", str(path),
                               *args], capture_output=True, text=True, timeout=120)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 1, (name, done.stderr)
        assert len(lines) == 1 and "Traceback" not in done.stderr, (name, done.stderr)
        assert str(path) in lines[0] or path.name in lines[0], (name, lines[0])
        assert fingerprint(path) == before, f"{name} changed the {kind} file"


def test_quick_check_runs_for_small_files_and_after_an_unclean_close(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A big clinic file is not read page by page at every start, unless its last writer left
    a WAL behind (a crash, a power cut, a killed process)."""
    from infusion_monitor.store import db as store_db

    path = tmp_path / "clinic.db"
    path.write_bytes(b"x" * 100)
    monkeypatch.setattr(store_db, "QUICK_CHECK_MAX_BYTES", 100)
    assert store_db.needs_quick_check(path)
    monkeypatch.setattr(store_db, "QUICK_CHECK_MAX_BYTES", 99)
    assert not store_db.needs_quick_check(path)
    wal = tmp_path / "clinic.db-wal"
    wal.write_bytes(b"")
    assert not store_db.needs_quick_check(path)  # an empty WAL: closed cleanly
    wal.write_bytes(b"w" * 32)
    assert store_db.needs_quick_check(path)
