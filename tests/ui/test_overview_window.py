"""The clinic overview window on a SQLite database: tiles, colours, badge, live updates."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from PySide6.QtGui import QColor
from pytestqt.qtbot import QtBot

from infusion_monitor.clock import ManualClock
from infusion_monitor.errors import StoreError
from infusion_monitor.session.phases import Phase
from infusion_monitor.store import Database, StoreWriter
from infusion_monitor.store.alarm_log import AlarmEventRecord, AlarmLog
from infusion_monitor.store.charting import ChartStore
from infusion_monitor.ui import qt_theme as theme
from infusion_monitor.ui.qt_chair_tile import BORDER_PX, ChairTile
from infusion_monitor.ui.qt_overview import OverviewWindow, natural_key
from infusion_monitor.vitals import Quality, Reading, Vital

NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
S = timedelta(seconds=1)
MIN = timedelta(minutes=1)
RED = theme.PRIORITY_COLOURS["high"]
YELLOW = theme.PRIORITY_COLOURS["medium"]


def session(db: Database, workstation: str, started: datetime) -> int:
    return db.repository.create_session(source="record", protocol="datex-s5", started=started,
                                        workstation_id=workstation)


def check_in(db: Database, sid: int, name: str, t: datetime) -> None:
    ChartStore(db.engine).add_check_in(
        sid, patient_id=f"MRN-{sid}", patient_name=name, birth_date=None, weight_kg=70,
        dose_mg_per_kg=0.5, planned_minutes=40, attending="Dr A", nurse="N B", entered=t,
        by="nurse", with_marker=True)


def alarm(db: Database, sid: int, uid: str, condition: str, priority: str,
          events: tuple[str, ...], text: str = "") -> None:
    AlarmLog(db.engine).append(sid, [
        AlarmEventRecord(uid, ev, condition, None, priority, NOW - MIN + i * S, detail=text,
                         by="dr" if ev == "acknowledged" else None)
        for i, ev in enumerate(events)])


def border_colour(tile: ChairTile) -> QColor:
    """The pixel in the middle of the tile's left border, as painted."""
    return tile.grab().toImage().pixelColor(BORDER_PX // 2, tile.height() // 2)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOW)


@pytest.fixture
def window_for(qtbot: QtBot, clock: ManualClock):
    def make(db: Database, **kw) -> OverviewWindow:
        window = OverviewWindow(db.engine, clock, **kw)
        qtbot.addWidget(window)
        window.resize(1366, 768)
        window.show()
        qtbot.waitExposed(window)
        return window

    return make


def test_natural_order_of_chairs():
    assert sorted(["chair-10", "chair-2", "Chair-1"], key=natural_key) == [
        "Chair-1", "chair-2", "chair-10"]


def test_each_chair_gets_a_tile_with_its_own_state(qtbot, database, window_for) -> None:
    db = database
    c1 = session(db, "chair-1", NOW - 40 * MIN)
    check_in(db, c1, "Ada M. Example", NOW - 38 * MIN)
    ChartStore(db.engine).add_marker(c1, phase=Phase.INFUSION, t=NOW - 10 * MIN - 30 * S,
                                     entered=NOW, by="n")
    db.repository.insert_readings(c1, [
        Reading(Vital.HR, 88, t_received=NOW - 2 * S),
        Reading(Vital.SPO2, 97, t_received=NOW - 60 * S),  # stale: greyed
        Reading(Vital.NIBP_SYS, 184, t_received=NOW - MIN),
        Reading(Vital.NIBP_DIA, 112, t_received=NOW - MIN)])
    alarm(db, c1, "a", "sbp_high", "medium", ("raised",), "NIBP sys 184 ≥ 180")
    alarm(db, c1, "f", "notify_attending", "medium", ("raised",), "Notify attending")
    c2 = session(db, "chair-2", NOW - 20 * MIN)
    db.repository.insert_readings(c2, [Reading(Vital.PR, 64, Quality.OK, t_received=NOW - S)])
    alarm(db, c2, "b", "spo2_low_severe", "high", ("raised", "ended"), "SpO2 86 < 88")

    window = window_for(db)
    qtbot.waitUntil(lambda: len(window.tiles) == 2 and window.updates > 0, timeout=5000)
    one, two = window.tile("chair-1"), window.tile("chair-2")
    assert list(window.tiles) == ["chair-1", "chair-2"]
    assert one.patient.text() == "AE" and one.phase.text() == "Infusion · 10 min"
    assert one.elapsed.text() == "38 min since check-in"
    assert one.hr.value.text() == "88" and not one.hr.stale
    assert one.spo2.value.text() == "97" and one.spo2.stale
    assert one.spo2.value.palette().color(one.spo2.value.foregroundRole()).name() \
        == theme.GREYED
    assert one.nibp.value.text() == "184/112"
    assert one.alarm.text() == "** NIBP sys 184 ≥ 180"
    assert one.badge.isVisibleTo(one) and one.unassessed.text() == "10 min unassessed"
    assert border_colour(one).name() == YELLOW and one.painted_colour == YELLOW
    assert two.patient.text() == "—" and two.hr.name.text() == "PR"
    assert two.hr.value.text() == "64" and two.nibp.value.text() == "---"
    assert two.alarm.text() == "*** SpO2 86 < 88" and not two.badge.isVisibleTo(two)
    assert border_colour(two).name() == RED
    assert "2 chairs" in window.status.text() and "NOT CURRENT" not in window.status.text()


def test_a_new_alarm_turns_the_tile_red_and_clearing_it_turns_it_back(
    qtbot, database, window_for,
) -> None:
    sid = session(database, "chair-4", NOW - 5 * MIN)
    window = window_for(database)
    qtbot.waitUntil(lambda: "chair-4" in window.tiles, timeout=5000)
    tile = window.tile("chair-4")
    assert tile.alarm.text() == "no active alarm" and border_colour(tile).name() != RED
    writer = StoreWriter(database.repository)
    try:
        writer.submit(sid, AlarmEventRecord("h", "raised", "hr_high_severe", "hr", "high",
                                            NOW, 140, 130, True, detail="HR 140 > 130"))
        qtbot.waitUntil(lambda: tile.painted_colour == RED, timeout=3000)
        assert tile.alarm.text() == "*** HR 140 > 130"
        for ev in ("ended", "acknowledged", "cleared"):
            writer.submit(sid, AlarmEventRecord("h", ev, "hr_high_severe", "hr", "high", NOW,
                                                by="nurse"))
        qtbot.waitUntil(lambda: tile.painted_colour == "", timeout=3000)
    finally:
        writer.close()
    assert border_colour(tile).name() != RED


def test_an_unreadable_database_says_the_overview_is_not_current(
    qtbot, database, window_for,
) -> None:
    calls = []

    def load(now: datetime):
        calls.append(now)
        raise StoreError("could not read the clinic overview: connection refused")

    window = window_for(database, load=load)
    qtbot.waitUntil(lambda: window.problem.isVisibleTo(window), timeout=5000)
    assert "NOT current" in window.problem.text() and "connection refused" in window.problem.text()
    assert "NOT CURRENT" in window.status.text() and not window.current


def test_closing_the_window_stops_listening(qtbot, database, window_for) -> None:
    window = window_for(database)
    thread = window.listener._thread
    assert thread is not None and thread.is_alive()
    window.close()
    assert not thread.is_alive()


def test_losing_the_database_greys_every_value_and_says_so(qtbot, database, window_for) -> None:
    sid = session(database, "chair-1", NOW - 5 * MIN)
    database.repository.insert_readings(sid, [Reading(Vital.HR, 72, t_received=NOW - S)])
    window = window_for(database)
    qtbot.waitUntil(lambda: "chair-1" in window.tiles and window.current, timeout=5000)
    tile = window.tile("chair-1")
    assert not tile.hr.stale
    window._feed.status.emit(False, "server closed the connection unexpectedly")
    qtbot.waitUntil(lambda: window.problem.isVisibleTo(window), timeout=2000)
    assert "Lost the clinic database" in window.problem.text() and "NOT live" in \
        window.problem.text()
    assert tile.hr.stale and tile.hr.value.text() == "72"  # the last value, greyed
    window._feed.status.emit(True, "listening")
    window.listener._on_change(None)  # as after a reconnect: everything re-read
    qtbot.waitUntil(lambda: not window.problem.isVisibleTo(window), timeout=5000)
    assert window.current and not tile.hr.stale


def test_the_overview_only_reads(qtbot, database, window_for) -> None:
    from sqlalchemy import event

    statements: list[str] = []

    def seen(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement.strip().split()[0].upper())

    sid = session(database, "chair-1", NOW - 5 * MIN)
    alarm(database, sid, "a", "hr_high_severe", "high", ("raised",), "HR 140 > 130")
    event.listen(database.engine, "before_cursor_execute", seen)
    try:
        window = window_for(database)
        qtbot.waitUntil(lambda: window.updates >= 1, timeout=5000)
        window.close()
    finally:
        event.remove(database.engine, "before_cursor_execute", seen)
    assert statements and set(statements) <= {"SELECT", "PRAGMA", "BEGIN", "ROLLBACK"}
