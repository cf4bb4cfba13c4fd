"""Issue 3, done-when 1: a whole session charted in the window on the real simulator (pty),
under an accelerated clock, scores typed by keyboard alone, then checked against the database."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from conftest import PtySimulator
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot
from sqlalchemy import select as sql_select

from infusion_monitor.clock import ScaledClock
from infusion_monitor.session.lifecycle import SessionChart
from infusion_monitor.session.live import LiveRecording
from infusion_monitor.session.phases import Phase
from infusion_monitor.store.charting import ChartStore
from infusion_monitor.store.db import Database
from infusion_monitor.store.models_clinical import AlarmEventRow
from infusion_monitor.ui.app import make_window
from infusion_monitor.ui.qt_main_window import MainWindow
from infusion_monitor.ui.qt_numeric import TileState
from infusion_monitor.vitals import Vital

pytestmark = pytest.mark.e2e
SPEED = 100  # simulated seconds per real second: 80 simulated minutes in under a minute
NURSE = "R. Nurse"
INFUSION_MIN, OBSERVATION_MIN = 45, 30
#: minute -> (dissociation, RASS, distress); every other minute is left "not assessed".
PLAN = {0: (0, 0, 0), 5: (1, 0, 0), 10: (2, -1, 0), 15: (2, -2, 1), 20: (3, -2, 1),
        25: (2, -1, 0), 30: (1, 0, 0), 35: (1, 0, 0), 40: (1, 0, 0), 45: (0, 0, 0),
        50: (0, 0, 0), 55: (0, 0, 0), 60: (0, 0, 0), 65: (0, 0, 0), 70: (0, 0, 0)}


@pytest.fixture
def simulator(tmp_path: Path, start_simulator: Callable[..., PtySimulator]) -> tuple[str, Path]:
    """The Datex S/5 simulator on a pty for 100 simulated minutes: (device path, truth file)."""
    truth = tmp_path / "truth.jsonl"
    sim = start_simulator("--scenario", "typical", "--speed", str(SPEED), "--duration", "6000",
                          "--truth", str(truth))
    return sim.path, truth


def truth_bps(path: Path) -> set[tuple[float, float]]:
    """Every NIBP (sys, dia) the simulator sent."""
    out = set()
    for line in path.read_text(encoding="utf-8").splitlines():
        values = json.loads(line)["values"] if line.strip() else {}
        if values.get("nibp_sys") is not None:
            out.add((float(values["nibp_sys"]), float(values["nibp_dia"])))
    return out


def type_scores(qtbot: QtBot, window: MainWindow, minute: int,
                scores: tuple[int, int, int]) -> int:
    """Move to ``minute`` with Up/Down and type its scores; returns the score keystrokes."""
    log = window.charting.minutes
    table = log.table
    selected = log.selected_minute()
    assert selected is not None
    step = Qt.Key.Key_Up if selected > minute else Qt.Key.Key_Down
    for _ in range(abs(selected - minute)):
        qtbot.keyClick(table, step)
    assert log.selected_minute() == minute
    d, r, s = scores
    keys = [str(d), *(["-", str(-r)] if r < 0 else [str(r)]), str(s), Qt.Key.Key_Return]
    for key in keys:
        qtbot.keyClick(table, key)
    assert log.message.text() == "", log.message.text()
    return len(keys)


def confirm(window: MainWindow, expected: str) -> None:
    """The phase bar's one action, pressed twice (arm, then confirm)."""
    bar = window.charting.phase_bar
    assert bar.action.text() == expected
    bar.action.click()
    assert bar.action.text() == f"Confirm: {expected}"
    bar.action.click()
    assert bar.message.text() == "", bar.message.text()


