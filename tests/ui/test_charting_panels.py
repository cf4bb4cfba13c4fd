"""Check-in, phase bar, notes, CADSS-6, discharge and summary: bad input is refused with the
core's message, nothing is written, and nothing typed is lost."""

from __future__ import annotations

import pytest
from charting_support import (
    CHECK_IN,
    NURSE,
    T0,
    counts,
    nibp,
    open_chart,
    to_baseline,
    to_infusion,
    vitals,
)
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from infusion_monitor.clock import ManualClock
from infusion_monitor.session.lifecycle import SessionChart
from infusion_monitor.session.phases import Phase
from infusion_monitor.store import Database
from infusion_monitor.ui.qt_charting import ChartingPanel
from infusion_monitor.ui.qt_discharge import MET, NOT_MET


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def chart(db: Database, clock: ManualClock) -> SessionChart:
    return open_chart(db, clock)


@pytest.fixture
def panel(qtbot: QtBot, clock: ManualClock, chart: SessionChart) -> ChartingPanel:
    p = ChartingPanel(clock, user=lambda: "admin")
    qtbot.addWidget(p)
    p.set_chart(chart)
    p.resize(1200, 480)
    p.show()
    qtbot.waitExposed(p)
    return p


def test_check_in_shows_the_core_message_beside_the_field_and_keeps_the_input(
        qtbot: QtBot, panel: ChartingPanel, chart: SessionChart, db: Database) -> None:
    form = panel.checkin
    for name, value in CHECK_IN.items():
        form.fields[name].clear()
        qtbot.keyClicks(form.fields[name], str(value))
    form.fields["weight_kg"].setText("7.25")
    before = counts(db)
    form.button.click()
    assert counts(db) == before and chart.state is None
    assert "weight must be between 20 and 300 kg; got 7.25" in form.errors["weight_kg"].text()
    assert form.errors["weight_kg"].isVisible()
    assert form.fields["patient_name"].text() == "Ada Example"  # nothing typed is lost
    form.fields["weight_kg"].setText("72.5")
    qtbot.keyClick(form.fields["weight_kg"], Qt.Key.Key_Return)
    assert chart.state is Phase.CHECK_IN
    details = chart.check_in_details()
    assert details is not None and details.weight_kg == 72.5 and details.entered_by == "admin"
    assert form.fields["patient_id"].isReadOnly()
    assert form.errors["weight_kg"].isHidden()


def test_phase_changes_need_a_second_press_and_no_dialog(
        qtbot: QtBot, panel: ChartingPanel, chart: SessionChart) -> None:
    chart.check_in(**CHECK_IN, by="admin")
    panel.refresh()
    bar = panel.phase_bar
    assert bar.action.text() == "Start baseline"
    with qtbot.waitSignal(panel.markers_changed) as markers:
        bar.action.click()
        assert chart.state is Phase.CHECK_IN and bar.action.text() == "Confirm: Start baseline"
        assert QApplication.activeModalWidget() is None
        bar.action.click()
    assert chart.state is Phase.BASELINE
    assert [label for _, label, _ in markers.args[0]] == ["Check-in", "Baseline"]
    assert bar.action.text() == "Start infusion"
    bar.action.click()
    bar.cancel.click()  # disarmed: the next press arms again
    bar.action.click()
    assert chart.state is Phase.BASELINE


def test_infusion_start_without_a_baseline_nibp_is_refused_with_a_reason(
        panel: ChartingPanel, chart: SessionChart, clock: ManualClock, db: Database) -> None:
    to_baseline(chart)
    vitals(chart, clock, 60)
    panel.refresh()
    bar = panel.phase_bar
    before = counts(db)
    bar.action.click()
    bar.action.click()
    assert chart.state is Phase.BASELINE and counts(db) == before
    assert "cannot start the infusion: no baseline NIBP" in bar.message.text()
    assert "no baseline NIBP" in panel.baseline.state.text()


def test_high_baseline_bp_warns_at_low_priority_and_the_attending_decides(
        panel: ChartingPanel, chart: SessionChart, clock: ManualClock) -> None:
    to_baseline(chart)
    nibp(chart, clock, 152, 94)
    vitals(chart, clock, 60)
    panel.refresh()
    assert "152/94" in panel.baseline.nibp.text()
    assert "attending decides" in panel.baseline.warning.text()
    panel.phase_bar.action.click()
    panel.phase_bar.action.click()
    assert chart.state is Phase.INFUSION  # a warning, not a refusal
    panel.refresh()
    assert panel.baseline.warning.text().startswith("* Low priority")
    assert "Stored at infusion start" in panel.baseline.state.text()


