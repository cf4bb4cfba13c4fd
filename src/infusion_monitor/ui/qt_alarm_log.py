"""The session's alarm log as a table, and a one-line box to add the nurse's response note."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from infusion_monitor.ui import qt_theme as theme
from infusion_monitor.ui.qt_numeric import local_hms

COLUMNS = ("Start", "End", "Condition", "Priority", "Worst / limit", "Latched",
           "Acknowledged", "Response")


@dataclass(frozen=True, slots=True)
class AlarmLogRow:
    """One alarm in the log, as the table shows it (built from the alarm log by the window)."""

    key: str
    start: datetime
    end: datetime | None
    condition: str
    priority: str  # high | medium | low
    worst: str  # e.g. "SpO2 84 < 88"
    technical: bool = False
    latched: bool = False
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    responses: tuple[str, ...] = field(default_factory=tuple)


def cells(row: AlarmLogRow) -> tuple[str, ...]:
    """The text of each column for ``row``."""
    ack = (f"{row.acknowledged_by} {local_hms(row.acknowledged_at)}"
           if row.acknowledged_by and row.acknowledged_at else row.acknowledged_by or "—")
    priority = f"{theme.PRIORITY_SYMBOLS.get(row.priority, '*')} {row.priority}"
    if row.technical:
        priority += " (technical)"
    return (local_hms(row.start), local_hms(row.end) if row.end else "active",
            row.condition, priority, row.worst, "yes" if row.latched else "no", ack,
            " · ".join(row.responses))


class AlarmLogView(QWidget):
    """Every alarm of the session, newest first; select one and type what was done."""

    response_added = Signal(str, str)  # alarm key, note

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.rows: list[AlarmLogRow] = []
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(len(COLUMNS) - 1, QHeaderView.ResizeMode.Stretch)
        self.note = QLineEdit()
        self.note.setPlaceholderText(
            'Response to the selected alarm, e.g. "repeated NIBP: 176/104", "called attending"')
        self.add_button = QPushButton("Add response")
        self.feedback = QLabel("")
        row = QHBoxLayout()
        row.addWidget(self.note, 1)
        row.addWidget(self.add_button)
        column = QVBoxLayout(self)
        column.setContentsMargins(4, 4, 4, 4)
        column.addWidget(self.table, 1)
        column.addLayout(row)
        column.addWidget(self.feedback)
        self.add_button.clicked.connect(self._add)
        self.note.returnPressed.connect(self._add)

    def set_rows(self, rows: Sequence[AlarmLogRow]) -> None:
        """Show these alarms (newest first), keeping the selection on the same alarm."""
        selected = self.selected_key()
        self.rows = sorted(rows, key=lambda r: r.start, reverse=True)
        self.table.setRowCount(len(self.rows))
        for i, r in enumerate(self.rows):
            colour = QColor(theme.PRIORITY_COLOURS["technical" if r.technical else r.priority])
            for j, text in enumerate(cells(r)):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, r.key)
                if j == COLUMNS.index("Priority"):
                    item.setForeground(colour)
                self.table.setItem(i, j, item)
            if r.key == selected:
                self.table.selectRow(i)

    def text_at(self, row: int, column: str) -> str:
        item = self.table.item(row, COLUMNS.index(column))
        return item.text() if item is not None else ""

    def selected_key(self) -> str | None:
        items = self.table.selectedItems()
        return str(items[0].data(Qt.ItemDataRole.UserRole)) if items else None

    def select(self, key: str) -> None:
        for i, r in enumerate(self.rows):
            if r.key == key:
                self.table.selectRow(i)
                return

    def _add(self) -> None:
        note = self.note.text().strip()
        key = self.selected_key()
        if key is None:
            self.feedback.setText("Select an alarm in the table first.")
            return
        if not note:
            self.feedback.setText("Type the response first.")
            return
        self.note.clear()
        self.feedback.setText("")
        self.response_added.emit(key, note)
