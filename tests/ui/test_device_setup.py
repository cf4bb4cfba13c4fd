"""The "Monitor connection" dialog: defaults per protocol, user edits, auto-detect on a real pty,
and its settings reaching the serial link through Setup… and Connect."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import Harness, PtySimulator
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from infusion_monitor.clock import ScaledClock
from infusion_monitor.devices.base import SerialSettings
from infusion_monitor.devices.detect import Attempt, DetectResult, detect
from infusion_monitor.devices.registry import PROTOCOLS
from infusion_monitor.session.live import LiveRecording
from infusion_monitor.store.db import Database
from infusion_monitor.ui.app import make_window
from infusion_monitor.ui.qt_device_setup import DeviceSetupDialog
from infusion_monitor.ui.qt_numeric import TileState
from infusion_monitor.vitals import Vital

pytestmark = [
    pytest.mark.skipif(sys.platform == "win32", reason="needs POSIX ptys"),
    pytest.mark.timeout(120),
]
PORTS = [("/dev/ttyUSB0", "FT232R USB UART"), ("/dev/ttyS0", "n/a")]
S5 = PROTOCOLS["datex-s5"].serial
#: At 5x the simulated S/5 sends a record every real second, so auto-detect takes ~2 s.
SPEED = "5"


def make_dialog(qtbot: QtBot, **kw: object) -> DeviceSetupDialog:
    dialog = DeviceSetupDialog(list_ports_fn=lambda: PORTS, **kw)  # type: ignore[arg-type]
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    return dialog


def choose(dialog: DeviceSetupDialog, protocol: str) -> None:
    dialog.protocol_combo.setCurrentIndex(dialog.protocol_combo.findData(protocol))


def type_baud(qtbot: QtBot, dialog: DeviceSetupDialog, text: str) -> None:
    """Type into the baud field as a user would (select all, then the keys)."""
    edit = dialog.baud_combo.lineEdit()
    edit.selectAll()
    qtbot.keyClick(edit, Qt.Key.Key_Backspace)
    qtbot.keyClicks(edit, text)


def test_changing_the_protocol_fills_in_its_defaults(qtbot: QtBot) -> None:
    dialog = make_dialog(qtbot)
    for name, info in PROTOCOLS.items():
        choose(dialog, name)
        assert dialog.settings() == info.serial, name
        assert dialog.baud_combo.currentText() == str(info.serial.baudrate)
        assert dialog.edited == set()
    choose(dialog, "datex-s5")
    assert dialog.parity_combo.currentText() == "Even"
    assert dialog.rtscts_check.isChecked()
    choose(dialog, "intellivue")
    assert (dialog.baud_combo.currentText(), dialog.parity_combo.currentText(),
            dialog.stop_bits_combo.currentText(), dialog.data_bits_combo.currentText(),
            dialog.rtscts_check.isChecked()) == ("115200", "None", "1", "8", False)


def test_a_field_the_user_changed_stays_until_the_protocol_changes(qtbot: QtBot) -> None:
    dialog = make_dialog(qtbot, protocol="datex-s5")
    type_baud(qtbot, dialog, "115200")
    dialog.parity_combo.setCurrentIndex(dialog.parity_combo.findData("N"))
    dialog.rtscts_check.click()
    assert dialog.edited == {"baudrate", "parity", "rtscts"}

    # Other actions in the dialog keep what was typed.
    dialog.refresh_button.click()
    dialog.stop_bits_combo.setCurrentIndex(dialog.stop_bits_combo.findData(2.0))
    assert dialog.settings() == SerialSettings(115200, 8, "N", 2.0, False)

    choose(dialog, "masimo")  # another protocol: its own settings again
    assert dialog.settings() == PROTOCOLS["masimo"].serial and dialog.edited == set()
    choose(dialog, "datex-s5")  # and back: the S/5's defaults, not what was typed before
    assert dialog.settings() == S5

    type_baud(qtbot, dialog, "")
    assert not dialog.buttons.button(dialog.buttons.StandardButton.Ok).isEnabled()
    dialog.restore_defaults()
    assert dialog.settings() == S5 and dialog.edited == set()


def test_a_port_can_be_picked_or_typed(qtbot: QtBot) -> None:
    dialog = make_dialog(qtbot)
    assert dialog.port_combo.itemText(0) == "/dev/ttyUSB0 — FT232R USB UART"
    dialog.port_combo.setCurrentIndex(0)
    assert dialog.url() == "/dev/ttyUSB0"
    dialog.port_combo.setEditText("")
    assert not dialog.detect_button.isEnabled()
    qtbot.keyClicks(dialog.port_combo.lineEdit(), "socket://10.0.0.7:4001")
    assert dialog.url() == "socket://10.0.0.7:4001" and dialog.detect_button.isEnabled()


@pytest.mark.parametrize("protocol", ["datex-s5", "intellivue", "masimo", "nonin"])
def test_auto_detect_finds_the_simulator_and_selects_it(
    protocol: str, qtbot: QtBot, start_simulator: Callable[..., PtySimulator],
) -> None:
    for module in (PROTOCOLS[protocol].target.partition(":")[0],
                   f"simulators.{'datex' if protocol == 'datex-s5' else protocol}"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} does not exist yet")
    sim = start_simulator("--protocol", protocol, "--speed", SPEED)
    attempts: list[Attempt] = []

    def recording_detect(url: str, protocols: object, **kw: object) -> DetectResult:
        progress = kw.pop("on_progress")

        def both(a: Attempt) -> None:
            attempts.append(a)
            progress(a)  # type: ignore[operator]

        return detect(url, protocols, on_progress=both, **kw)  # type: ignore[arg-type]

    # Start on another protocol with a changed field: a find replaces both.
    other = "nonin" if protocol == "masimo" else "masimo"
    dialog = make_dialog(qtbot, protocol=other, url=sim.path, detect_fn=recording_detect)
    type_baud(qtbot, dialog, "4800")
    qtbot.mouseClick(dialog.detect_button, Qt.MouseButton.LeftButton)
    assert dialog.detecting
    assert dialog.detect_button.text().endswith("Cancel auto-detect")
    assert not dialog.protocol_combo.isEnabled()
    qtbot.waitUntil(lambda: dialog.status_label.text().startswith("Trying "), timeout=5000)
    qtbot.waitUntil(lambda: not dialog.detecting, timeout=60_000)

    info = PROTOCOLS[protocol]
    assert dialog.protocol() == protocol
    assert dialog.settings() == info.serial and dialog.edited == set()
    assert dialog.status_label.text().startswith(f"✔ Found {info.title} on {sim.path}")
    assert attempts and attempts[-1].protocol == protocol
    assert dialog.detect_button.text().endswith("Auto-detect") and dialog.protocol_combo.isEnabled()
    assert dialog.details_label.text().splitlines()[-1].endswith("(found)")
    dialog.accept()


def test_auto_detect_can_be_cancelled_and_closing_joins_its_thread(
    qtbot: QtBot, start_simulator: Callable[..., PtySimulator],
) -> None:
    sim = start_simulator()  # real speed: the S/5 try lasts seconds
    dialog = make_dialog(qtbot, protocol="datex-s5", url=sim.path)
    dialog.detect_button.click()
    qtbot.waitUntil(lambda: dialog.status_label.text().startswith("Trying "), timeout=5000)
    dialog.detect_button.click()  # now "Cancel auto-detect"
    qtbot.waitUntil(lambda: not dialog.detecting, timeout=3000)
    assert "cancelled" in dialog.status_label.text()
    assert dialog.last_result is not None and dialog.last_result.cancelled
    assert dialog.protocol() == "datex-s5"  # nothing was selected

    # Closing mid-detect stops and joins the worker (the fixture fails on a leftover thread).
    dialog.detect_button.click()
    qtbot.waitUntil(lambda: dialog.status_label.text().startswith("Trying "), timeout=5000)
    worker = dialog._worker
    assert worker is not None and worker.isRunning()
    dialog.reject()
    assert worker.isFinished() and not dialog.detecting


def test_setup_settings_reach_the_serial_link(
    qtbot: QtBot, start_simulator: Callable[..., PtySimulator], database: Database,
) -> None:
    sim = start_simulator("--speed", SPEED)
    clock = ScaledClock(float(SPEED))
    calls: list[dict[str, object]] = []
    recordings: list[LiveRecording] = []

    def start_recording(protocol: str, url: str, baud: int, **kw: object) -> LiveRecording:
        calls.append(dict(kw))
        rec = LiveRecording(database, protocol=protocol, url=url, source="gui", clock=clock,
                            baudrate=baud, **kw)  # type: ignore[arg-type]
        recordings.append(rec)
        return rec

    window = make_window(clock=clock, start_recording=start_recording, list_ports_fn=list)
    qtbot.addWidget(window)
    window.show()
    picker = window.picker

    # The S/5 behind a USB adapter at 115200 8N1 without handshake (protocols.md).
    picker.setup_button.click()
    dialog = picker.setup_dialog
    assert dialog is not None and dialog.isVisible()
    choose(dialog, "datex-s5")
    dialog.port_combo.setEditText(sim.path)
    type_baud(qtbot, dialog, "115200")
    dialog.parity_combo.setCurrentIndex(dialog.parity_combo.findData("N"))
    dialog.rtscts_check.setChecked(False)
    qtbot.mouseClick(dialog.buttons.button(dialog.buttons.StandardButton.Ok),
                     Qt.MouseButton.LeftButton)
    assert not dialog.isVisible()
    assert (picker.protocol(), picker.url(), picker.baud_spin.value()) == (
        "datex-s5", sim.path, 115200)
    assert picker.line_label.text() == "8N1"

    picker.connect_button.click()
    wanted = SerialSettings(115200, 8, "N", 1, False)
    assert calls[-1]["serial_settings"] == wanted
    link = recordings[-1].link
    assert link.settings == wanted and link.baudrate == 115200
    # The link really reads with them: values arrive from the simulator.
    qtbot.waitUntil(lambda: window.tiles[Vital.HR].state is TileState.VALID, timeout=20_000)
    picker.connect_button.click()  # stop
    assert not link.running

    # Choosing another protocol in the bar drops Setup…'s settings for that one's defaults;
    # the quick path then passes no line settings at all, as before.
    picker.protocol_combo.setCurrentIndex(picker.protocol_combo.findData("masimo"))
    picker.protocol_combo.setCurrentIndex(picker.protocol_combo.findData("datex-s5"))
    assert picker.serial_settings() == S5 and picker.line_label.text() == "8E1 RTS/CTS"
    picker.connect_button.click()
    assert "serial_settings" not in calls[-1]
    assert recordings[-1].link.settings == S5
    window.close()
    assert not recordings[-1].link.running


def test_quick_connect_still_works_with_the_protocol_defaults(
    harness: Harness, qtbot: QtBot,
) -> None:
    w = harness.window
    w.picker.port_combo.setCurrentIndex(0)
    w.picker.connect_button.click()
    rec = harness.recording
    assert rec.started and rec.args == ("datex-s5", "/dev/ttyUSB0", 19200)
    assert w.picker.connect_button.text() == "■ Stop"
    assert not w.picker.setup_button.isEnabled()  # locked while recording, like the rest


def test_setup_cancel_changes_nothing(harness: Harness, qtbot: QtBot, tmp_path: Path) -> None:
    picker = harness.window.picker
    before = (picker.protocol(), picker.url(), picker.serial_settings())
    dialog = picker.open_setup()
    choose(dialog, "nonin")
    dialog.port_combo.setEditText(str(tmp_path / "elsewhere"))
    dialog.reject()
    assert (picker.protocol(), picker.url(), picker.serial_settings()) == before
