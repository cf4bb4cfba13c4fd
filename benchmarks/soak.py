"""Soak: eight back-to-back accelerated 60-minute sessions in one GUI process (offscreen Qt).

The nurse's window is the app's (``make_window``, shown, the heap settled as ``exec_window``
does), recording the bundled simulator (``datex-s5``, typical patient) over a real pty through
the app's own ``LiveRecording`` into a SQLite file, all under one ``ScaledClock``. Each session
is driven through the window's own controls as a nurse would: Connect, the check-in form typed
in, Start baseline, Start infusion once the baseline NIBP is in (5 min), the three scores typed
in the minute log every 5 minutes, End infusion at 40 minutes, Discharge 60 minutes after
Connect, Close, Stop. The next session is the next patient: a new simulator run, Connect again,
a new check-in in the same window.

Printed, per session and as table rows:
- RSS (``VmRSS``, after a collection) at each session start; growth from session 2 to the last
  (goal <= 10 MB). Session 1 is the same run's baseline: it pays for first use (fonts, Qt and
  pyqtgraph caches, SQLAlchemy statement caches), so the growth after it is what a day costs.
  The window's live QObjects and the interpreter's gc-tracked objects are printed beside it.
- The GUI thread's CPU share: ``time.thread_time()`` read on the GUI thread over each session,
  divided by its wall time (nurse's typing included, as at the chair).
- Redraw time per frame: the window's 10 Hz redraw slot, timed together with the paint it
  causes (the plots' scene updates and the window's pending repaint sent at once, as the event
  loop would next do), median and p99 (goal p99 <= 16 ms).
Baseline for the redraw in the same run: three bare ``PlotWidget``s stacked at the trend
panel's size, given the same points as the trends held at the end of the last session and
redrawn (``setData`` and paint) on the same 10 Hz timer, timed the same way.

``SOAK_SESSIONS`` (default 8) and ``SOAK_SPEED`` (simulated seconds per second, default 120:
a 60-minute session takes 30 s) change the run. Exit code 1 when a goal is missed.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

import gc
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from benchmarks.table import Row, format_table, median_p99

SESSIONS = int(os.environ.get("SOAK_SESSIONS", "8"))
SPEED = float(os.environ.get("SOAK_SPEED", "120"))
PROTOCOL = "datex-s5"
BASELINE_MIN, INFUSION_MIN, SESSION_MIN = 5, 40, 60  # from Connect; the simulator's timeline
CHART_EVERY_MIN = 5
#: Scores typed (dissociation, RASS, distress), in turn, on every charted minute.
SCORES = ((0, 0, 0), (1, 0, 0), (2, -1, 0), (2, -2, 1), (1, -1, 0), (1, 0, 0), (0, 0, 0))
NURSE = "R. Nurse"
BARE_TICKS = 150
GOAL_RSS_MB = 10.0
GOAL_P99_MS = 16.0
TIMEOUT_S = 60.0  # any one wait, real seconds; the machine may be loaded
#: The offscreen platform says this for every top-level it shows (tooltips, popups): noise here.
OFFSCREEN_NOISE = "This plugin does not support propagateSizeHints()"


def rss_mb() -> float:
    """This process's resident set size (``VmRSS``), MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def quiet_offscreen_noise() -> None:
    """Drop the offscreen platform's one harmless message; print every other Qt message."""
    from PySide6.QtCore import qInstallMessageHandler

    def handler(_mode: object, _context: object, message: str) -> None:
        if message != OFFSCREEN_NOISE:
            print(message, file=sys.stderr)

    qInstallMessageHandler(handler)


def wait_until(condition: Callable[[], bool], what: str, timeout_s: float = TIMEOUT_S) -> None:
    """Run the GUI event loop (as ``app.exec()`` does) until ``condition()`` holds."""
    from PySide6.QtCore import QEventLoop, QTimer

    if condition():
        return
    loop = QEventLoop()
    poll = QTimer()
    poll.timeout.connect(lambda: condition() and loop.quit())
    poll.start(20)
    deadline = QTimer()
    deadline.setSingleShot(True)
    deadline.timeout.connect(loop.quit)
    deadline.start(round(timeout_s * 1000))
    loop.exec()
    poll.stop()
    deadline.stop()
    if not condition():
        raise RuntimeError(f"soak: {what} did not happen within {timeout_s:g} s")


