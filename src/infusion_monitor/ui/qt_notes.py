"""Notes: free text at any moment, quick-pick phrases, pinned to a minute; amend with a reason."""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from itertools import pairwise

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from infusion_monitor.errors import ChartingError, StoreError
from infusion_monitor.session.lifecycle import SessionChart
from infusion_monitor.session.scales import QUICK_PHRASES
from infusion_monitor.store.charting import Note
from infusion_monitor.ui import qt_theme as theme
from infusion_monitor.ui.qt_minute_log import coloured
from infusion_monitor.ui.qt_minute_model import AMENDED, hhmm


def note_text(chain: tuple[Note, ...]) -> str:
    """A note as listed: time, minute, author, current text, and each earlier wording."""
    first, last = chain[0], chain[-1]
    minute = f" (min {first.minute})" if first.minute is not None else ""
    text = f"{hhmm(first.t)}{minute} {first.entered_by}: {last.text}"
    for old, new in pairwise(chain):
        text += (f"\n    {AMENDED} amended by {new.entered_by} at {hhmm(new.entered_at)}, "
                 f"reason: {new.reason or ''}; was: {old.text}")
    return text


class NotesPanel(QWidget):
    """Note entry with quick-pick phrases, and the list of notes (amend with a reason)."""

    written = Signal()

    def __init__(self, by: Callable[[], str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._by = by
        self.chart: SessionChart | None = None
        self.entry = QLineEdit()
        self.entry.setPlaceholderText("note (Enter adds it, timestamped now)")
        self.entry.returnPressed.connect(self.add)
        add = QPushButton("Add note")
        add.clicked.connect(self.add)
        self.phrases: dict[str, QPushButton] = {}
        phrases = QGridLayout()
        phrases.setSpacing(4)
        for i, phrase in enumerate(QUICK_PHRASES):
            button = QPushButton(phrase)
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # never pulls focus from typing
            button.clicked.connect(lambda _=False, p=phrase: self.add(phrase=p))
            phrases.addWidget(button, i // 4, i % 4)
            self.phrases[phrase] = button
        self.list = QListWidget()
        self.list.setWordWrap(True)
        self.amend_text = QLineEdit()
        self.amend_text.setPlaceholderText("corrected note")
        self.amend_reason = QLineEdit()
        self.amend_reason.setPlaceholderText("reason for the correction (required)")
        self.amend_reason.returnPressed.connect(self.amend)
        amend = QPushButton("Amend selected note")
        amend.clicked.connect(self.amend)
        self.list.currentItemChanged.connect(self._selected)
        self.message = coloured(QLabel(""), theme.ALERT_RED)
        self.message.setWordWrap(True)

        top = QHBoxLayout()
        top.addWidget(self.entry, 1)
        top.addWidget(add)
        amend_row = QHBoxLayout()
        amend_row.addWidget(self.amend_text, 2)
        amend_row.addWidget(self.amend_reason, 2)
        amend_row.addWidget(amend)
        column = QVBoxLayout(self)
        column.setContentsMargins(4, 2, 4, 2)
        column.setSpacing(2)
        column.addLayout(top)
        column.addLayout(phrases)
        column.addWidget(self.list, 1)
        column.addLayout(amend_row)
        column.addWidget(self.message)

    def set_chart(self, chart: SessionChart | None) -> None:
        self.chart = chart
        self.refresh()

    def refresh(self) -> None:
        chains = [] if self.chart is None else self.chart.notes()
        if self.list.count() == len(chains) and all(
                self.list.item(i).data(Qt.ItemDataRole.UserRole) == c[-1].id
                for i, c in enumerate(chains)):
            return
        current = self.list.currentRow()
        self.list.clear()
        for chain in chains:
            item = QListWidgetItem(note_text(chain))
            item.setData(Qt.ItemDataRole.UserRole, chain[-1].id)
            item.setToolTip(escape(note_text(chain)))
            self.list.addItem(item)
        if 0 <= current < self.list.count():
            self.list.setCurrentRow(current)

    def add(self, phrase: str | None = None) -> None:
        """Add the typed text (prefixed by a quick phrase, if one was clicked) as a note now."""
        chart = self.chart
        if chart is None:
            self.message.setText("✖ no session: connect a monitor first")
            return
        try:
            chart.add_note(self.entry.text(), self._by(), phrase=phrase)
        except (ChartingError, StoreError) as exc:
            self.message.setText(f"✖ {exc}")  # the typed note stays
            return
        self.entry.clear()
        self.message.setText("")
        self.refresh()
        self.written.emit()

    def _selected(self, item: QListWidgetItem | None) -> None:
        chart = self.chart
        if item is None or chart is None:
            return
        note_id = item.data(Qt.ItemDataRole.UserRole)
        chain = next((c for c in chart.notes() if c[-1].id == note_id), None)
        if chain is not None:
            self.amend_text.setText(chain[-1].text)

    def amend(self) -> None:
        chart, item = self.chart, self.list.currentItem()
        if chart is None or item is None:
            self.message.setText("✖ select the note to amend")
            return
        try:
            chart.amend_note(item.data(Qt.ItemDataRole.UserRole), self.amend_text.text(),
                             self._by(), self.amend_reason.text())
        except (ChartingError, StoreError) as exc:
            self.message.setText(f"✖ {exc}")
            return
        self.amend_reason.clear()
        self.message.setText("")
        self.refresh()
        self.written.emit()
