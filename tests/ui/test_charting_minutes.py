"""The minute log by keyboard: ≤ 6 keys a minute, anchors in place, not assessed, amendments."""

from __future__ import annotations

import io

import pytest
from charting_support import NURSE, T0, counts, open_chart, to_infusion, vitals
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot
from sqlalchemy import select

from infusion_monitor.clock import ManualClock
from infusion_monitor.export.minutes_csv import write_minutes_csv
from infusion_monitor.session.alarm_monitor import AlarmMonitor
from infusion_monitor.session.chart_alarms import ChartAlarmBridge
from infusion_monitor.session.lifecycle import SessionChart
from infusion_monitor.session.scales import NOT_ASSESSED
from infusion_monitor.store import Database
from infusion_monitor.store.alarm_log import AlarmLog
from infusion_monitor.store.models_clinical import AlarmEventRow
from infusion_monitor.ui.qt_charting import ChartingPanel
from infusion_monitor.ui.qt_minute_model import COL_SCORES

STATUS = 9


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def chart(db: Database, clock: ManualClock) -> SessionChart:
    return open_chart(db, clock)


class AlarmLogSink:
    """Writes alarm events at once (the app's StoreWriter does it in batches)."""

    def __init__(self, db: Database) -> None:
        self.log = AlarmLog(db.engine)

    def submit(self, session_id: int, record: object) -> None:
        self.log.append(session_id, [record])


@pytest.fixture
def panel(qtbot: QtBot, clock: ManualClock, chart: SessionChart, db: Database) -> ChartingPanel:
    """The charting panel on a chart 5 minutes into the infusion, minute log showing, with
    the alarm engine behind it as in the app (no ticker thread: nothing here needs one)."""
    to_infusion(chart, clock)
    vitals(chart, clock, 5 * 60)
    alarms = AlarmMonitor(chart.session_id, clock=clock, sink=AlarmLogSink(db))
    p = ChartingPanel(clock, user=lambda: "admin")
    qtbot.addWidget(p)
    p.set_chart(chart, ChartAlarmBridge(chart, alarms))
    p.show_tab("Minute log")
    p.resize(1200, 480)
    p.show()
    qtbot.waitExposed(p)
    return p


class Keyboard:
    """qtbot.keyClick on the minute table, counting every keystroke."""

    def __init__(self, qtbot: QtBot, panel: ChartingPanel) -> None:
        self.qtbot, self.table, self.count = qtbot, panel.minutes.table, 0

    def press(self, *keys: str | Qt.Key) -> None:
        for key in keys:
            self.qtbot.keyClick(self.table, key)
            self.count += 1


def cell(panel: ChartingPanel, minute: int, column: int) -> str:
    model = panel.minutes.model
    return str(model.data(model.index(minute, column)))


def test_one_minute_takes_at_most_six_keystrokes(qtbot: QtBot, panel: ChartingPanel,
                                                 chart: SessionChart) -> None:
    log = panel.minutes
    log.select_minute(2)
    keys = Keyboard(qtbot, panel)
    keys.press("2", "-", "2", "1", Qt.Key.Key_Return)  # the worst case: a negative RASS
    assert keys.count == 5 <= 6
    entry = chart.minute_rows()[2].entry
    assert entry is not None
    assert (entry.dissociation, entry.rass, entry.distress) == (2, -2, 1)
    assert entry.entered_by == NURSE  # "by" is the check-in nurse
    assert [cell(panel, 2, c) for c in COL_SCORES] == ["2", "−2", "1"]

    log.select_minute(3)
    keys.count = 0
    keys.press("0", "0", "0", Qt.Key.Key_Enter)
    assert keys.count == 4
    e3 = chart.minute_rows()[3].entry
    assert e3 is not None and (e3.dissociation, e3.rass, e3.distress) == (0, 0, 0)


def test_arrows_move_between_minutes_and_anchor_text_shows_in_place(
        qtbot: QtBot, panel: ChartingPanel) -> None:
    log = panel.minutes
    log.select_minute(4)
    keys = Keyboard(qtbot, panel)
    keys.press(Qt.Key.Key_Up, Qt.Key.Key_Up)
    assert log.selected_minute() == 2
    keys.press(Qt.Key.Key_Down)
    assert log.selected_minute() == 3
    assert "Dissociation" in log.scale_hint.text() and "0 None" in log.scale_hint.text()
    keys.press("2")
    assert "Dissociation 2 Moderate: absorbed; brief or slow answers" in log.anchor.text()
    assert "RASS" in log.scale_hint.text() and "−2 Light sedation" in log.scale_hint.text()
    assert log.table.currentIndex().column() == COL_SCORES[1]  # the focus moved in place
    assert cell(panel, 3, COL_SCORES[0]).startswith("2")  # typed, not yet charted
    keys.press("-", "2")
    assert "RASS −2 Light sedation: eye contact < 10 s to voice" in log.anchor.text()
    assert "Distress" in log.scale_hint.text()
    keys.press(Qt.Key.Key_Backspace)
    assert "RASS" in log.scale_hint.text()
    keys.press(Qt.Key.Key_Escape)
    assert log.anchor.text() == ""