class FrameTimer:
    """Times ``draw()`` plus the paint it causes, once per tick of ``timer``.

    The slot first runs ``draw`` (the window's ``redraw``), then sends the plots' scenes their
    queued update calls and the top-level window its pending ``UpdateRequest``: the repaint
    the event loop would do next, done now, so it is inside the measured frame. Paint events
    reaching ``watched`` (the trend plots' viewports) are counted, to show the frames did paint.
    """

    def __init__(self, timer, draw: Callable[[], None], top, scenes, watched) -> None:
        from PySide6.QtCore import QEvent, QObject

        self.ms: list[float] = []
        self.cpu_ms: list[float] = []  # the GUI thread's CPU time in the same frames
        self.painted = 0
        self._draw, self._top, self._scenes = draw, top, scenes
        self._paints = 0

        class PaintCounter(QObject):
            def eventFilter(inner, obj, event) -> bool:  # noqa: N802, N805 - Qt override
                if event.type() == QEvent.Type.Paint:
                    self._paints += 1
                return False

        self._counter = PaintCounter()
        for widget in watched:
            widget.installEventFilter(self._counter)
        self._timer = timer
        timer.timeout.disconnect(draw)
        timer.timeout.connect(self.tick)

    def tick(self) -> None:
        from PySide6.QtCore import QCoreApplication, QEvent

        paints = self._paints
        t, cpu = time.perf_counter(), time.thread_time()
        self._draw()
        for scene in self._scenes:
            QCoreApplication.sendPostedEvents(scene, QEvent.Type.MetaCall)
        QCoreApplication.sendPostedEvents(self._top, QEvent.Type.UpdateRequest)
        self.ms.append((time.perf_counter() - t) * 1000)
        self.cpu_ms.append((time.thread_time() - cpu) * 1000)
        self.painted += self._paints > paints


@dataclass
class SessionFigures:
    rss_mb: float
    qobjects: int
    gc_objects: int
    threads: int
    cpu_s: float = 0.0
    wall_s: float = 0.0
    types: Counter[str] = field(default_factory=Counter)


