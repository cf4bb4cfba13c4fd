"""Session browser over 10,000 seeded sessions, and the read-only review window."""

from __future__ import annotations

import importlib.util
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QAbstractSpinBox,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QTableView,
    QTextEdit,
)
from pytestqt.qtbot import QtBot
from sqlalchemy import func, select

from infusion_monitor.clock import ManualClock
from infusion_monitor.export.record import load_session_record
from infusion_monitor.store import Database, open_database
from infusion_monitor.store.models import Base
from infusion_monitor.ui.qt_browser import PAGE, SessionBrowser
from infusion_monitor.ui.qt_review import ReviewWindow
from simulators.sessions import seed_copies
from tests.pgdb import ENGINES, database_url

N = 10_000


def _build_session(url: str) -> object:
    spec = importlib.util.spec_from_file_location(
        "export_conftest", Path(__file__).parents[1] / "export" / "conftest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module.build_session(url)


@pytest.fixture(scope="module", params=ENGINES)
def big_db(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Database]:
    """One simulated 75-min session (id 1) and 10,000 copies of it (seeded in bulk)."""
    with database_url(request.param, tmp_path_factory.mktemp("browse")) as url:
        template = _build_session(url)
        template.database.close()  # type: ignore[attr-defined]
        database = open_database(url)
        seed_copies(database.engine, 1, N)
        yield database
        database.close()


def counts(database: Database) -> dict[str, int]:
    with database.engine.connect() as conn:
        return {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
                for t in Base.metadata.sorted_tables}


def test_browser_lists_and_filters_10000(qtbot: QtBot, big_db: Database,
                                         shots_dir: Path) -> None:
    opened: list[int] = []
    started = time.perf_counter()
    browser = SessionBrowser(big_db.engine, opened.append)
    qtbot.addWidget(browser)
    browser.resize(1366, 768)
    browser.show()
    qtbot.waitExposed(browser)
    print(f"list shown in {(time.perf_counter() - started) * 1000:.0f} ms")
    assert len(browser.model.rows) == PAGE and browser.model.canFetchMore()
    browser.model.fetchMore()
    assert len(browser.model.rows) == 2 * PAGE
    browser.grab().save(str(shots_dir / "browser.png"))

    browser.high.setChecked(True)
    assert browser.model.rows and all(s.alarms_high > 0 for s in browser.model.rows)
    browser.high.setChecked(False)
    browser.unsigned.setChecked(True)
    assert all(not s.signed for s in browser.model.rows)
    browser.unsigned.setChecked(False)
    browser.search.setText("mrn-10007")
    assert {s.patient_id for s in browser.model.rows} == {"MRN-10007"}
    assert len(browser.model.rows) == 4  # 10,000 copies over 2,500 patients
    browser.search.setText("hana exam")
    assert browser.model.rows and all(s.patient_name == "Hana Example"
                                      for s in browser.model.rows)
    browser.search.clear()
    browser.nurse.setText("chen")
    browser.apply_filters()
    assert browser.model.rows and all("Chen" in (s.nurse or "") for s in browser.model.rows)
    browser.nurse.clear()
    browser.patient.setText("MRN-0042")
    browser.apply_filters()
    assert [s.session_id for s in browser.model.rows] == [1]
    browser.patient.clear()
    first = browser.model.rows[0].started.astimezone().strftime("%Y-%m-%d")
    browser.date_from.setText(first)
    browser.date_to.setText(first)
    browser.apply_filters()
    assert 1 <= len(browser.model.rows) <= 10
    browser.table.setFocus()
    browser.table.selectRow(0)
    qtbot.keyClick(browser.table, Qt.Key.Key_Return)
    assert opened == [browser.model.rows[0].session_id]


@pytest.fixture
def review(qtbot: QtBot, big_db: Database) -> ReviewWindow:
    record = load_session_record(big_db, 1, ManualClock())
    window = ReviewWindow(record, ManualClock())
    qtbot.addWidget(window)
    window.resize(1366, 768)
    window.show()
    qtbot.waitExposed(window)
    return window


def test_review_cursor_linked_both_ways(qtbot: QtBot, review: ReviewWindow,
                                        shots_dir: Path) -> None:
    assert len(review.record.minutes) == 71
    # Row -> cursor.
    review.minute_table.selectRow(20)
    assert review.selected_minute() == 20
    assert review.cursor_x() == pytest.approx(review.minute_x(20))
    # Chart click -> row and cursor.
    plot = review.trends.hr_plot
    vb = plot.getPlotItem().getViewBox()
    scene_pt = vb.mapViewToScene(pg_point(review.minute_x(33), 100))
    view_pt = plot.mapFromScene(scene_pt)
    qtbot.mouseClick(plot.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(
        int(view_pt.x()), int(view_pt.y())))
    assert review.selected_minute() == 33
    assert review.minute_at(review.cursor_x()) == 33
    review.grab().save(str(shots_dir / "review.png"))
    review.tabs.setCurrentIndex(1)
    review.grab().save(str(shots_dir / "review_alarms.png"))


def pg_point(x: float, y: float) -> object:
    from PySide6.QtCore import QPointF

    return QPointF(x, y)


def test_review_is_read_only(qtbot: QtBot, big_db: Database, review: ReviewWindow) -> None:
    before = counts(big_db)
    # Structurally: the window holds the snapshot only, no database/store/chart object.
    from sqlalchemy import Engine

    from infusion_monitor.session.lifecycle import SessionChart
    from infusion_monitor.store.alarm_log import AlarmLog
    from infusion_monitor.store.charting import ChartStore
    from infusion_monitor.store.repository import Repository

    forbidden = (Database, Engine, Repository, ChartStore, AlarmLog, SessionChart)
    for obj in (review, *review.findChildren(object)):
        for value in vars(obj).values():
            assert not isinstance(value, forbidden), f"{obj!r} holds {value!r}"
    # No editable widget, no button that could act, no editable item.
    for edit in review.findChildren(QLineEdit):
        assert edit.isReadOnly() or not edit.isVisible()
    for edit in (*review.findChildren(QTextEdit), *review.findChildren(QPlainTextEdit)):
        assert edit.isReadOnly()
    assert not [s for s in review.findChildren(QAbstractSpinBox) if s.isVisible()]
    assert not [b for b in review.findChildren(QPushButton) if b.isVisible()]
    for view in review.findChildren(QTableView):
        assert view.editTriggers() == QAbstractItemView.EditTrigger.NoEditTriggers
        model = view.model()
        for r in range(min(model.rowCount(), 50)):
            for c in range(model.columnCount()):
                assert not model.flags(model.index(r, c)) & Qt.ItemFlag.ItemIsEditable
    # Exercise it: keys on the minute log (the live log charts scores on digits), clicks, zoom.
    review.minute_table.setFocus()
    review.minute_table.selectRow(5)
    for key in (Qt.Key.Key_2, Qt.Key.Key_Minus, Qt.Key.Key_1, Qt.Key.Key_Return,
                Qt.Key.Key_Down, Qt.Key.Key_Delete, Qt.Key.Key_F2):
        qtbot.keyClick(review.minute_table, key)
    for i in range(review.tabs.count()):
        review.tabs.setCurrentIndex(i)
        qtbot.keyClick(review.tabs.currentWidget(), Qt.Key.Key_Return)
    vb = review.trends.spo2_plot.getPlotItem().getViewBox()
    vb.scaleBy(x=0.5)
    vb.translateBy(x=5)
    review.select_at(40.0)
    review.close()
    assert counts(big_db) == before


def test_review_shows_all_sections(review: ReviewWindow) -> None:
    record = review.record
    assert review.alarm_table.rowCount() == len(record.alarms)
    # The alarm table reads as the live log does: labels, and worst value against the limit
    # stored with the alarm.
    table = review.alarm_table
    rows = {(table.item(r, 2).text(), table.item(r, 4).text()) for r in range(table.rowCount())}
    severe = [a for a in record.alarms if a.condition == "sbp_high_severe"]
    assert severe and all(a.limit == 200 for a in severe)
    assert {("SBP high, severe", f"NIBP sys {a.worst_value:g} ≥ 200") for a in severe} <= rows
    assert not {c for c, _ in rows} & {a.condition for a in record.alarms}  # no raw names
    assert review.events_table.rowCount() == len(record.device_events)
    assert "called attending" in review.notes_view.toPlainText()
    assert review.rems_values["minutes"].text() == "71"
    audit = [review.audit_table.item(r, 2).text() for r in range(review.audit_table.rowCount())]
    assert "minute 10 amended" in audit and "alarm acknowledged" in audit
    assert review.trends.artifact_data is not None