def test_unassessed_minutes_stay_not_assessed_and_the_reminder_is_recorded(
        qtbot: QtBot, panel: ChartingPanel, chart: SessionChart, clock: ManualClock,
        db: Database) -> None:
    log = panel.minutes
    panel.refresh()
    assert log.reminder is not None  # minutes 0-4 unassessed while minute 5 runs
    assert log.reminder_label.isVisible()
    assert log.reminder_label.text().startswith("* ")
    with db.engine.connect() as conn:
        events = conn.execute(select(AlarmEventRow.event, AlarmEventRow.priority).where(
            AlarmEventRow.condition == "charting_overdue")).all()
    assert events == [("raised", "low")]
    for minute in range(5):
        assert cell(panel, minute, STATUS) == NOT_ASSESSED
        assert cell(panel, minute, COL_SCORES[0]) == NOT_ASSESSED
        assert chart.minute_rows()[minute].entry is None
    out = io.StringIO()
    write_minutes_csv(chart.minute_rows(), out)
    lines = out.getvalue().splitlines()[1:]
    assert len(lines) == 6 and all(NOT_ASSESSED in line for line in lines)

    log.select_minute(5)  # charting the current minute ends the streak: reminder cleared
    Keyboard(qtbot, panel).press("1", "0", "0", Qt.Key.Key_Return)
    panel.refresh()
    assert log.reminder is None and log.reminder_label.isHidden()
    with db.engine.connect() as conn:
        steps = conn.execute(select(AlarmEventRow.event).where(
            AlarmEventRow.condition == "charting_overdue")).scalars().all()
    assert steps[0] == "raised" and steps[-1] == "cleared" and steps.count("raised") == 1
    assert cell(panel, 4, STATUS) == NOT_ASSESSED  # never back-filled


def test_amendment_keeps_the_original_visible_with_author_time_and_reason(
        qtbot: QtBot, panel: ChartingPanel, chart: SessionChart, clock: ManualClock,
        db: Database) -> None:
    log = panel.minutes
    log.select_minute(1)
    keys = Keyboard(qtbot, panel)
    keys.press("1", "0", "0", Qt.Key.Key_Return)
    clock.advance(30)
    keys.press("3", "-", "3", "2", Qt.Key.Key_Return)  # an already charted minute: amend
    assert log.amend_bar.isVisible()
    assert "Amend minute 1" in log.amend_label.text()
    before = counts(db)
    qtbot.keyClick(log.amend_reason, Qt.Key.Key_Return)  # no reason: refused, nothing lost
    assert "reason is required" in log.message.text()
    assert counts(db) == before and log.amend_bar.isVisible()
    qtbot.keyClicks(log.amend_reason, "wrong patient row")
    qtbot.keyClick(log.amend_reason, Qt.Key.Key_Return)
    assert log.amend_bar.isHidden()
    row = chart.minute_rows()[1]
    assert row.entry is not None and len(row.history) == 1
    assert (row.entry.dissociation, row.entry.rass, row.entry.distress) == (3, -3, 2)
    assert row.entry.reason == "wrong patient row" and row.entry.entered_by == NURSE
    assert cell(panel, 1, COL_SCORES[0]) == "✎ 3"
    assert "✎ amended" in cell(panel, 1, STATUS)
    log.select_minute(1)
    history = log.history.text()
    assert "Original: Dissociation 1, RASS 0, Distress 0" in history
    assert "Amendment 1 (current): Dissociation 3, RASS −3, Distress 2" in history
    assert "reason: wrong patient row" in history and f"by {NURSE}" in history
    out = io.StringIO()
    write_minutes_csv(chart.minute_rows(), out)
    assert "reason: wrong patient row" in out.getvalue()
    assert "was dissociation 1, RASS 0, distress 0" in out.getvalue()


def test_score_out_of_range_says_why_and_keeps_what_was_typed(
        qtbot: QtBot, panel: ChartingPanel, db: Database) -> None:
    log = panel.minutes
    log.select_minute(0)
    keys = Keyboard(qtbot, panel)
    before = counts(db)
    keys.press("7")
    assert "Dissociation must be between 0 and 4; got 7" in log.message.text()
    keys.press("2", "-", "6")
    assert "RASS must be between −5 and +4; got -6" in log.message.text()
    assert cell(panel, 0, COL_SCORES[0]) == "2 ▸"  # still typed
    keys.press("1", "3")
    assert "Distress must be between 0 and 2; got 3" in log.message.text()
    assert counts(db) == before
    keys.press("2", Qt.Key.Key_Return)
    assert counts(db)["minute_entries"] == before["minute_entries"] + 1


def test_late_entry_is_marked_with_when_it_was_made(qtbot: QtBot, panel: ChartingPanel,
                                                    chart: SessionChart) -> None:
    panel.minutes.select_minute(0)
    Keyboard(qtbot, panel).press("0", "0", "0", Qt.Key.Key_Return)
    entry = chart.minute_rows()[0].entry
    assert entry is not None
    assert cell(panel, 0, STATUS) == f"late, entered {entry.entered_at.astimezone():%H:%M}"


def test_a_new_minute_prompts_quietly_and_never_takes_the_focus(
        qtbot: QtBot, panel: ChartingPanel, chart: SessionChart, clock: ManualClock) -> None:
    panel.show_tab("Notes")
    panel.activateWindow()
    entry = panel.notes.entry
    entry.setFocus()
    qtbot.waitUntil(entry.hasFocus)
    qtbot.keyClicks(entry, "eyes clos")
    vitals(chart, clock, 60)  # minute 6 begins
    panel.refresh()
    assert panel.minutes.prompt.text() == "Minute 6 — assess when ready"
    assert QApplication.activeModalWidget() is None
    assert QApplication.activePopupWidget() is None
    assert entry.hasFocus() and entry.text() == "eyes clos"
    model = panel.minutes.model
    assert model.data(model.index(6, 0), Qt.ItemDataRole.BackgroundRole) is not None
    assert model.data(model.index(5, 0), Qt.ItemDataRole.BackgroundRole) is None
