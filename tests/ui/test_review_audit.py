"""The review window's "Audit trail" tab shows the stored trail (who, when, what, why), and
an export from the window is recorded in it, while the window stays without any database."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot
from sqlalchemy import Engine

from infusion_monitor.clock import ManualClock
from infusion_monitor.export.record import load_session_record
from infusion_monitor.store import Database, open_database
from infusion_monitor.store.alarm_log import AlarmEventRecord, AlarmLog
from infusion_monitor.store.audit import AuditLog, export_recorder
from infusion_monitor.store.charting import ChartStore
from infusion_monitor.ui.qt_minute_model import hhmmss
from infusion_monitor.ui.qt_review import ReviewWindow

T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)


@pytest.fixture
def database(db_url: str) -> Iterator[tuple[Database, int]]:
    db = open_database(db_url)
    sid = db.repository.create_session(source="gui", protocol="datex-s5", started=T0, by="ws")
    store = ChartStore(db.engine)
    first = store.add_minute_entry(sid, minute=7, dissociation=1, rass=0, distress=0,
                                   entered=T0 + timedelta(minutes=8), by="R. Nurse")
    store.add_minute_entry(sid, minute=7, dissociation=2, rass=0, distress=0,
                           entered=T0 + timedelta(minutes=9), by="C. Nurse",
                           amends_id=first.id, reason="charted on the wrong row")
    AlarmLog(db.engine).append(sid, [
        AlarmEventRecord("u", "raised", "hr_high", "hr", "medium", T0, 118.0, 110.0),
        AlarmEventRecord("u", "acknowledged", "hr_high", "hr", "medium",
                         T0 + timedelta(minutes=10), by="R. Nurse"),
    ])
    db.repository.end_session(sid, T0 + timedelta(minutes=30), by="ws")
    yield db, sid
    db.close()


def test_audit_tab_shows_the_trail_and_exports_are_recorded(
        qtbot: QtBot, database: tuple[Database, int], tmp_path: Path) -> None:
    db, sid = database
    window = ReviewWindow(load_session_record(db, sid, ManualClock()), ManualClock(),
                          export_audit=export_recorder(db.engine, "sup1"))
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)

    table = window.audit_table
    assert [table.horizontalHeaderItem(c).text() for c in range(4)] == [
        "Time", "By", "What", "Why"]
    rows = [tuple(table.item(r, c).text() for c in range(4)) for r in range(table.rowCount())]
    assert rows == [
        (hhmmss(T0), "ws", "session created", ""),
        (hhmmss(T0 + timedelta(minutes=8)), "R. Nurse", "minute 7 charted", ""),
        (hhmmss(T0 + timedelta(minutes=9)), "C. Nurse", "minute 7 amended",
         "charted on the wrong row"),
        (hhmmss(T0 + timedelta(minutes=10)), "R. Nurse", "alarm acknowledged", "hr_high"),
        (hhmmss(T0 + timedelta(minutes=30)), "ws", "session ended", ""),
    ]  # the device-data batch (the raised alarm) is covered, not listed

    # The window holds the snapshot and an export hook, never a database object.
    for obj in (window, *window.findChildren(object)):
        for value in vars(obj).values():
            assert not isinstance(value, Database | Engine | AuditLog), f"{obj!r}: {value!r}"

    target = tmp_path / "minutes.csv"
    window.exporter._ask_path = lambda *_a: str(target)
    with qtbot.waitSignal(window.exporter.finished, timeout=30_000) as blocker:
        window.export_actions["minutes-csv"].trigger()
    assert blocker.args[0] is True and target.exists()
    last = AuditLog(db.engine).entries(sid)[-1]
    assert (last.action, last.actor, last.detail["file"]) == ("export", "sup1", str(target))
    window.close()
