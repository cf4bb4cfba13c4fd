"""GUI-thread CPU of the live window drawing a 75 Hz pleth with all trends live (offscreen Qt).

The window is the app's, at 1366x768, connected to a recording made of the real core: a
``Recorder`` writing to a ``StoreWriter`` (SQLite in a temporary directory) and an
``AlarmMonitor``, fed by a worker thread as the serial link would feed it: a 25-sample pleth
block every 1/3 s, HR/PR/SpO2 every second and one NIBP measurement (then every 3 minutes).
Before the measurement the trends are given 45 minutes of history (one value per second per
vital), so each trend redraw draws a realistic session's worth of points.

Measured: the CPU time of the GUI thread (``time.thread_time()`` read on that thread) over
``PLETH_BENCH_SECONDS`` (default 20) of wall time after a 2 s warm-up, as % of one core.

Baseline in the same run: a bare ``pyqtgraph.PlotWidget`` of the sweep's size, alone on
screen, given the same blocks at the same times and drawing the same arrays (a numpy ring with
an erase gap) with ``setData`` at the sweep's frame rate. The ratio is what the rest of the
window (tiles, trends, alarm bar, session clock, the signal path) adds to drawing the trace;
a third run of the window with the sweep not drawing splits the two.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

import math
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from benchmarks.table import Row, format_table

SECONDS = float(os.environ.get("PLETH_BENCH_SECONDS", "20"))
WARM_UP_S = 2.0
HISTORY_S = 45 * 60
RATE_HZ = 75.0
BLOCK = 25
NIBP_EVERY_S = 180
GOAL_PCT = 10.0
GOAL_RATIO = 1.5


def pleth_block(k: int) -> tuple[int, ...]:
    """Block ``k`` of an 8-bit finger pleth at 72/min (as a Nonin in format #2 sends it)."""
    n = np.arange(k * BLOCK, (k + 1) * BLOCK)
    phase = (n * 72 / 60 / RATE_HZ) % 1.0
    wave = np.exp(-(((phase - 0.15) / 0.07) ** 2)) + 0.35 * np.exp(-(((phase - 0.45) / 0.08) ** 2))
    return tuple(int(v) for v in 30 + np.rint(160 * np.minimum(wave, 1.0)))


class _BenchClock:
    """Real time from ``origin``, plus ``offset`` seconds (moved on to lay down history)."""

    def __init__(self, origin: datetime) -> None:
        self.origin = origin
        self.offset = 0.0
        self._m0 = time.monotonic()

    def monotonic(self) -> float:
        return time.monotonic() - self._m0 + self.offset

    def now(self) -> datetime:
        return self.origin + timedelta(seconds=self.monotonic())


class _Feeder:
    """A worker thread calling ``deliver(kind, k)`` on the device's schedule until stopped.

    ``kind`` is "block" (every 1/3 s, k = block number), "vitals" (every 1 s) or "nibp".
    """

    def __init__(self, deliver: Callable[[str, int], None]) -> None:
        self._deliver = deliver
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bench-link", daemon=True)
        self.blocks = 0

    def start(self) -> _Feeder:
        self._thread.start()
        return self

    def _run(self) -> None:
        t0 = time.monotonic()
        k = 0
        while not self._stop.is_set():
            due = t0 + k * BLOCK / RATE_HZ
            if self._stop.wait(max(0.0, due - time.monotonic())):
                return
            self._deliver("block", k)
            if k % 3 == 0:
                self._deliver("vitals", k // 3)
            if k % (3 * NIBP_EVERY_S) == 15:  # 5 s in, then every 3 minutes
                self._deliver("nibp", k)
            k += 1
            self.blocks = k

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def _run_loop(seconds: float) -> tuple[float, float]:
    """Run the GUI event loop for ``seconds``; (GUI-thread CPU s, wall s) spent in it."""
    from PySide6.QtCore import QEventLoop, QTimer

    loop = QEventLoop()
    QTimer.singleShot(round(seconds * 1000), loop.quit)
    cpu, wall = time.thread_time(), time.perf_counter()
    loop.exec()
    return time.thread_time() - cpu, time.perf_counter() - wall


def measure_window(seconds: float, *, sweep: bool = True) -> tuple[float, tuple[int, int], int]:
    """(GUI-thread CPU %, the sweep plot's size, samples the sweep lagged at the end).

    With ``sweep=False`` the sweep takes its blocks but never draws them: what the rest of the
    window costs on its own.
    """
    from PySide6.QtWidgets import QApplication

    from infusion_monitor.devices.base import WaveformBlock
    from infusion_monitor.session.alarm_monitor import AlarmMonitor
    from infusion_monitor.session.recorder import Recorder
    from infusion_monitor.store import StoreWriter, open_database
    from infusion_monitor.ui.app import make_window
    from infusion_monitor.vitals import Reading, Vital

    app = QApplication.instance() or QApplication([])
    clock = _BenchClock(datetime.now(UTC) - timedelta(seconds=HISTORY_S))
    with tempfile.TemporaryDirectory() as tmp:
        database = open_database(f"sqlite:///{Path(tmp) / 'bench.db'}")
        writer = StoreWriter(database.repository)

        class Recording:
            """The real recorder, store writer and alarm monitor; no port (the feeder is it)."""

            def __init__(self, *_args: object, **_callbacks: object) -> None:
                self.session_id = database.repository.create_session(
                    source="gui", protocol="nonin", started=clock.now())
                self.recorder = Recorder(self.session_id, sink=writer, clock=clock)
                self.alarms = AlarmMonitor(self.session_id, clock=clock, sink=writer)
                self.recorder.subscribe(self.alarms.on_events)

            def add_state_listener(self, sink: object) -> None:
                pass

            def start(self) -> Recording:
                return self

            def stop(self) -> None:
                self.alarms.stop()

        window = make_window(clock=clock, start_recording=Recording, list_ports_fn=list)
        window.show()
        assert window.connect_to("nonin", "bench", 9600)
        recording = window.recording
        assert isinstance(recording, Recording)

        def vitals(s: int) -> list[Reading]:
            return [Reading(Vital.HR, 72 + s % 5), Reading(Vital.PR, 71 + s % 5),
                    Reading(Vital.SPO2, 97 + s % 2)]

        def nibp(s: int) -> list[Reading]:
            return [Reading(Vital.NIBP_SYS, 120 + s % 7), Reading(Vital.NIBP_DIA, 80),
                    Reading(Vital.NIBP_MEAN, 93)]

        # 45 minutes of history, handed over on this thread (the feed calls the trends directly).
        for s in range(HISTORY_S):
            clock.offset = float(s)
            recording.recorder.handle(vitals(s) + (nibp(s) if s % NIBP_EVERY_S == 5 else []))
        clock.offset = float(HISTORY_S)
        app.processEvents()

        def deliver(kind: str, k: int) -> None:
            if kind == "block":
                batch: list[object] = [WaveformBlock("pleth", RATE_HZ, pleth_block(k))]
            else:
                batch = vitals(k) if kind == "vitals" else nibp(k)
            recording.recorder.handle(batch)  # type: ignore[arg-type]

        if not sweep:
            window.pleth._timer.timeout.disconnect()
        feeder = _Feeder(deliver).start()
        try:
            _run_loop(WARM_UP_S)
            cpu, wall = _run_loop(seconds)
            pleth = window.pleth
            size = (pleth.plot.width(), pleth.plot.height())
            lag = pleth.received - pleth.revealed
            assert pleth.isVisible() and not pleth.stale and pleth.received > 0, "no pleth"
        finally:
            feeder.stop()
            window.close()
            writer.close()
            database.close()
    return 100 * cpu / wall, size, lag


def measure_bare(seconds: float, size: tuple[int, int]) -> float:
    """GUI-thread CPU % of a bare PlotWidget drawing the same arrays at the same rate."""
    import pyqtgraph as pg
    from PySide6.QtCore import QObject, QTimer, Signal
    from PySide6.QtWidgets import QApplication

    from infusion_monitor.ui.qt_pleth import ERASE_S, FRAME_MS, WINDOW_S

    app = QApplication.instance() or QApplication([])
    cap = round(WINDOW_S * RATE_HZ)
    erase = max(1, round(ERASE_S * RATE_HZ))
    x = np.arange(cap) / RATE_HZ
    ring = np.full(cap, math.nan)
    state = {"written": 0}

    class Relay(QObject):
        blocks = Signal(object)

    def take(samples: tuple[int, ...]) -> None:
        idx = (state["written"] + np.arange(len(samples))) % cap
        ring[idx] = samples
        state["written"] += len(samples)

    def draw() -> None:
        y = ring.copy()
        y[(state["written"] + np.arange(erase)) % cap] = math.nan
        curve.setData(x, y)

    plot = pg.PlotWidget()
    plot.resize(*size)
    plot.setMouseEnabled(x=False, y=False)
    plot.hideButtons()
    plot.hideAxis("left")
    plot.hideAxis("bottom")
    plot.setXRange(0, WINDOW_S, padding=0)
    plot.setYRange(20, 200, padding=0)
    curve = pg.PlotDataItem(pen=pg.mkPen("#2fd3f0", width=1), connect="finite", antialias=False)
    plot.addItem(curve)
    plot.show()
    relay = Relay()
    relay.blocks.connect(take)
    timer = QTimer()
    timer.setInterval(FRAME_MS)
    timer.timeout.connect(draw)
    timer.start()
    feeder = _Feeder(lambda kind, k: relay.blocks.emit(pleth_block(k)) if kind == "block"
                     else None).start()
    try:
        _run_loop(WARM_UP_S)
        cpu, wall = _run_loop(seconds)
    finally:
        feeder.stop()
        timer.stop()
        plot.close()
        app.processEvents()
    return 100 * cpu / wall


def run() -> list[Row]:
    from PySide6.QtWidgets import QApplication

    QApplication.instance() or QApplication([])
    window_pct, size, lag = measure_window(SECONDS)
    bare_pct = measure_bare(SECONDS, size)
    rest_pct, _, _ = measure_window(SECONDS, sweep=False)
    ratio = window_pct / bare_pct if bare_pct > 0 else math.inf
    bare = f"bare PlotWidget {size[0]}x{size[1]} {bare_pct:.2f} % of a core"
    return [
        Row("GUI thread CPU, 75 Hz pleth + all trends live", window_pct, "% core",
            f"<= {GOAL_PCT:g}", bare),
        Row("  ratio to a bare PlotWidget, same arrays/rate", ratio, "x",
            f"<= {GOAL_RATIO:g}", bare),
        Row("  the same window, sweep not drawing", rest_pct, "% core", "",
            f"sweep's own share {window_pct - rest_pct:.2f} % vs bare {bare_pct:.2f} %"),
        Row("  pleth samples not yet drawn at the end", lag, "samples", "<= 50",
            f"{BLOCK} per block, {RATE_HZ:g} per s"),
    ]


def main() -> None:
    print(format_table(run()))


if __name__ == "__main__":
    main()
