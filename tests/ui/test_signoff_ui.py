"""The Sign-off tab: a supervisor signs; afterwards the minute log shows the lock and writes
nothing, while an amendment (an addendum) still goes through and is listed."""

from __future__ import annotations

import pytest
from charting_support import NURSE, T0, counts, open_chart, to_infusion, vitals
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot
from sqlalchemy import func, select

from infusion_monitor.clock import ManualClock
from infusion_monitor.session.lifecycle import SessionChart
from infusion_monitor.session.locking import LockState
from infusion_monitor.store import Database
from infusion_monitor.store.models_clinical import SignOffRow
from infusion_monitor.ui.qt_charting import ChartingPanel


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def chart(db: Database, clock: ManualClock) -> SessionChart:
    """Discharged after a 5-minute infusion with minute 0 charted; recording stopped."""
    chart = open_chart(db, clock)
    to_infusion(chart, clock)
    vitals(chart, clock, 5 * 60)
    chart.chart_minute(0, 1, 0, 0, NURSE)
    chart.end_infusion(NURSE)
    vitals(chart, clock, 60)
    chart.discharge(NURSE, reason="attending reviewed")
    db.repository.end_session(chart.session_id, clock.now())
    clock.advance(60)
    return chart


def signoffs(db: Database) -> int:
    with db.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(SignOffRow)).scalar_one()


@pytest.fixture
def panel(qtbot: QtBot, chart: SessionChart, clock: ManualClock) -> ChartingPanel:
    p = ChartingPanel(clock, user=lambda: "sup.s", role=lambda: "supervisor")
    qtbot.addWidget(p)
    p.set_chart(chart)
    p.resize(1200, 480)
    p.show()
    qtbot.waitExposed(p)
    return p


def test_sign_off_from_the_tab_then_the_minute_log_is_locked(
        qtbot: QtBot, panel: ChartingPanel, chart: SessionChart, db: Database,
        clock: ManualClock) -> None:
    panel.show_tab("Sign-off")
    tab = panel.signoff
    assert tab.state.text() == "Not signed off." and "none yet" in tab.history.text()

    # Incomplete: no printed name, then findings without a comment. Nothing is written.
    qtbot.mouseClick(tab.sign_button, Qt.MouseButton.LeftButton)
    assert "printed name is required" in tab.message.text() and signoffs(db) == 0
    qtbot.keyClicks(tab.printed_name, "Dr S. Upervisor")
    tab.meaning.setCurrentIndex(tab.meaning.findData("reviewed_with_findings"))
    qtbot.mouseClick(tab.sign_button, Qt.MouseButton.LeftButton)
    assert "needs a comment" in tab.message.text() and signoffs(db) == 0
    tab.comment.setPlainText("minutes 1-4 not assessed")
    qtbot.mouseClick(tab.sign_button, Qt.MouseButton.LeftButton)
    assert signoffs(db) == 1
    assert tab.message.text().startswith("Signed off by Dr S. Upervisor on 2026-03-02")
    assert "locked" in tab.state.text()
    history = tab.history.text()
    assert "Dr S. Upervisor (supervisor)" in history and "Reviewed with findings" in history
    assert "minutes 1-4 not assessed" in history and "Addenda since the last sign-off: 0" \
        in history

    # A new minute in the minute log: the core's lock message, and nothing written.
    clock.advance(30)
    panel.show_tab("Minute log")
    log = panel.minutes
    before = counts(db)
    log.select_minute(2)
    for key in ("0", "0", "0", Qt.Key.Key_Return):
        qtbot.keyClick(log.table, key)
    assert "This session was signed off by Dr S. Upervisor on 2026-03-02" in log.message.text()
    assert "changes are addenda — amend an entry with a reason" in log.message.text()
    assert counts(db) == before and chart.minute_rows()[2].entry is None

    # Amending minute 0 (with a reason) is an addendum: allowed, and listed as unsigned.
    log.cancel_amendment()
    log.select_minute(0)
    for key in ("2", "0", "0", Qt.Key.Key_Return):
        qtbot.keyClick(log.table, key)
    assert log.amend_bar.isVisible()
    qtbot.keyClicks(log.amend_reason, "charted on the wrong row")
    log.commit_amendment()
    assert chart.minute_rows()[0].entry.dissociation == 2  # type: ignore[union-attr]
    assert chart.lock_state() is LockState.SIGNED_WITH_UNSIGNED_ADDENDA
    panel.show_tab("Sign-off")
    panel.refresh()
    assert "Addenda since the last sign-off: 1" in tab.history.text()
    assert "minute entry — minute 0" in tab.history.text()
    assert "addenda not yet signed off" in tab.state.text()


def test_only_a_supervisor_can_sign(qtbot: QtBot, chart: SessionChart, clock: ManualClock,
                                    db: Database) -> None:
    p = ChartingPanel(clock, user=lambda: "nurse.n", role=lambda: "nurse")
    qtbot.addWidget(p)
    p.set_chart(chart)
    qtbot.keyClicks(p.signoff.printed_name, "N. Ightingale")
    qtbot.mouseClick(p.signoff.sign_button, Qt.MouseButton.LeftButton)
    assert "only a supervisor can sign off" in p.signoff.message.text()
    assert signoffs(db) == 0
