"""Session browser and review speed with 10,000 sessions stored (SQLite file, offscreen Qt).

Seeds one fully simulated 75-minute session (tests/export/conftest.py ``build_session``:
2,748 readings, 70 alarm events, markers, minute entries, notes, CADSS) and 10,000 bulk copies
of its charted and alarm rows (readings only in 3 copies; see simulators/sessions.py).

Measured, median and p99 over repeats:
- list: the browser window built, its first page (200 sessions) aggregated by
  ``browse_sessions``, filled into the model and painted;
- filters: one filter change (model refilled, first page);
- open: ``load_session_record`` of the full 75-minute session plus the ``ReviewWindow`` built,
  shown and painted with its charts drawn.
Baselines in the same run: ``SELECT count(*) FROM sessions`` and a raw fetch of the newest 200
session rows (no aggregation), so the ratio shows what aggregation costs.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.table import Row, format_table, median_p99

SESSIONS = int(os.environ.get("REVIEW_BENCH_SESSIONS", "10000"))
REPEATS = int(os.environ.get("REVIEW_BENCH_REPEATS", "20"))
GOAL_MS = 300


def _stats(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    seconds = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        seconds.append(time.perf_counter() - t)
    return median_p99(seconds)


def run() -> list[Row]:
    from PySide6.QtWidgets import QApplication
    from sqlalchemy import text

    from infusion_monitor.clock import ManualClock
    from infusion_monitor.export.record import load_session_record
    from infusion_monitor.store import open_database
    from infusion_monitor.store.browse import browse_sessions
    from infusion_monitor.ui.app import settle_heap
    from infusion_monitor.ui.qt_browser import PAGE, SessionBrowser
    from infusion_monitor.ui.qt_review import ReviewWindow
    from infusion_monitor.ui.qt_theme import apply_theme
    from simulators.sessions import seed_copies
    from tests.export.conftest import build_session

    app = QApplication.instance() or QApplication(sys.argv)
    apply_theme(app)  # type: ignore[arg-type]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sessions.db"
        started = time.perf_counter()
        build_session(f"sqlite:///{path}").database.close()
        database = open_database(f"sqlite:///{path}")
        seed_copies(database.engine, 1, SESSIONS)
        seed_s = time.perf_counter() - started
        engine = database.engine

        def count() -> None:
            with engine.connect() as conn:
                conn.execute(text("SELECT count(*) FROM sessions")).scalar_one()

        def raw_page() -> None:
            with engine.connect() as conn:
                conn.execute(text("SELECT id, started_us, ended_us, patient_id FROM sessions "
                                  f"ORDER BY started_us DESC, id DESC LIMIT {PAGE}")).all()

        def show_list() -> None:
            browser = SessionBrowser(engine, lambda _sid: None)
            browser.resize(1366, 768)
            browser.show()
            app.processEvents()
            browser.table.viewport().repaint()
            browser.close()
            browser.deleteLater()
            app.processEvents()

        browser = SessionBrowser(engine, lambda _sid: None)
        browser.resize(1366, 768)
        browser.show()
        app.processEvents()

        def refilter(**kw: object) -> Callable[[], None]:
            def go() -> None:
                browser.model.set_filters(**kw)
                app.processEvents()
                browser.table.viewport().repaint()
            return go

        def open_review() -> None:
            record = load_session_record(database, 1, ManualClock())
            window = ReviewWindow(record, ManualClock())
            window.resize(1366, 768)
            window.show()
            app.processEvents()
            window.repaint()
            window.close()
            window.deleteLater()
            app.processEvents()

        show_list()  # warm up caches and imports once
        open_review()
        settle_heap()  # as the review command does once its browser is up
        count_med, _ = _stats(count, REPEATS)
        raw_med, _ = _stats(raw_page, REPEATS)
        browse_med, browse_p99 = _stats(lambda: browse_sessions(engine, limit=PAGE), REPEATS)
        list_med, list_p99 = _stats(show_list, REPEATS)
        filters = {
            "high alarms": {"had_high_alarms": True}, "unsigned": {"unsigned": True},
            "search name": {"search": "hana exam"}, "nurse": {"nurse": "chen"},
        }
        filter_rows = []
        for name, kw in filters.items():
            med, p99 = _stats(refilter(**kw), REPEATS)
            filter_rows.append(Row(f"filter '{name}' (median; p99 {p99:.0f} ms)", med, "ms",
                                   f"<= {GOAL_MS}"))
        all_med, _ = _stats(lambda: browse_sessions(engine), 3)
        open_med, open_p99 = _stats(open_review, max(5, REPEATS // 2))
        browser.close()
        database.close()
    base = f"count(*) {count_med:.1f} ms, raw page {raw_med:.1f} ms"
    return [
        Row(f"seed {SESSIONS} sessions (one-off)", seed_s, "s"),
        Row(f"browse_sessions page of {PAGE}", browse_med, "ms", "", base),
        Row("browse_sessions page p99", browse_p99, "ms", "", base),
        Row(f"browse_sessions all {SESSIONS} (no page)", all_med, "ms"),
        Row("list shown (median)", list_med, "ms", f"<= {GOAL_MS}", base),
        Row("list shown (p99)", list_p99, "ms", f"<= {GOAL_MS}"),
        *filter_rows,
        Row("open 75-min session, charts drawn (median)", open_med, "ms", f"<= {GOAL_MS}"),
        Row("open 75-min session, charts drawn (p99)", open_p99, "ms", f"<= {GOAL_MS}"),
    ]


if __name__ == "__main__":
    print(format_table(run()))
