"""Latency from a breaching reading reaching the recorder to the alarm being on screen.

The path is the app's: a worker thread (as the serial link's) hands an NIBP measurement to the
``Recorder``; its subscriber, the ``AlarmMonitor``, raises the alarm (NIBP has no condition
delay, so all of the time measured is processing beyond the configured delay) and tells its
listener, the window's ``LiveFeed``; the queued signal reaches the GUI thread, where the
presenter reads the monitor and sets the alarm bar's text. The clock stops when the bar's text
shows the value and the bar has been painted, with the GUI thread processing events as
``app.exec()`` would (trends and tiles keep redrawing at 10 Hz meanwhile).

The baseline, in the same run and window: a plain HR reading through the same recorder and feed
to its numeric tile. The difference is what the alarm path adds. Offscreen Qt platform.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Callable

from benchmarks.table import Row, format_table, median_p99

TRIALS = int(os.environ.get("ALARM_BENCH_TRIALS", "200"))
GOAL_P99_MS = 100
TIMEOUT_S = 5.0




class _Feeder:
    """One long-lived worker thread that hands event batches to the recorder, like a link."""

    def __init__(self, handle: Callable[[list[object]], object]) -> None:
        self._handle = handle
        self._queue: queue.Queue[list[object] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="bench-link", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (batch := self._queue.get()) is not None:
            self._handle(batch)

    def send(self, batch: list[object]) -> float:
        """Queue a batch; returns the time it was handed over."""
        t = time.perf_counter()
        self._queue.put(batch)
        return t

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(5)


def measure() -> tuple[list[float], list[float]]:
    """(alarm latencies, baseline tile latencies) in seconds."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")
    from PySide6.QtWidgets import QApplication, QWidget

    from infusion_monitor.clock import SystemClock
    from infusion_monitor.session.alarm_monitor import AlarmMonitor
    from infusion_monitor.session.recorder import Recorder
    from infusion_monitor.ui.app import make_window
    from infusion_monitor.vitals import Reading, Vital

    app = QApplication.instance() or QApplication([])
    clock = SystemClock()

    class Recording:
        """A real Recorder and AlarmMonitor (no port, no DB, ticker not started)."""

        def __init__(self, *_args: object, **_callbacks: object) -> None:
            self.session_id = 1
            self.recorder = Recorder(1, clock=clock)
            self.alarms = AlarmMonitor(1, clock=clock)
            self.recorder.subscribe(self.alarms.on_events)

        def add_state_listener(self, sink: object) -> None:
            pass

        def start(self) -> Recording:
            return self

        def stop(self) -> None:
            self.alarms.stop()

    window = make_window(clock=clock, start_recording=Recording, list_ports_fn=list)
    window.user = "benchmark"
    window.show()
    assert window.connect_to("datex-s5", "bench", 19200)
    recording = window.recording
    assert isinstance(recording, Recording)
    feeder = _Feeder(recording.recorder.handle)
    bar, tile = window.alarm_bar, window.tiles[Vital.HR]

    def wait(condition: Callable[[], bool], widget: QWidget | None = None) -> float:
        """Process events until ``condition``; then paint ``widget`` (pixels, not just text)."""
        deadline = time.perf_counter() + TIMEOUT_S
        while not condition():
            app.processEvents()
            if time.perf_counter() > deadline:
                raise RuntimeError("nothing reached the screen within 5 s")
        if widget is not None:
            widget.repaint()
        return time.perf_counter()

    def nibp(sys_: int, dia: int) -> list[object]:
        return [Reading(Vital.NIBP_SYS, sys_), Reading(Vital.NIBP_DIA, dia),
                Reading(Vital.NIBP_MEAN, round(dia + (sys_ - dia) / 3))]

    alarm: list[float] = []
    baseline: list[float] = []
    try:
        for i in range(TRIALS):
            hr = 60 + i % 40
            sent = feeder.send([Reading(Vital.HR, hr)])
            baseline.append(wait(lambda hr=hr: tile.value_text == str(hr), tile) - sent)

            sbp = 181 + i % 18  # SBP >= 180: medium, no condition delay
            sent = feeder.send(nibp(sbp, 100))
            alarm.append(wait(lambda s=sbp: f"NIBP sys {s} ≥ 180" in bar.text, bar) - sent)
            feeder.send(nibp(120, 80))  # within limits: the alarm ends by itself
            wait(lambda: bar.top is None)
    finally:
        feeder.close()
        window.close()
    return alarm, baseline


def run() -> list[Row]:
    alarm, baseline = measure()
    med, p99 = median_p99(alarm)
    base_med, base_p99 = median_p99(baseline)
    return [
        Row("breaching NIBP -> alarm bar text: median", med, "ms", "",
            f"HR reading -> tile {base_med:.2f} ms"),
        Row("breaching NIBP -> alarm bar text: p99", p99, "ms", f"<= {GOAL_P99_MS}",
            f"HR reading -> tile {base_p99:.2f} ms"),
    ]


def main() -> None:
    print(format_table(run()))


if __name__ == "__main__":
    main()
