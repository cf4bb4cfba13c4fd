"""Latency from a breach at one chair to that chair's tile turning red on the clinic overview.

Against a real PostgreSQL server (``$INFUSION_MONITOR_TEST_PG``; skipped with a reason if it is
not set): the benchmark creates its own database and drops it afterwards. ``CHAIRS`` chairs
record at once through the app's own path, each a ``Recorder`` feeding an ``AlarmMonitor`` and a
``StoreWriter`` (HR, PR and SpO2 every 0.2 s from one worker thread, as serial links would,
over ``HISTORY_MIN`` minutes of stored history, analysed as autovacuum would have), while an
offscreen ``OverviewWindow`` listens.

Each trial hands a severe NIBP (SBP 205, high priority, no condition delay) to one chair's
recorder and stops the clock when that chair's tile has been *painted* red, with the GUI thread
processing events as ``app.exec()`` would. The path measured: alarm engine -> store writer
(commits at most every 0.2 s) -> NOTIFY at commit -> listener -> ``chair_states`` re-read on
the listener's thread -> queued signal -> tile. The alarm is then ended and acknowledged, and
the next trial waits until the tile is no longer red.

Baseline, in the same run: a bare psycopg LISTEN round trip of one NOTIFY (autocommit).
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
from collections.abc import Callable
from datetime import timedelta

from benchmarks.table import Row, format_table, median_p99
from tests.pgdb import scratch_database

PG_ENV = "INFUSION_MONITOR_TEST_PG"
TRIALS = int(os.environ.get("OVERVIEW_BENCH_TRIALS", "30"))
CHAIRS = int(os.environ.get("OVERVIEW_BENCH_CHAIRS", "4"))
HISTORY_MIN = 30
GOAL_MEDIAN_MS = 500
GOAL_P99_MS = 2000
TIMEOUT_S = 10.0




class _Link:
    """One worker thread that hands event batches to recorders, as the serial links do."""

    def __init__(self) -> None:
        self._queue: queue.Queue[tuple[Callable[[list[object]], object], list[object]] | None]
        self._queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="bench-links", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (job := self._queue.get()) is not None:
            handle, batch = job
            handle(batch)

    def send(self, handle: Callable[[list[object]], object], batch: list[object]) -> None:
        self._queue.put((handle, batch))

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(5)


def _baseline(conninfo: str) -> list[float]:
    """Bare LISTEN/NOTIFY round trips on the same server (no app code)."""
    import psycopg

    out = []
    with psycopg.connect(conninfo, autocommit=True) as listen, \
            psycopg.connect(conninfo, autocommit=True) as talk:
        listen.execute("LISTEN bench_baseline")
        for i in range(TRIALS):
            t0 = time.perf_counter()
            talk.execute(f"NOTIFY bench_baseline, '{i}'")
            got = next(iter(listen.notifies(timeout=TIMEOUT_S, stop_after=1)), None)
            if got is None or got.payload != str(i):
                raise RuntimeError("the baseline NOTIFY did not arrive")
            out.append(time.perf_counter() - t0)
    return out


def _seed_history(database: object, session_id: int, now: object) -> None:
    """HISTORY_MIN minutes of 1 Hz HR/PR/SpO2 and 5-minute NIBP before ``now``."""
    from infusion_monitor.vitals import Reading, Vital

    readings = []
    for s in range(HISTORY_MIN * 60, 0, -1):
        t = now - timedelta(seconds=s)  # type: ignore[operator]
        readings += [Reading(Vital.HR, 70 + s % 7, t_received=t),
                     Reading(Vital.PR, 71 + s % 5, t_received=t),
                     Reading(Vital.SPO2, 97 + s % 2, t_received=t)]
        if s % 300 == 0:
            readings += [Reading(Vital.NIBP_SYS, 125, t_received=t),
                         Reading(Vital.NIBP_DIA, 80, t_received=t)]
    database.repository.insert_readings(session_id, readings)  # type: ignore[attr-defined]


def measure(base_url: str) -> dict[str, list[float]]:
    """Latencies (s): ``alarm`` breach -> tile red; ``baseline``; ``read``/``show`` costs."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")
    from PySide6.QtWidgets import QApplication

    from infusion_monitor.clock import SystemClock
    from infusion_monitor.session.alarm_monitor import AlarmMonitor
    from infusion_monitor.session.recorder import Recorder
    from infusion_monitor.store import StoreWriter, open_database
    from infusion_monitor.ui.qt_overview import OverviewWindow
    from infusion_monitor.ui.qt_theme import PRIORITY_COLOURS, apply_theme
    from infusion_monitor.vitals import Reading, Vital

    scratch = contextlib.ExitStack()
    db_url = scratch.enter_context(scratch_database(base_url, "im_bench"))
    app = QApplication.instance() or QApplication([])
    apply_theme(app)  # type: ignore[arg-type]
    red = PRIORITY_COLOURS["high"]
    clock = SystemClock()
    out: dict[str, list[float]] = {"alarm": [], "read": [], "show": []}
    database = open_database(db_url)
    writers: list[StoreWriter] = []
    link = _Link()
    stop_feed = threading.Event()
    window = None
    try:
        out["baseline"] = _baseline(
            database.engine.url.set(drivername="postgresql").render_as_string(
                hide_password=False))
        chairs = []
        for k in range(CHAIRS):
            sid = database.repository.create_session(
                source="record", protocol="datex-s5", started=clock.now() - timedelta(
                    minutes=HISTORY_MIN), workstation_id=f"chair-{k + 1}")
            _seed_history(database, sid, clock.now())
            writer = StoreWriter(database.repository)
            writers.append(writer)
            recorder = Recorder(sid, sink=writer, clock=clock)
            alarms = AlarmMonitor(sid, clock=clock, sink=writer)
            recorder.subscribe(alarms.on_events)
            chairs.append((f"chair-{k + 1}", recorder, alarms))
        with database.engine.begin() as conn:  # statistics, as autovacuum keeps them in use
            conn.exec_driver_sql("ANALYZE")

        def feed() -> None:
            i = 0
            while not stop_feed.wait(0.2):
                i += 1
                for _, recorder, _ in chairs:
                    link.send(recorder.handle, [Reading(Vital.HR, 70 + i % 5),
                                                Reading(Vital.PR, 71 + i % 5),
                                                Reading(Vital.SPO2, 98)])

        feeder = threading.Thread(target=feed, name="bench-feed", daemon=True)
        feeder.start()
        window = OverviewWindow(database.engine, clock)
        window.resize(1366, 768)
        window.show()

        def wait(condition: Callable[[], bool]) -> float:
            deadline = time.perf_counter() + TIMEOUT_S
            while not condition():
                app.processEvents()
                time.sleep(0.001)
                if time.perf_counter() > deadline:
                    raise RuntimeError("the overview did not show it within 10 s")
            return time.perf_counter()

        wait(lambda: len(window.tiles) == CHAIRS)
        for i in range(TRIALS):
            ws, recorder, alarms = chairs[i % CHAIRS]
            tile = window.tiles[ws]
            sent = time.perf_counter()
            link.send(recorder.handle, [Reading(Vital.NIBP_SYS, 205), Reading(Vital.NIBP_DIA, 95),
                                        Reading(Vital.NIBP_MEAN, 132)])
            out["alarm"].append(wait(lambda t=tile: t.painted_colour == red) - sent)
            out["read"].append(window.last_read_s)
            out["show"].append(window.last_show_s)
            link.send(recorder.handle, [Reading(Vital.NIBP_SYS, 120), Reading(Vital.NIBP_DIA, 80),
                                        Reading(Vital.NIBP_MEAN, 93)])
            wait(lambda a=alarms: not any(x.active for x in a.active()))
            alarms.acknowledge_all(by="benchmark")
            if alarms.flag() is not None:
                alarms.acknowledge_attending(by="benchmark", role="attending")
            wait(lambda t=tile: t.painted_colour != red)
    finally:
        stop_feed.set()
        link.close()
        if window is not None:
            window.close()
        for writer in writers:
            writer.close()
        database.close()
        scratch.close()
    return out


