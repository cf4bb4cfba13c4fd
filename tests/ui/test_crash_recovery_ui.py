"""Issue 8, done-when 1, the GUI: ``infusion-monitor demo`` killed with SIGKILL mid-infusion,
then a new window on the same database offers the open session, and resuming it shows the
stored trend history with the gap drawn as a gap and marked, and the chart as it was."""

from __future__ import annotations

import contextlib
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from conftest import PtySimulator
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

import tests.e2e.test_crash_recovery as crash
from infusion_monitor.clock import ManualClock, ScaledClock
from infusion_monitor.devices.base import DeviceEvent, DeviceEventKind
from infusion_monitor.session.live import LiveRecording
from infusion_monitor.session.phases import Phase
from infusion_monitor.session.resume import INTERRUPTED, ChairRecovery, chart_order
from infusion_monitor.store.db import Database
from infusion_monitor.ui.app import make_window
from infusion_monitor.ui.qt_trends import TrendPanel
from infusion_monitor.vitals import Quality, Reading, Vital

pytestmark = pytest.mark.e2e
CHAIR = "chair-gui"
SPEED = 20


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def only_session(database: Database):
    sessions = database.repository.list_sessions()
    return sessions[0] if len(sessions) == 1 else None


def demo_killed_mid_infusion(db_url: str, database: Database, tmp_path: Path) -> int:
    """Run the demo (its own simulator, offscreen), chart to minute 0, then SIGKILL both."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen",
           "XDG_CONFIG_HOME": str(tmp_path / "config")}
    # A session of its own, so the demo and the simulator it starts die together.
    demo = subprocess.Popen(
        [sys.executable, "-m", "infusion_monitor.cli", "--db", db_url, "demo", "--speed",
         str(SPEED), "--scenario", "typical", "--workstation", CHAIR],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
        start_new_session=True)
    try:
        wait_for(lambda: (s := only_session(database)) is not None and s.n_readings >= 6, 90,
                 "the demo to record")
        sid = only_session(database).id
        # The nurse's clock at that chair: the demo's, running SPEED times real time.
        latest = database.repository.readings(sid)[-1].t_received
        crash.chart_until_infusion(database, sid, wait_for, ScaledClock(SPEED, origin=latest))
        n = only_session(database).n_readings
        wait_for(lambda: only_session(database).n_readings >= n + 9, 60, "more readings")
        os.killpg(demo.pid, signal.SIGKILL)
        demo.wait(20)
        assert demo.returncode == -signal.SIGKILL
        return sid
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(demo.pid, signal.SIGKILL)
        demo.communicate(timeout=20)


def test_the_killed_demo_is_resumed_from_the_dialog_with_its_history_and_gap(
    qtbot: QtBot, db_url: str, database: Database, tmp_path: Path,
    start_simulator: Callable[..., PtySimulator], monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    sid = demo_killed_mid_infusion(db_url, database, tmp_path)
    assert only_session(database).ended is None
    stored_hr = [r for r in database.repository.readings(sid) if r.vital is Vital.HR]

    sim = start_simulator("--scenario", "typical", "--speed", str(SPEED))
    recovery = ChairRecovery(database, CHAIR)
    clock = ScaledClock(SPEED, origin=recovery.clock_origin(datetime.now(UTC)))
    recordings: list[LiveRecording] = []

    def start_recording(protocol: str, url: str, baud: int, **kwargs) -> LiveRecording:
        recordings.append(LiveRecording(database, protocol=protocol, url=url, source="demo",
                                        clock=clock, baudrate=baud, workstation_id=CHAIR,
                                        **kwargs))
        return recordings[-1]

    window = make_window(clock=clock, start_recording=start_recording,
                         initial=("datex-s5", sim.path, 19200), list_ports_fn=list,
                         recovery=recovery)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.resume_dialog is not None
                    and window.resume_dialog.isVisible(), timeout=10_000)
    assert not recordings  # nothing starts beside the open session before the nurse chooses
    dialog = window.resume_dialog
    assert dialog.resume_button.text().startswith(
        f"Resume session {sid} (AE, Infusion, left open at ")
    qtbot.mouseClick(dialog.resume_button, Qt.MouseButton.LeftButton)

    trends = window.trends
    qtbot.waitUntil(lambda: len(trends.gaps) == 1, timeout=30_000)  # the first new reading
    gap_t, detail = trends.gaps[0]
    assert detail.startswith(INTERRUPTED)
    gap_x = (gap_t - trends.t0).total_seconds() / 60

    def hr_after() -> int:
        trends.redraw()
        x, y = trends.drawn_data(Vital.HR)
        return int(np.count_nonzero(np.isfinite(y) & (x >= gap_x)))

    qtbot.waitUntil(lambda: hr_after() >= 3, timeout=30_000)
    x, y = trends.drawn_data(Vital.HR)
    finite = np.isfinite(y)
    before = np.flatnonzero(finite & (x < gap_x))
    after = np.flatnonzero(finite & (x >= gap_x))
    # The stored history is on the chart, from the session's start...
    assert y[before].tolist() == [r.value for r in stored_hr]
    assert x[before[0]] == pytest.approx(
        (stored_hr[0].t_received - only_session(database).started).total_seconds() / 60)
    # ... and no line is drawn across the gap: a NaN separates the two runs.
    assert any(math.isnan(v) for v in y[before[-1] + 1: after[0]])
    assert window.session_label.text().startswith(f"  Session #{sid} ")
    chart = window.charting.chart
    assert chart is not None and chart.state is Phase.INFUSION
    entry = chart.minute_rows()[0].entry
    assert entry is not None and entry.entered_by == crash.NURSE

    window.close()
    (info,) = database.repository.list_sessions()
    gaps = [e for e in database.repository.device_events(sid)
            if e.kind is DeviceEventKind.GAP]
    assert info.id == sid and [e.t_received for e in gaps] == [gap_t]


def test_a_recorded_gap_breaks_the_trend_line_even_when_short(qtbot: QtBot) -> None:
    """Shorter than the 30-s silence that breaks a line by itself: only the GAP event can."""
    t0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
    clock = ManualClock(t0)
    panel = TrendPanel(clock)
    qtbot.addWidget(panel)

    def hr(s: float, v: float) -> Reading:
        return Reading(Vital.HR, v, Quality.OK, t_received=t0 + timedelta(seconds=s))

    gap = DeviceEvent(DeviceEventKind.GAP, f"{INTERRUPTED}; ...",
                      t_received=t0 + timedelta(seconds=20))
    panel.start_session(t0)
    # As stored: the reading that ends the gap shares its instant and is listed first.
    panel.add_events(chart_order([hr(0, 70), hr(5, 71), hr(20, 90), gap, hr(25, 91)]))
    panel.redraw()
    _, y = panel.drawn_data(Vital.HR)
    assert [v for v in y.tolist() if not math.isnan(v)] == [70, 71, 90, 91]
    last_before, first_after = int(np.flatnonzero(y == 71)[0]), int(np.flatnonzero(y == 90)[0])
    assert any(math.isnan(v) for v in y[last_before + 1:first_after])
    assert [t for t, _ in panel.gaps] == [gap.t_received]


def test_connect_offers_the_open_session_again_instead_of_starting_a_second_one(
        qtbot: QtBot, database: Database) -> None:
    """Dismissing the dialog leaves the session open; Connect then asks again rather than
    splitting the chair's record into two open sessions. Closing it lets Connect start."""
    t0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
    sid = database.repository.create_session(source="record", protocol="datex-s5",
                                             port="/dev/ttyUSB0", started=t0,
                                             workstation_id=CHAIR, by="R. Nurse")
    calls: list[str] = []

    def start_recording(protocol: str, url: str, baud: int, **kwargs) -> LiveRecording:
        calls.append(url)
        raise RuntimeError("no monitor here")

    window = make_window(clock=ManualClock(t0 + timedelta(minutes=5)),
                         start_recording=start_recording, list_ports_fn=list,
                         recovery=ChairRecovery(database, CHAIR))
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: window.resume_dialog is not None, timeout=10_000)
    window.resume_dialog.reject()  # neither
    assert window.resume_dialog is None
    assert f"Session {sid} is still open" in window.error_label.text()

    window.connect_to("datex-s5", "/dev/ttyUSB1", 19200)
    assert calls == [] and window.resume_dialog is not None  # asked again, nothing started
    assert window.resume_dialog.session.id == sid
    qtbot.mouseClick(window.resume_dialog.close_button, Qt.MouseButton.LeftButton)
    assert database.repository.list_sessions()[0].ended is not None  # closed as interrupted

    window.connect_to("datex-s5", "/dev/ttyUSB1", 19200)
    assert calls == ["/dev/ttyUSB1"]  # now it starts (and this fake port fails, on screen)
    assert "no monitor here" in window.error_label.text()
    window.close()
