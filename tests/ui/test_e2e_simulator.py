"""The window on the real simulator over a real pty, recording into a real SQLite database."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import pytest
from conftest import PtySimulator
from pytestqt.qtbot import QtBot

from infusion_monitor.clock import ScaledClock
from infusion_monitor.devices.base import Event
from infusion_monitor.session.live import LiveRecording
from infusion_monitor.store.db import Database
from infusion_monitor.ui.app import make_window
from infusion_monitor.ui.qt_numeric import TileState
from infusion_monitor.vitals import Reading, Vital

pytestmark = pytest.mark.e2e
SPEED = 30


@pytest.fixture
def simulator(tmp_path: Path, start_simulator: Callable[..., PtySimulator],
              ) -> tuple[subprocess.Popen[str], str, Path]:
    """The Datex S/5 simulator on a pty: (process, device path, truth file)."""
    truth = tmp_path / "truth.jsonl"
    sim = start_simulator("--scenario", "typical", "--speed", str(SPEED), "--truth", str(truth))
    return sim.proc, sim.path, truth


def truth_values(path: Path, vital: Vital) -> list[float]:
    """Every value of ``vital`` the simulator logged as sent, in order."""
    lines = path.read_text(encoding="utf-8").splitlines()
    values = (json.loads(line)["values"].get(vital.value) for line in lines if line.strip())
    return [v for v in values if v is not None]


class ReadingCounter:
    """Counts the readings the recorder delivers per vital (runs on the link thread)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[Vital] = Counter()

    def __call__(self, events: Sequence[Event]) -> None:
        with self._lock:
            self._counts.update(e.vital for e in events if isinstance(e, Reading))

    def __getitem__(self, vital: Vital) -> int:
        with self._lock:
            return self._counts[vital]


def test_live_window_on_the_simulator(
    qtbot: QtBot, simulator: tuple[subprocess.Popen[str], str, Path], database: Database,
    shots_dir: Path,
) -> None:
    proc, device, truth = simulator
    clock = ScaledClock(SPEED)
    counter = ReadingCounter()
    recordings: list[LiveRecording] = []

    def start_recording(protocol: str, url: str, baud: int, *,
                        on_store_error: Callable[[Exception], None],
                        on_store_recovered: Callable[[], None]) -> LiveRecording:
        rec = LiveRecording(database, protocol=protocol, url=url, source="gui", clock=clock,
                            baudrate=baud, on_store_error=on_store_error,
                            on_store_recovered=on_store_recovered)
        rec.recorder.subscribe(counter)
        recordings.append(rec)
        return rec

    window = make_window(clock=clock, start_recording=start_recording,
                         initial=("datex-s5", device, 19200), list_ports_fn=list)
    qtbot.addWidget(window)
    window.show()
    hr_tile = window.tiles[Vital.HR]
    qtbot.waitUntil(lambda: hr_tile.state is TileState.VALID, timeout=20_000)
    qtbot.waitUntil(lambda: len(window.trends.curve_data(Vital.HR)[1]) >= 12, timeout=20_000)
    assert window.error_text() == ""
    assert window.device_status.text() == "● Connected"
    window.grab().save(str(shots_dir / "e2e-1366x768.png"))

    # Freeze the simulator: nothing more is sent, everything sent can still be read. A stop
    # between its write of a frame and its truth-log line leaves one frame the log lacks.
    proc.send_signal(signal.SIGSTOP)

    def settled(vital: Vital) -> bool:
        sent = len(truth_values(truth, vital))
        return counter[vital] in (sent, sent + 1) and (
            len(window.trends.curve_data(vital)[1]) == counter[vital])

    for vital in (Vital.HR, Vital.PR, Vital.SPO2):
        qtbot.waitUntil(lambda v=vital: settled(v), timeout=10_000)
        sent = truth_values(truth, vital)
        shown = window.trends.curve_data(vital)[1].tolist()
        assert shown[: len(sent)] == sent
        assert len(shown) - len(sent) in (0, 1)
        assert len(shown) == counter[vital]  # the curve holds every reading delivered
        assert window.tiles[vital].value == shown[-1]
        if len(shown) == len(sent):
            assert window.tiles[vital].value == sent[-1]
    assert hr_tile.value_text == str(round(window.trends.curve_data(Vital.HR)[1][-1]))

    window.close()
    assert not recordings[0].link.running
    proc.send_signal(signal.SIGCONT)
