"""Done-when 2: alarms through the real path, simulator -> pty -> link -> recorder -> engine ->
window, with acknowledge (F2) and audio pause (F3) from the keyboard."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from conftest import PtySimulator
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from infusion_monitor.clock import ScaledClock, iso_z
from infusion_monitor.session.live import LiveRecording
from infusion_monitor.store.db import Database
from infusion_monitor.ui.app import make_window
from infusion_monitor.ui.qt_main_window import MainWindow
from infusion_monitor.vitals import Vital

pytestmark = pytest.mark.e2e
SPEED = 10  # simulated seconds per real second: delays of 10-15 s pass in about a second


@pytest.fixture
def run_scenario(qtbot: QtBot, tmp_path: Path, database: Database,
                 start_simulator: Callable[..., PtySimulator],
                 ) -> Callable[[str, int], MainWindow]:
    """Start the simulator at ``skip`` s into a scenario and a window recording it."""

    def start(scenario: str, skip: int) -> MainWindow:
        clock = ScaledClock(SPEED)
        # The monitor's clock at t = 0 lies ``skip`` before ours, so both agree on "now".
        monitor_t0 = clock.origin - timedelta(seconds=skip)
        device = start_simulator("--scenario", scenario, "--speed", str(SPEED), "--skip",
                                 str(skip), "--start", iso_z(monitor_t0),
                                 "--link", str(tmp_path / "ttySIM0")).path

        def start_recording(protocol: str, url: str, baud: int, **callbacks: object,
                            ) -> LiveRecording:
            return LiveRecording(database, protocol=protocol, url=url, source="gui",
                                 clock=clock, baudrate=baud, **callbacks)  # type: ignore[arg-type]

        window = make_window(clock=clock, start_recording=start_recording,
                             initial=("datex-s5", device, 19200), list_ports_fn=list)
        window.user = "anna"
        qtbot.addWidget(window)
        window.show()
        qtbot.waitExposed(window)
        return window

    return start


def log_row(window: MainWindow, condition: str) -> int:
    log = window.alarm_log
    return next(i for i in range(log.table.rowCount()) if log.text_at(i, "Condition") == condition)


def acknowledge_and_pause(window: MainWindow, qtbot: QtBot, condition: str) -> None:
    qtbot.keyClick(window, Qt.Key.Key_F2)
    window.toggle_alarm_log()
    qtbot.waitUntil(lambda: window.alarm_log.text_at(log_row(window, condition),
                                                      "Acknowledged").startswith("anna "),
                    timeout=5_000)
    qtbot.keyClick(window, Qt.Key.Key_F3)
    qtbot.waitUntil(lambda: window.alarm_bar.audio_label.text().startswith("❚❚ Audio paused "),
                    timeout=5_000)


def test_desaturation_raises_a_high_spo2_alarm(run_scenario: Callable[[str, int], MainWindow],
                                               qtbot: QtBot, shots_dir: Path) -> None:
    # Severe desaturation (SpO2 84-86) from t = 1800 to 1830; its delay is 10 s.
    window = run_scenario("desaturation", 1780)
    bar, tile = window.alarm_bar, window.tiles[Vital.SPO2]
    qtbot.waitUntil(lambda: bar.top is not None and bar.top.text.startswith("SpO2 ")
                    and bar.top.priority == "high", timeout=30_000)
    assert bar.text.startswith("*** SpO2 ") and " < 88" in bar.text
    assert bar.flash_hz == 2.0
    assert tile.alarm_priority == "high" and tile.alarm_flash_ms == 250
    window.grab().save(str(shots_dir / "alarm-e2e-desaturation-1366x768.png"))
    acknowledge_and_pause(window, qtbot, "SpO2 low, severe")
    window.close()
    assert window.recording is None


def test_hypertension_raises_nibp_alarms_and_the_attending_flag(
    run_scenario: Callable[[str, int], MainWindow], qtbot: QtBot, shots_dir: Path,
) -> None:
    # NIBP 184/112 shown from t = 2190 (medium), 202/121 from t = 2490 (high).
    window = run_scenario("hypertensive", 2470)
    bar, tile = window.alarm_bar, window.tiles[Vital.NIBP_SYS]
    qtbot.waitUntil(lambda: not bar.attending_label.isHidden(), timeout=30_000)
    assert bar.attending_label.text().startswith("⚑ Notify attending — NIBP ")
    qtbot.waitUntil(lambda: bar.top is not None and bar.top.priority == "high", timeout=30_000)
    assert re.match(r"\*\*\* NIBP (sys \d+ ≥ 200|dia \d+ ≥ 120) · since ", bar.text)
    assert tile.alarm_priority == "high" and tile.alarm_flash_ms == 250
    window.grab().save(str(shots_dir / "alarm-e2e-hypertensive-1366x768.png"))
    acknowledge_and_pause(window, qtbot, "SBP high, severe")
    assert not bar.attending_label.isHidden()  # only an attending takes the flag down
    window.close()