def test_undo_last_phase_needs_a_reason_and_keeps_the_marker_visible(
        qtbot: QtBot, panel: ChartingPanel, chart: SessionChart, db: Database) -> None:
    to_baseline(chart)
    panel.refresh()
    bar = panel.phase_bar
    bar.undo.click()
    before = counts(db)
    qtbot.keyClick(bar.undo_reason, Qt.Key.Key_Return)
    assert "reason is required" in bar.message.text() and counts(db) == before
    qtbot.keyClicks(bar.undo_reason, "pressed too early")
    with qtbot.waitSignal(panel.markers_changed) as markers:
        qtbot.keyClick(bar.undo_reason, Qt.Key.Key_Return)
    assert chart.state is Phase.CHECK_IN
    assert markers.args[0][-1][1:] == ("Baseline", True)  # drawn as voided, still there


def test_discharge_with_unmet_criteria_needs_a_reason(
        qtbot: QtBot, panel: ChartingPanel, chart: SessionChart, clock: ManualClock,
        db: Database) -> None:
    to_infusion(chart, clock)
    vitals(chart, clock, 120)
    chart.chart_minute(1, 2, -1, 0, by=NURSE)
    chart.end_infusion(NURSE)
    nibp(chart, clock, 121, 79)
    vitals(chart, clock, 60)
    panel.refresh()
    bar = panel.phase_bar
    assert bar.action.text() == "Discharge…"
    bar.action.click()
    assert panel.tabs.currentWidget() is panel.discharge
    panel.refresh()
    d = panel.discharge
    states = {name: labels[1].text() for name, labels in d.rows.items()}
    assert states == {"bp": MET, "hr": MET, "spo2": MET, "rass": NOT_MET,
                      "dissociation": NOT_MET}
    before = counts(db)
    d.button.click()
    assert "discharge criteria not met" in d.message.text() and "reason" in d.message.text()
    assert counts(db) == before and chart.state is Phase.OBSERVATION
    qtbot.keyClicks(d.reason, "attending reviewed; escort present")
    d.button.click()
    assert chart.state is Phase.DISCHARGED
    marker = chart.marker(Phase.DISCHARGED)
    assert marker is not None
    assert marker.detail["reason"] == "attending reviewed; escort present"
    assert "Discharged" in d.title.text()
    panel.show_tab("Summary")
    panel.refresh()
    assert panel.rems.values["dissociation"].text() == "yes (highest 2)"
    assert panel.rems.values["ok_end"].text() == "no"
    assert panel.rems.values["bp_before"].text().startswith("120/80")


def test_notes_quick_phrases_amendments_and_no_note_on_a_closed_session(
        qtbot: QtBot, panel: ChartingPanel, chart: SessionChart, clock: ManualClock,
        db: Database) -> None:
    to_infusion(chart, clock)
    vitals(chart, clock, 150)
    notes = panel.notes
    qtbot.keyClicks(notes.entry, "ondansetron 4 mg")
    notes.phrases["nausea: antiemetic given"].click()
    assert notes.list.count() == 1
    assert "(min 2)" in notes.list.item(0).text()
    assert "nausea: antiemetic given: ondansetron 4 mg" in notes.list.item(0).text()
    notes.list.setCurrentRow(0)
    notes.amend_text.setText("nausea: antiemetic given: ondansetron 8 mg")
    notes.amend_reason.setText("dose misread")
    notes.amend()
    text = notes.list.item(0).text()
    assert "ondansetron 8 mg" in text and "reason: dose misread" in text
    assert "was: nausea: antiemetic given: ondansetron 4 mg" in text

    chart.end_infusion(NURSE)
    chart.chart_minute(2, 0, 0, 0, by=NURSE)
    nibp(chart, clock, 120, 80)
    vitals(chart, clock, 60)
    chart.discharge(NURSE)
    chart.close(NURSE)
    before = counts(db)
    qtbot.keyClicks(notes.entry, "late thought")
    qtbot.keyClick(notes.entry, Qt.Key.Key_Return)
    assert "the session is closed" in notes.message.text()
    assert notes.entry.text() == "late thought" and counts(db) == before


def test_cadss_total_is_live_and_recorded(qtbot: QtBot, panel: ChartingPanel,
                                          chart: SessionChart) -> None:
    chart.check_in(**CHECK_IN, by="admin")
    cadss = panel.cadss
    for n, v in zip((1, 2, 6, 7, 15, 22), (1, 2, 0, 3, 4, 1), strict=True):
        cadss.items[n].setValue(v)
    assert cadss.total.text() == "Total 11 / 24"
    cadss.record()
    forms = chart.cadss_forms()
    assert len(forms) == 1 and forms[0][-1].total == 11
    assert forms[0][-1].timepoint == "baseline" and forms[0][-1].entered_by == NURSE
    assert "total 11" in cadss.forms.item(0).text()
