"""GUI test setup: offscreen Qt, Qt warnings fail the test, and no thread may outlive a test."""

from __future__ import annotations

import os

# Before anything imports Qt or pyqtgraph.
os.environ["QT_QPA_PLATFORM"] = "offscreen"
os.environ["PYQTGRAPH_QT_LIB"] = "PySide6"

import select
import signal
import subprocess
import sys
import threading
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest
from PySide6.QtCore import QThread, QThreadPool
from pytestqt.qtbot import QtBot

from infusion_monitor.clock import ManualClock
from infusion_monitor.devices.base import Event
from infusion_monitor.devices.link import LinkState
from infusion_monitor.session.alarm_monitor import AlarmMonitor
from infusion_monitor.session.recorder import Recorder
from infusion_monitor.store import Database
from infusion_monitor.ui.app import make_window
from infusion_monitor.ui.qt_main_window import MainWindow

REPO = Path(__file__).resolve().parents[2]

HERE = Path(__file__).parent
OFFSCREEN_NOISE = r"^This plugin does not support propagateSizeHints\(\)$"
# QtMultimedia (alarm tones) says these once per process when it loads its FFmpeg backend on a
# machine without PipeWire, VA-API or a running sound server (tests, CI). They are harmless:
# the app then lists no audio output and shows "no audio device" itself.
MULTIMEDIA_NOISE = (
    r"^Couldn't (load|resolve) (pipewire-0\.3|va-x11|va-drm|va|va\(in plugin\))"
    r" (library|symbols)$",
    r"^PulseAudioService: pa_context_connect\(\) failed$",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test under tests/ui fails on any Qt warning (pytest-qt's qt_log_level_fail)."""
    for item in items:
        if HERE in item.path.parents:
            item.add_marker(pytest.mark.qt_log_level_fail("WARNING"))
            # The offscreen platform plugin itself says this for every top-level window.
            item.add_marker(pytest.mark.qt_log_ignore(OFFSCREEN_NOISE, *MULTIMEDIA_NOISE))


@pytest.fixture(autouse=True)
def no_threads_left(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail the test if a Python thread or QThread started during it is still running.

    Autouse without depending on ``qtbot``: it is set up first and torn down last, so the check
    runs after qtbot has closed the test's widgets.
    """
    started: list[weakref.ref[QThread]] = []
    original_start = QThread.start

    def tracking_start(self: QThread, *args: object) -> None:
        started.append(weakref.ref(self))
        original_start(self, *args)

    monkeypatch.setattr(QThread, "start", tracking_start)
    before = set(threading.enumerate())
    yield
    alive = [t.name for t in threading.enumerate()
             if t is not threading.main_thread() and t not in before and t.is_alive()]
    running = [t for ref in started if (t := ref()) is not None and t.isRunning()]
    pool = QThreadPool.globalInstance().activeThreadCount()
    assert not alive, f"threads still alive after the test: {alive}"
    assert not running, f"QThreads still running after the test: {running}"
    assert pool == 0, f"{pool} QThreadPool threads still active after the test"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def run_in_thread(fn: Callable[..., object], *args: object) -> None:
    """Call ``fn`` on a fresh worker thread, as the serial link would, and wait for it."""
    worker = threading.Thread(target=fn, args=args, name="test-feeder")
    worker.start()
    worker.join(5)
    assert not worker.is_alive()


class FakeRecording:
    """Stands in for LiveRecording: a real Recorder and AlarmMonitor, no port and no DB.

    Events are pushed from a worker thread, as the link does. The monitor's ticker thread is
    not started: a test moves the clock and calls ``tick()`` (also from a worker thread).
    """

    def __init__(self, clock: ManualClock, protocol: str, url: str, baud: int,
                 on_store_error: Callable[[Exception], None],
                 on_store_recovered: Callable[[], None]) -> None:
        self.recorder = Recorder(1, clock=clock)
        self.session_id = 1
        self.alarms = AlarmMonitor(1, clock=clock)
        self.recorder.subscribe(self.alarms.on_events)
        self.args = (protocol, url, baud)
        self.on_store_error = on_store_error
        self.on_store_recovered = on_store_recovered
        self.sinks: list[Callable[[LinkState, str], None]] = []
        self.started = self.stopped = False

    def add_state_listener(self, sink: Callable[[LinkState, str], None]) -> None:
        self.sinks.append(sink)

    def start(self) -> FakeRecording:
        self.started = True
        return self

    def stop(self) -> None:
        self.stopped = True
        self.alarms.stop()

    def tick(self) -> None:
        """Let the alarm monitor see the time (its ticker thread would), from a worker."""
        run_in_thread(self.alarms.tick)

    def deliver(self, events: Sequence[Event]) -> None:
        """Hand events to the recorder from a worker thread, as the link does."""
        run_in_thread(self.recorder.handle, list(events))

    def set_state(self, state: LinkState, detail: str = "") -> None:
        """Report a link state from a worker thread, as the link does."""
        run_in_thread(lambda: [sink(state, detail) for sink in self.sinks])


@dataclass
class Harness:
    """A main window wired to fake recordings, and the recordings it asked for."""

    window: MainWindow
    clock: ManualClock
    recordings: list[FakeRecording]

    @property
    def recording(self) -> FakeRecording:
        return self.recordings[-1]


@pytest.fixture
def harness(qtbot: QtBot, clock: ManualClock) -> Harness:
    """A themed, shown main window at 1366×768, not yet connected."""
    return make_harness(qtbot, clock)


def make_harness(qtbot: QtBot, clock: ManualClock, **window_args: object) -> Harness:
    """``harness`` with more arguments for ``make_window`` (``access``, ``authenticate``)."""
    recordings: list[FakeRecording] = []

    def start_recording(protocol: str, url: str, baud: int, *,
                        on_store_error: Callable[[Exception], None],
                        on_store_recovered: Callable[[], None]) -> FakeRecording:
        rec = FakeRecording(clock, protocol, url, baud, on_store_error, on_store_recovered)
        recordings.append(rec)
        return rec

    window = make_window(clock=clock, start_recording=start_recording,
                         list_ports_fn=lambda: [("/dev/ttyUSB0", "FT232R USB UART")],
                         **window_args)  # type: ignore[arg-type]
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    return Harness(window, clock, recordings)


@pytest.fixture
def live(harness: Harness) -> Harness:
    """The harness window connected to a fake recording."""
    assert harness.window.connect_to("datex-s5", "/dev/ttyUSB0", 19200)
    return harness


@pytest.fixture
def shots_dir(tmp_path: Path) -> Path:
    """Where screenshot tests save PNGs: ``$INFUSION_MONITOR_SCREENSHOTS`` to keep them for a
    human to look at, else the test's own temporary directory."""
    target = os.environ.get("INFUSION_MONITOR_SCREENSHOTS")
    path = Path(target) if target else tmp_path / "shots"
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
def database(db: Database) -> Database:
    """The root conftest's ``db`` (a fresh database on each engine), under the name the live
    tests use."""
    return db


class PtySimulator:
    """``python -m simulators --pty ...`` as a subprocess: its device path, stopped at teardown."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "simulators", "--protocol", "datex-s5", "--pty", *args],
            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], 15)
        assert ready, "the simulator printed no device path"
        self.path = self.proc.stdout.readline().strip()
        assert self.path, f"simulator failed: {self.proc.stderr.read() if self.proc.stderr else ''}"

    def stop(self) -> None:
        """End it (even if a test paused it with SIGSTOP) and reap it."""
        proc = self.proc
        if proc.poll() is None:
            proc.send_signal(signal.SIGCONT)
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
        proc.wait(10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


@pytest.fixture
def start_simulator() -> Iterator[Callable[..., PtySimulator]]:
    """Start simulators on ptys (``start_simulator("--scenario", "typical", ...)``)."""
    started: list[PtySimulator] = []

    def start(*args: str) -> PtySimulator:
        started.append(PtySimulator(*args))
        return started[-1]

    try:
        yield start
    finally:
        for sim in started:
            sim.stop()