def shoot(qtbot: QtBot, window: MainWindow, path: Path) -> None:
    """Save the window at 1366×768 and 1920×1080 (``path`` gets the size appended)."""
    for w, h in ((1920, 1080), (1366, 768)):
        window.resize(w, h)
        qtbot.waitUntil(lambda w=w, h=h: window.width() == w and window.height() == h)
        window.charting.refresh()  # as its timer would: the newest minute scrolled into view
        QApplication.processEvents()
        window.grab().save(str(path.with_name(f"{path.stem}-{w}x{h}.png")))


def test_a_whole_session_charted_on_the_simulator(
        qtbot: QtBot, simulator: tuple[str, Path], database: Database, shots_dir: Path) -> None:
    device, truth = simulator
    clock = ScaledClock(SPEED)
    recordings: list[LiveRecording] = []

    def start_recording(protocol: str, url: str, baud: int, *,
                        on_store_error: Callable[[Exception], None],
                        on_store_recovered: Callable[[], None]) -> LiveRecording:
        rec = LiveRecording(database, protocol=protocol, url=url, source="gui", clock=clock,
                            baudrate=baud, on_store_error=on_store_error,
                            on_store_recovered=on_store_recovered)
        recordings.append(rec)
        return rec

    window = make_window(clock=clock, start_recording=start_recording,
                         initial=("datex-s5", device, 19200), list_ports_fn=list)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.tiles[Vital.HR].state is TileState.VALID, timeout=20_000)
    panel = window.charting
    chart = panel.chart
    assert chart is not None and chart.session_id == recordings[0].session_id

    # Check-in, typed into the form.
    values = {"patient_id": "MRN-7", "patient_name": "Pat Example", "birth_date": "1975-02-03",
              "weight_kg": "80", "dose_mg_per_kg": "0.5", "planned_minutes": "45",
              "attending": "Dr Attending", "nurse": NURSE}
    for name, text in values.items():
        panel.checkin.fields[name].clear()
        qtbot.keyClicks(panel.checkin.fields[name], text)
    qtbot.keyClick(panel.checkin.fields["nurse"], Qt.Key.Key_Return)
    assert chart.state is Phase.CHECK_IN, panel.checkin.message.text()

    confirm(window, "Start baseline")
    qtbot.waitUntil(lambda: chart.assess_baseline().ready, timeout=20_000)
    panel.refresh()
    confirm(window, "Start infusion")
    start = chart.infusion_start
    assert start is not None and chart.state is Phase.INFUSION
    panel.show_tab("Minute log")
    panel.minutes.table.setFocus()

    def reach(t: datetime) -> None:
        qtbot.waitUntil(lambda: clock.now() >= t, timeout=60_000)
        panel.refresh()

    keystrokes = []
    for minute in range(INFUSION_MIN + OBSERVATION_MIN):
        if minute == INFUSION_MIN:
            reach(start + timedelta(minutes=INFUSION_MIN))
            confirm(window, "End infusion")
        if minute in PLAN:
            reach(start + timedelta(minutes=minute, seconds=5))
            keystrokes.append(type_scores(qtbot, window, minute, PLAN[minute]))
        if minute == 20:
            shoot(qtbot, window, shots_dir / "live-infusion.png")
    assert max(keystrokes) <= 6
    ended = chart.marker(Phase.OBSERVATION)
    assert ended is not None
    reach(ended.t + timedelta(minutes=OBSERVATION_MIN))
    last = chart.current_minute()
    assert last is not None
    PLAN[last] = (0, 0, 0)
    type_scores(qtbot, window, last, PLAN[last])

    confirm_bar = panel.phase_bar
    assert confirm_bar.action.text() == "Discharge…"
    confirm_bar.action.click()
    assert panel.tabs.currentWidget() is panel.discharge
    panel.refresh()
    shoot(qtbot, window, shots_dir / "discharge-check.png")
    check = chart.discharge_check()
    if not check.all_met:
        qtbot.keyClicks(panel.discharge.reason, "attending reviewed")
    panel.discharge.button.click()
    assert chart.state is Phase.DISCHARGED, panel.discharge.message.text()
    confirm(window, "Close")
    panel.show_tab("Summary")
    panel.refresh()
    shown_rems = {k: v.text() for k, v in panel.rems.values.items()}
    trend_labels = [label for _, label, _ in window.trends.markers]
    window.close()
    assert not recordings[0].link.running
    sid = recordings[0].session_id

    # -- the minute log in the database: exactly what was typed, by whom ---------------------
    store = ChartStore(database.engine)
    entries = store.minute_entries(sid)
    assert {e.minute: (e.dissociation, e.rass, e.distress) for e in entries} == PLAN
    assert len(entries) == len(PLAN)  # one entry per charted minute, no amendments
    assert {e.entered_by for e in entries} == {NURSE}
    again = SessionChart.open(database, sid, clock)
    rows = again.minute_rows()
    discharged = again.discharged_at
    assert discharged is not None
    assert len(rows) == math.ceil((discharged - start).total_seconds() / 60)
    unassessed = [r.minute for r in rows if not r.assessed]
    assert unassessed == [m for m in range(len(rows)) if m not in PLAN]
    assert all(r.status == "not assessed" for r in rows if r.minute in unassessed)
    with database.engine.connect() as conn:
        raised = conn.execute(sql_select(AlarmEventRow.event).where(
            AlarmEventRow.session_id == sid, AlarmEventRow.condition == "charting_overdue",
            AlarmEventRow.event == "raised")).scalars().all()
    assert raised  # four unassessed minutes between charted ones: the reminder fired

    # -- markers: every phase once, in order, on the trends too ------------------------------
    markers = store.markers(sid)
    assert [m.phase for m in markers] == list(Phase)
    assert not any(m.voided for m in markers)
    times = [m.t for m in markers]
    assert times == sorted(times)
    assert all(m.entered_by == NURSE for m in markers[1:])
    assert timedelta(minutes=INFUSION_MIN) <= markers[3].t - start < timedelta(minutes=47)
    assert markers[4].t - markers[3].t >= timedelta(minutes=OBSERVATION_MIN)
    assert trend_labels == ["Check-in", "Baseline", "Inf. start", "Inf. end",
                            "Discharge", "Closed"]

    # -- REMS: BP values as measured (and as the simulator sent them) ------------------------
    readings = database.repository.readings(sid)
    sys_at = {r.time: r.value for r in readings if r.vital is Vital.NIBP_SYS}
    dia_at = {r.time: r.value for r in readings if r.vital is Vital.NIBP_DIA}
    nibps = sorted((t, sys_at[t], dia_at[t]) for t in sys_at if t in dia_at)
    before = [n for n in nibps if n[0] <= start][-1]
    at_40 = min((n for n in nibps if abs(n[0] - start - timedelta(minutes=40))
                 <= timedelta(minutes=10)), key=lambda n: abs(n[0] - start - timedelta(minutes=40)))
    at_end = [n for n in nibps if n[0] <= discharged][-1]
    rems = again.rems_summary()
    for got, want in ((rems.bp_before_dosing, before), (rems.bp_about_40_min, at_40),
                      (rems.bp_at_end, at_end)):
        assert got is not None and (got.t, got.sys, got.dia) == want
        assert (got.sys, got.dia) in truth_bps(truth)
    assert rems.sedation is True and rems.lowest_rass == -2
    assert rems.dissociation is True and rems.highest_dissociation == 3
    assert rems.respiratory_depression is False
    assert rems.first_dose == start and rems.end_of_monitoring == discharged
    assert rems.monitored_minutes == len(rows)
    assert rems.vitals_acceptable_before_dosing is True
    assert rems.vitals_acceptable_before_completion is check.all_met
    assert shown_rems["minutes"] == str(len(rows))
    assert shown_rems["bp_before"].startswith(f"{before[1]:.0f}/{before[2]:.0f}")
    assert shown_rems["sedation"] == "yes (lowest RASS −2)"
