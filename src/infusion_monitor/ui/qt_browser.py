"""The session browser: every session with its summary, filters, search; opens a review.

The list is paged: ``browse_sessions`` aggregates one page (``PAGE`` sessions) at a time and
the model fetches the next page when the view scrolls to the end, so the first screen costs the
same with 100 or 10,000 sessions. The browser only reads. With user accounts the browser and
its review windows lock after a while without input (ui/qt_login.py).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor, QKeyEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QApplication,
    QCheckBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMainWindow,
    QTableView,
    QVBoxLayout,
    QWidget,
)
from sqlalchemy import Engine

from infusion_monitor.clock import Clock
from infusion_monitor.config import Settings, load_settings
from infusion_monitor.errors import InfusionMonitorError
from infusion_monitor.session.auth import Access, Principal
from infusion_monitor.store.browse import SessionSummary, browse_sessions
from infusion_monitor.store.db import Database
from infusion_monitor.ui import qt_theme as theme
from infusion_monitor.ui.qt_login import InactivityLock, ask_login

PAGE = 200
COLUMNS = ("Date", "Patient ID", "Patient", "Nurse", "Attending", "Duration", "High",
           "Medium", "Low", "Technical", "Unassessed min", "Sign-off")
_Index = QModelIndex | QPersistentModelIndex


def cells(s: SessionSummary) -> tuple[str, ...]:
    dur = "open" if s.duration_s is None else f"{s.duration_s / 60:.0f} min"
    unassessed = ("—" if s.unassessed_minutes is None
                  else f"{s.unassessed_minutes} of {s.monitored_minutes}")
    return (s.started.astimezone().strftime("%Y-%m-%d %H:%M"), s.patient_id or "—",
            s.patient_name or "—", s.nurse or "—", s.attending or "—", dur,
            str(s.alarms_high), str(s.alarms_medium), str(s.alarms_low),
            str(s.alarms_technical), unassessed, "signed" if s.signed else "unsigned")


class SessionListModel(QAbstractTableModel):
    """Rows of ``browse_sessions``, fetched a page at a time (read-only)."""

    def __init__(self, engine: Engine) -> None:
        super().__init__()
        self._engine = engine
        self.filters: dict[str, Any] = {}
        self.rows: list[SessionSummary] = []
        self._texts: list[tuple[str, ...]] = []
        self._more = False

    def set_filters(self, **filters: Any) -> None:
        self.beginResetModel()
        self.filters = filters
        self.rows, self._texts, self._more = [], [], True
        self._fetch()
        self.endResetModel()

    def _fetch(self) -> list[SessionSummary]:
        page = browse_sessions(self._engine, limit=PAGE, offset=len(self.rows), **self.filters)
        self._more = len(page) == PAGE
        self.rows += page
        self._texts += [cells(s) for s in page]
        return page

    def canFetchMore(self, parent: _Index = QModelIndex()) -> bool:  # noqa: B008, N802
        return not parent.isValid() and self._more

    def fetchMore(self, parent: _Index = QModelIndex()) -> None:  # noqa: B008, N802
        if parent.isValid() or not self._more:
            return
        page = browse_sessions(self._engine, limit=PAGE, offset=len(self.rows), **self.filters)
        self._more = len(page) == PAGE
        if page:
            self.beginInsertRows(QModelIndex(), len(self.rows), len(self.rows) + len(page) - 1)
            self.rows += page
            self._texts += [cells(s) for s in page]
            self.endInsertRows()

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008, N802
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation,  # noqa: N802 - Qt API
                   role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section]
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid():
            return None
        if role == Qt.ItemDataRole.DisplayRole:
            return self._texts[index.row()][index.column()]
        s = self.rows[index.row()]
        if role == Qt.ItemDataRole.ForegroundRole:
            if index.column() == 6 and s.alarms_high:
                return QBrush(QColor(theme.ALERT_RED))
            if index.column() == 11 and not s.signed:
                return QBrush(QColor(theme.AMBER))
        return None


class _Table(QTableView):
    def __init__(self, on_open: Callable[[], None]) -> None:
        super().__init__()
        self._on_open = on_open

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt override
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self._on_open()
            return
        super().keyPressEvent(event)


def _date(text: str) -> datetime | None:
    """``yyyy-mm-dd`` as local midnight (None if blank or not a date)."""
    try:
        return datetime.strptime(text.strip(), "%Y-%m-%d").astimezone()
    except ValueError:
        return None


class SessionBrowser(QMainWindow):
    """Filters on top, the session list below; double-click or Enter opens the review."""

    def __init__(self, engine: Engine, open_session: Callable[[int], object],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Infusion Monitor — sessions")
        self._open_session = open_session
        self.model = SessionListModel(engine)
        self.date_from = QLineEdit()
        self.date_to = QLineEdit()
        for box, hint in ((self.date_from, "from yyyy-mm-dd"), (self.date_to, "to yyyy-mm-dd")):
            box.setPlaceholderText(hint)
            box.setMaximumWidth(130)
        self.patient = QLineEdit()
        self.patient.setPlaceholderText("patient ID")
        self.nurse = QLineEdit()
        self.nurse.setPlaceholderText("nurse")
        self.high = QCheckBox("had high alarms")
        self.unsigned = QCheckBox("unsigned")
        self.search = QLineEdit()
        self.search.setPlaceholderText("search patient ID or name")
        self.search.setClearButtonEnabled(True)
        self.status = QLabel("")
        self.table = _Table(self.open_selected)
        self.table.setModel(self.model)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(22)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setStretchLastSection(True)
        for col, width in enumerate((130, 90, 140, 120, 120, 70, 45, 60, 45, 70, 110)):
            self.table.setColumnWidth(col, width)
        self.table.doubleClicked.connect(lambda _i: self.open_selected())

        filters = QHBoxLayout()
        for w in (self.date_from, self.date_to, self.patient, self.nurse, self.high,
                  self.unsigned):
            filters.addWidget(w)
        filters.addWidget(self.search, 1)
        central = QWidget()
        column = QVBoxLayout(central)
        column.setContentsMargins(6, 6, 6, 6)
        column.addLayout(filters)
        column.addWidget(self.table, 1)
        column.addWidget(self.status)
        self.setCentralWidget(central)
        for box in (self.date_from, self.date_to, self.patient, self.nurse, self.search):
            box.returnPressed.connect(self.apply_filters)
        self.search.textChanged.connect(lambda _t: self.apply_filters())
        self.high.toggled.connect(lambda _b: self.apply_filters())
        self.unsigned.toggled.connect(lambda _b: self.apply_filters())
        self.apply_filters()

    def filters(self) -> dict[str, Any]:
        to = _date(self.date_to.text())
        return {
            "date_from": _date(self.date_from.text()),
            "date_to": None if to is None else to + timedelta(days=1),  # inclusive day
            "patient": self.patient.text() or None, "nurse": self.nurse.text() or None,
            "had_high_alarms": self.high.isChecked(), "unsigned": self.unsigned.isChecked(),
            "search": self.search.text() or None,
        }

    def apply_filters(self) -> None:
        self.model.set_filters(**self.filters())
        n = len(self.model.rows)
        more = "+" if self.model.canFetchMore() else ""
        self.status.setText(f"{n}{more} sessions" + (" (scroll for more)" if more else ""))
        if n:
            self.table.selectRow(0)

    def selected_session(self) -> int | None:
        index = self.table.currentIndex()
        return self.model.rows[index.row()].session_id if index.isValid() else None

    def open_selected(self) -> None:
        sid = self.selected_session()
        if sid is not None:
            self._open_session(sid)


def run_browser(database: Database, clock: Clock, access: Access | None = None,
                settings: Settings | None = None) -> int:
    """Run the session browser until it closes; each opened session gets a review window.

    With user accounts: a login first (cancelled: exit 0), every window locks after the
    clinic's ``review_lock_min`` without input, and opening and exporting are checked for
    the logged-in user's role (session/auth.py).
    """
    from infusion_monitor.export.record import load_session_record
    from infusion_monitor.session.auth import export_recorder
    from infusion_monitor.session.clinic_defaults import effective_settings
    from infusion_monitor.ui.app import DEFAULT_SIZE, check_qt_binding, login_for
    from infusion_monitor.ui.qt_review import ReviewWindow
    from infusion_monitor.ui.qt_theme import apply_theme

    check_qt_binding()
    access = access or Access(database.engine)
    settings = effective_settings(settings or load_settings(), database.engine)
    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(sys.argv)
    app.setApplicationName("Infusion Monitor")
    apply_theme(app)
    authenticate = login_for(access)
    lock: InactivityLock | None = None
    if authenticate is not None:
        principal = ask_login(authenticate, title="Infusion Monitor — review: log in")
        if principal is None:
            return 0
        access.principal = principal
        lock = InactivityLock(clock, settings.review_lock_s, login_for(access, "unlock")
                              or authenticate, on_login=_set_principal(access),
                              username=lambda: access.principal.username
                              if access.principal else "")
    reviews: list[ReviewWindow] = []

    def open_session(session_id: int) -> None:
        try:
            record = load_session_record(database, session_id, clock, access=access)
        except InfusionMonitorError as exc:  # a role that may not review: say so, stay open
            browser.status.setText(f"✖ {exc}")
            return
        window = ReviewWindow(record, clock, export_audit=export_recorder(access))
        window.resize(*DEFAULT_SIZE)
        window.show()
        reviews.append(window)
        if lock is not None:
            lock.add(window)

    browser = SessionBrowser(database.engine, open_session)
    browser.resize(*DEFAULT_SIZE)
    browser.show()
    if lock is not None:
        lock.add(browser)
    try:
        return app.exec()
    finally:
        if lock is not None:
            lock.stop()


def _set_principal(access: Access) -> Callable[[Principal], None]:
    def set_principal(principal: Principal) -> None:
        access.principal = principal

    return set_principal