def run() -> list[Row]:
    base_url = os.environ.get(PG_ENV)
    if not base_url:
        print(f"overview_latency: skipped: set {PG_ENV}=postgresql+psycopg://user@host:5432/db "
              "to measure against a PostgreSQL server")
        return []
    got = measure(base_url)
    med, p99 = median_p99(got["alarm"])
    base_med, base_p99 = median_p99(got["baseline"])
    read_med, read_p99 = median_p99(got["read"])
    show_med, show_p99 = median_p99(got["show"])
    what = f"breach -> overview tile red ({CHAIRS} chairs, PG)"
    return [
        Row(f"{what}: median", med, "ms", f"<= {GOAL_MEDIAN_MS}",
            f"bare LISTEN/NOTIFY {base_med:.2f} ms"),
        Row(f"{what}: p99", p99, "ms", f"<= {GOAL_P99_MS}",
            f"bare LISTEN/NOTIFY {base_p99:.2f} ms"),
        Row(f"overview re-read, {CHAIRS} chairs (listener thread)", read_med, "ms", "",
            f"p99 {read_p99:.2f} ms"),
        Row("overview update on the GUI thread", show_med, "ms", "", f"p99 {show_p99:.2f} ms"),
    ]


def main() -> None:
    print(format_table(run()))


if __name__ == "__main__":
    main()