class Nurse:
    """Drives one window through a session with its own buttons, fields and keys."""

    def __init__(self, window, clock) -> None:
        self.window = window
        self.clock = clock
        self.panel = window.charting

    def confirm(self, expected: str) -> None:
        """The phase bar's one action, pressed twice (arm, then confirm)."""
        bar = self.panel.phase_bar
        if bar.action.text() != expected:
            raise RuntimeError(f"soak: expected {expected!r}, the bar offers {bar.action.text()!r}")
        bar.action.click()
        bar.action.click()
        if bar.message.text():
            raise RuntimeError(f"soak: {expected}: {bar.message.text()}")

    def reach(self, t: datetime) -> None:
        wait_until(lambda: self.clock.now() >= t, f"simulated time {t:%H:%M:%S}")
        self.panel.refresh()

    def check_in(self, n: int) -> None:
        from PySide6.QtCore import Qt
        from PySide6.QtTest import QTest

        values = {"patient_id": f"MRN-SOAK-{n}", "patient_name": f"Pat Soak {n}",
                  "birth_date": "1975-02-03", "weight_kg": "80", "dose_mg_per_kg": "0.5",
                  "planned_minutes": str(INFUSION_MIN), "attending": "Dr Attending",
                  "nurse": NURSE}
        fields = self.panel.checkin.fields
        for name, text in values.items():
            fields[name].clear()
            QTest.keyClicks(fields[name], text)
        QTest.keyClick(fields["nurse"], Qt.Key.Key_Return)
        if self.panel.chart is None or self.panel.chart.state is None:
            raise RuntimeError(f"soak: check-in refused: {self.panel.checkin.message.text()}")

    def score(self, minute: int, scores: tuple[int, int, int]) -> None:
        """Move to ``minute`` with Up/Down and type its three scores, then Enter."""
        from PySide6.QtCore import Qt
        from PySide6.QtTest import QTest

        log = self.panel.minutes
        selected = log.selected_minute()
        if selected is None:
            raise RuntimeError("soak: no minute selected in the minute log")
        step = Qt.Key.Key_Up if selected > minute else Qt.Key.Key_Down
        for _ in range(abs(selected - minute)):
            QTest.keyClick(log.table, step)
        d, r, s = scores
        for key in (str(d), *(["-", str(-r)] if r < 0 else [str(r)]), str(s), Qt.Key.Key_Return):
            QTest.keyClick(log.table, key)
        if log.message.text():
            raise RuntimeError(f"soak: minute {minute}: {log.message.text()}")

    def session(self, n: int, device: str) -> None:
        """Connect, chart a whole 60-minute session, close it and stop."""
        from infusion_monitor.devices.registry import get_protocol
        from infusion_monitor.session.phases import Phase
        from infusion_monitor.ui.qt_numeric import TileState
        from infusion_monitor.vitals import Vital

        window, panel = self.window, self.panel
        window.picker.set_selection(PROTOCOL, device, get_protocol(PROTOCOL).serial.baudrate)
        window.picker.connect_button.click()
        if window.recording is None:
            raise RuntimeError(f"soak: Connect failed: {window.error_text()}")
        connected = self.clock.now()
        wait_until(lambda: window.tiles[Vital.HR].state is TileState.VALID, "a first HR")
        self.check_in(n)
        self.confirm("Start baseline")
        chart = panel.chart
        wait_until(lambda: chart.assess_baseline().ready, "a baseline NIBP")
        self.reach(connected + timedelta(minutes=BASELINE_MIN))
        self.confirm("Start infusion")
        start = chart.infusion_start
        panel.show_tab("Minute log")
        panel.minutes.table.setFocus()
        end = connected + timedelta(minutes=SESSION_MIN)
        minute = 0
        while start + timedelta(minutes=minute, seconds=5) < end:
            if minute == INFUSION_MIN:
                self.reach(start + timedelta(minutes=INFUSION_MIN))
                self.confirm("End infusion")
            self.reach(start + timedelta(minutes=minute, seconds=5))
            self.score(minute, SCORES[(minute // CHART_EVERY_MIN) % len(SCORES)])
            minute += CHART_EVERY_MIN
        self.reach(end)
        panel.phase_bar.action.click()  # "Discharge…" opens the discharge check
        panel.refresh()
        if not chart.discharge_check().all_met:
            panel.discharge.reason.setText("attending reviewed")
        panel.discharge.button.click()
        if chart.state is not Phase.DISCHARGED:
            raise RuntimeError(f"soak: discharge refused: {panel.discharge.message.text()}")
        self.confirm("Close")
        window.picker.connect_button.click()  # ■ Stop
        if window.recording is not None:
            raise RuntimeError("soak: Stop left the recording running")


def census(window) -> SessionFigures:
    """Memory and object counts now, after Qt's deferred deletions and a full collection."""
    from PySide6.QtCore import QCoreApplication, QEvent, QObject

    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    gc.collect()
    objects = gc.get_objects()
    return SessionFigures(
        rss_mb=rss_mb(), qobjects=len(window.findChildren(QObject)), gc_objects=len(objects),
        threads=threading.active_count(), types=Counter(type(o).__name__ for o in objects))


def run_soak(sessions: int, speed: float) -> tuple[list[SessionFigures], FrameTimer, dict]:
    """The soak itself: (figures per session, the window's frame timings, the trends' points)."""
    from PySide6.QtWidgets import QApplication

    from infusion_monitor.cli import _recording_factory, start_simulator
    from infusion_monitor.clock import ScaledClock, iso_z
    from infusion_monitor.session.auth import Access
    from infusion_monitor.store import open_database
    from infusion_monitor.ui.app import make_window, settle_heap
    from infusion_monitor.ui.qt_trends import TREND_VITALS

    app = QApplication.instance() or QApplication([])
    quiet_offscreen_noise()
    clock = ScaledClock(speed)
    figures: list[SessionFigures] = []
    with tempfile.TemporaryDirectory() as tmp:
        database = open_database(f"sqlite:///{Path(tmp) / 'soak.db'}")
        access = Access(database.engine)
        window = make_window(
            clock=clock, access=access, list_ports_fn=list,
            start_recording=_recording_factory(database, clock, "demo", "soak", access))
        window.user = NURSE
        window.show()
        settle_heap()
        trends = window.trends
        frames = FrameTimer(window._timer, window.redraw, window,
                            [p.scene() for p in trends.plots],
                            [p.viewport() for p in trends.plots])
        nurse = Nurse(window, clock)
        try:
            for n in range(1, sessions + 1):
                figures.append(census(window))
                proc, device = start_simulator(PROTOCOL, "typical", speed, n, iso_z(clock.now()))
                cpu, wall = time.thread_time(), time.perf_counter()
                try:
                    nurse.session(n, device)
                finally:
                    window.stop_recording()
                    _end(proc)
                figures[-1].cpu_s = time.thread_time() - cpu
                figures[-1].wall_s = time.perf_counter() - wall
                print(_session_line(n, figures), file=sys.stderr, flush=True)
            points = {v: trends.curve_data(v) for v in TREND_VITALS}
            size = (trends.width(), trends.height())
        finally:
            window.close()
            app.processEvents()
            database.close()
    return figures, frames, {"points": points, "size": size}


def _end(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
    if proc.stdout is not None:
        proc.stdout.close()


def _session_line(n: int, figures: list[SessionFigures]) -> str:
    f = figures[-1]
    return (f"soak: session {n} start: RSS {f.rss_mb:.1f} MB, {f.qobjects} QObjects in the "
            f"window, {f.gc_objects} gc objects, {f.threads} threads; session took "
            f"{f.wall_s:.1f} s, GUI thread CPU {100 * f.cpu_s / f.wall_s:.1f} %")


def measure_bare(points: dict, size: tuple[int, int], ticks: int) -> FrameTimer:
    """Frame times of bare PlotWidgets holding the trends' points, redrawn at the same rate."""
    import pyqtgraph as pg
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QVBoxLayout, QWidget

    from infusion_monitor.ui.qt_main_window import REDRAW_MS
    from infusion_monitor.vitals import Vital

    groups = ((Vital.HR, Vital.PR), (Vital.NIBP_SYS, Vital.NIBP_DIA, Vital.NIBP_MEAN),
              (Vital.SPO2,))
    top = QWidget()
    top.resize(*size)
    column = QVBoxLayout(top)
    plots, curves = [], []
    for vitals in groups:
        plot = pg.PlotWidget()
        column.addWidget(plot)
        plots.append(plot)
        for vital in vitals:
            curve = pg.PlotDataItem(pen=pg.mkPen("#2fd3f0", width=1), connect="finite",
                                    antialias=False)
            plot.addItem(curve)
            curves.append((curve, points[vital]))
    top.show()

    def draw() -> None:
        for curve, (x, y) in curves:
            curve.setData(x / 60.0, y)

    timer = QTimer()
    timer.setInterval(REDRAW_MS)
    timer.timeout.connect(draw)
    frames = FrameTimer(timer, draw, top, [p.scene() for p in plots],
                        [p.viewport() for p in plots])
    timer.start()
    try:
        wait_until(lambda: len(frames.ms) >= ticks, "the bare plots' frames")
    finally:
        timer.stop()
        top.close()
    return frames


def run() -> list[Row]:
    from PySide6.QtWidgets import QApplication

    QApplication.instance() or QApplication([])
    started = time.perf_counter()
    figures, frames, held = run_soak(SESSIONS, SPEED)
    bare = measure_bare(held["points"], held["size"], BARE_TICKS)
    wall = time.perf_counter() - started
    n = len(figures)
    first, second, last = figures[0], figures[min(1, n - 1)], figures[-1]
    growth = last.rss_mb - second.rss_mb
    cpu = sum(f.cpu_s for f in figures) / sum(f.wall_s for f in figures)
    med, p99 = median_p99(frames.ms, scale=1)
    _, cpu_p99 = median_p99(frames.cpu_ms, scale=1)
    bare_med, bare_p99 = median_p99(bare.ms, scale=1)
    _, bare_cpu_p99 = median_p99(bare.cpu_ms, scale=1)
    n_points = sum(len(x) for x, _ in held["points"].values())
    print(f"soak: {n} sessions at {SPEED:g}x in {wall:.0f} s; {len(frames.ms)} frames, "
          f"{frames.painted} painted the trends; RSS by session start: "
          + ", ".join(f"{f.rss_mb:.1f}" for f in figures) + " MB", file=sys.stderr)
    if growth > GOAL_RSS_MB:
        grown = (last.types - second.types).most_common(10)
        print(f"soak: gc objects grown most from session 2 to {n}: {grown}", file=sys.stderr)
    bare_text = f"bare PlotWidgets, same {n_points} points"
    return [
        Row(f"soak {n}x60 min: RSS growth, session 2 -> {n}", growth, "MB",
            f"<= {GOAL_RSS_MB:g}",
            f"session 1 start {first.rss_mb:.1f} MB, session {n} {last.rss_mb:.1f} MB"),
        Row(f"  window QObjects, growth session 2 -> {n}", last.qobjects - second.qobjects,
            "objects", "", f"session 1 {first.qobjects}, session {n} {last.qobjects}"),
        Row(f"  GUI thread CPU at {SPEED:g}x", 100 * cpu, "% core", "",
            f"session 1 {100 * first.cpu_s / first.wall_s:.1f} %, "
            f"session {n} {100 * last.cpu_s / last.wall_s:.1f} %"),
        Row("  redraw + paint per frame: median", med, "ms", "", f"{bare_text}: {bare_med:.2f} ms"),
        Row("  redraw + paint per frame: p99", p99, "ms", f"<= {GOAL_P99_MS:g}",
            f"{bare_text}: {bare_p99:.2f} ms"),
        Row("  the same frames' GUI-thread CPU: p99", cpu_p99, "ms", "",
            f"{bare_text}: {bare_cpu_p99:.2f} ms"),
    ]


def main() -> int:
    rows = run()
    print(format_table(rows))
    return 0 if all(r.met is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
