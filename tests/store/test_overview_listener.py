"""Writes notify the overview: NOTIFY with the data on PostgreSQL, data_version on SQLite;
the listener survives the server dropping it and then asks for a full re-read."""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest
from sqlalchemy import text

from infusion_monitor.store import Database, StoreWriter, open_database
from infusion_monitor.store.charting import ChartStore
from infusion_monitor.store.notify import CHANNEL, notify_changed
from infusion_monitor.store.overview_listener import ChangeListener
from infusion_monitor.vitals import Reading, Vital

T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)


class Heard:
    """Collects on_change calls from the listener thread."""

    def __init__(self) -> None:
        self.calls: queue.Queue[frozenset[int] | None] = queue.Queue()

    def __call__(self, ids: frozenset[int] | None) -> None:
        self.calls.put(ids)

    def next(self, timeout: float = 5.0) -> frozenset[int] | None:
        return self.calls.get(timeout=timeout)

    def until(self, predicate, timeout: float = 5.0) -> frozenset[int] | None:
        deadline = time.monotonic() + timeout
        while True:
            ids = self.calls.get(timeout=max(0.01, deadline - time.monotonic()))
            if predicate(ids):
                return ids

    def drain(self) -> None:
        while not self.calls.empty():
            self.calls.get_nowait()


@pytest.fixture
def heard(db: Database) -> Iterator[tuple[Heard, ChangeListener]]:
    h = Heard()
    listener = ChangeListener(db.engine, h, refresh_s=60, poll_s=0.1).start()
    try:
        assert h.next() is None  # at start: read everything
        yield h, listener
    finally:
        listener.stop()


def new_session(db: Database) -> int:
    return db.repository.create_session(source="record", protocol="datex-s5", started=T0,
                                        workstation_id="chair-1")


def test_a_committed_batch_is_heard_with_its_session(db, heard) -> None:
    h, _ = heard
    sid = new_session(db)
    h.drain()
    writer = StoreWriter(db.repository)
    try:
        writer.submit(sid, Reading(Vital.HR, 70, t_received=T0))
        assert writer.flush()
    finally:
        writer.close()
    expected = frozenset({sid}) if db.engine.dialect.name == "postgresql" else None
    assert h.until(lambda ids: ids == expected) == expected


def test_charting_is_heard(db, heard) -> None:
    h, _ = heard
    sid = new_session(db)
    h.drain()
    ChartStore(db.engine).add_note(sid, t=T0, minute=None, text="calm", entered=T0, by="n")
    expected = frozenset({sid}) if db.engine.dialect.name == "postgresql" else None
    assert h.until(lambda ids: ids == expected) == expected


@pytest.mark.postgres
def test_notify_is_sent_at_commit_and_never_for_a_rolled_back_write(pg_url: str) -> None:
    database = open_database(pg_url)
    conninfo = database.engine.url.set(drivername="postgresql").render_as_string(
        hide_password=False)
    try:
        with psycopg.connect(conninfo, autocommit=True) as listen:
            listen.execute(f"LISTEN {CHANNEL}")
            with database.engine.connect() as conn:
                conn.begin()
                notify_changed(conn, [7, 7, 8])
                assert list(listen.notifies(timeout=0.3)) == []  # not before commit
                conn.rollback()
                assert list(listen.notifies(timeout=0.3)) == []  # nor after a rollback
                with conn.begin():
                    notify_changed(conn, [7, 7, 8])
            got = [n.payload for n in listen.notifies(timeout=1, stop_after=2)]
            assert sorted(got) == ["7", "8"]
    finally:
        database.close()


@pytest.mark.postgres
def test_after_the_server_drops_the_listener_it_reconnects_and_rereads_everything(
    pg_url: str,
) -> None:
    database = open_database(pg_url)
    h = Heard()
    statuses: list[bool] = []
    listener = ChangeListener(database.engine, h, refresh_s=60, poll_s=0.1,
                              on_status=lambda ok, _detail: statuses.append(ok)).start()
    try:
        assert h.next() is None
        with database.engine.begin() as conn:  # as an administrator restarting the server would
            killed = conn.execute(text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid() "
                "AND query LIKE 'LISTEN%'")).scalar()
        assert killed == 1
        assert h.next() is None  # reconnected: re-read all, for what was missed
        assert listener.reconnects == 1 and statuses[:3] == [True, False, True]
        sid = new_session(database)
        database.repository.insert_readings(sid, [Reading(Vital.HR, 70, t_received=T0)])
        assert h.until(lambda ids: ids == frozenset({sid})) == frozenset({sid})
    finally:
        listener.stop()
        database.close()


def test_stop_ends_the_thread_promptly(db: Database) -> None:
    listener = ChangeListener(db.engine, lambda ids: None, poll_s=0.1).start()
    thread = listener._thread
    assert thread is not None and thread.is_alive()
    started = time.monotonic()
    listener.stop()
    assert not thread.is_alive() and time.monotonic() - started < 2
