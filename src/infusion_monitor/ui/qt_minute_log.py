"""The minute log: one row per minute, scores typed from the keyboard, amendments with a reason.

Keyboard (see ``score_keys``): with a minute selected, type the dissociation digit, the RASS
(a digit, or "-" and a digit) and the distress digit, then Enter: one ``chart_minute`` call.
Up/Down move between minutes. A new minute only highlights its row and says so in a status
line: nothing takes the focus away from where the nurse is typing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from PySide6.QtCore import QItemSelectionModel, QModelIndex, Qt, Signal
from PySide6.QtGui import QColor, QKeyEvent, QKeySequence, QPalette, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from infusion_monitor.errors import ChartingError, StoreError
from infusion_monitor.session.alarms import UNASSESSED_STREAK as REMINDER_STREAK
from infusion_monitor.session.chart_alarms import ChartAlarmBridge
from infusion_monitor.session.lifecycle import SessionChart
from infusion_monitor.session.minutes import MinuteRow
from infusion_monitor.session.scales import MINUTE_SCALES
from infusion_monitor.ui import qt_theme as theme
from infusion_monitor.ui.qt_minute_model import (
    COL_SCORES,
    MinuteLogModel,
    anchor_text,
    history_html,
    score_shown,
)
from infusion_monitor.ui.score_keys import ScoreKeys

_ENTER = (Qt.Key.Key_Return, Qt.Key.Key_Enter)
_SCORE_CHARS = set("0123456789-+− ")


def coloured(label: QLabel, colour: str) -> QLabel:
    palette = label.palette()
    palette.setColor(QPalette.ColorRole.WindowText, QColor(colour))
    label.setPalette(palette)
    return label


def scale_help(index: int) -> str:
    """The whole scale, one line, with how to type it."""
    scale = MINUTE_SCALES[index]
    anchors = " · ".join(a.text.replace("-", "−") for a in reversed(scale.anchors)) \
        if scale.low < 0 else " · ".join(a.text for a in scale.anchors)
    how = ("type 0–4, or − then 1–5" if scale.low < 0 else f"type {scale.low}–{scale.high}")
    return f"<b>{scale.title}</b> ({how}; Space = not assessed): {anchors}"


class MinuteTable(QTableView):
    """A table that hands score keys to its owner before the default navigation sees them."""

    def __init__(self, on_key: Callable[[QKeyEvent], bool]) -> None:
        super().__init__()
        self._on_key = on_key

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt override
        if self._on_key(event):
            event.accept()
            return
        super().keyPressEvent(event)


class MinuteLog(QWidget):
    """The minute log panel of one session chart (``set_chart``); ``refresh`` on a timer."""

    charted = Signal()  # an entry or amendment was written

    def __init__(self, by: Callable[[], str], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._by = by
        self.chart: SessionChart | None = None
        self.keys = ScoreKeys()
        self._keys_minute: int | None = None
        self._amend_scores: tuple[int | None, int | None, int | None] | None = None
        self._amend_entry_id: int | None = None
        self.reminder: str | None = None  # the reminder's text while it is in force
        self.bridge: ChartAlarmBridge | None = None
        self._last_current: int | None = None

        self.model = MinuteLogModel()
        self.table = MinuteTable(self._key)
        self.table.setModel(self.model)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setTabKeyNavigation(False)
        self.table.verticalHeader().hide()
        self.table.verticalHeader().setDefaultSectionSize(22)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        self.table.selectionModel().currentRowChanged.connect(self._row_changed)

        self.prompt = coloured(QLabel(""), theme.TEXT)
        self.prompt.setObjectName("minutePrompt")
        self.reminder_label = coloured(QLabel(""), theme.PRIORITY_COLOURS["low"])
        self.reminder_label.setWordWrap(True)
        self.reminder_label.hide()
        self.message = coloured(QLabel(""), theme.ALERT_RED)
        self.message.setWordWrap(True)
        self.anchor = coloured(QLabel(""), theme.AMBER)
        self.anchor.setObjectName("anchorText")
        self.scale_hint = coloured(QLabel(scale_help(0)), theme.MUTED)
        self.scale_hint.setWordWrap(True)
        self.history = QLabel("")
        self.history.setWordWrap(True)
        self.history.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.history.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        side = QScrollArea()
        side.setWidget(self.history)
        side.setWidgetResizable(True)
        side.setMinimumWidth(200)
        side.setMaximumWidth(320)
        side.setFrameShape(QFrame.Shape.NoFrame)
        self._build_amend_bar()

        top = QHBoxLayout()
        top.addWidget(self.prompt, 1)
        top.addWidget(self.reminder_label, 2)
        middle = QHBoxLayout()
        middle.addWidget(self.table, 1)
        middle.addWidget(side)
        column = QVBoxLayout(self)
        column.setContentsMargins(4, 2, 4, 2)
        column.setSpacing(2)
        column.addLayout(top)
        column.addLayout(middle, 1)
        column.addWidget(self.anchor)
        column.addWidget(self.scale_hint)
        column.addWidget(self.amend_bar)
        column.addWidget(self.message)

    def _build_amend_bar(self) -> None:
        self.amend_bar = QFrame()
        self.amend_label = QLabel("")
        self.amend_reason = QLineEdit()
        self.amend_reason.setPlaceholderText("reason for the correction (required)")
        self.amend_button = QPushButton("Amend")
        cancel = QPushButton("Cancel")
        row = QHBoxLayout(self.amend_bar)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(self.amend_label)
        row.addWidget(self.amend_reason, 1)
        row.addWidget(self.amend_button)
        row.addWidget(cancel)
        self.amend_reason.returnPressed.connect(self.commit_amendment)
        self.amend_button.clicked.connect(self.commit_amendment)
        cancel.clicked.connect(self.cancel_amendment)
        escape = QShortcut(QKeySequence(Qt.Key.Key_Escape), self.amend_bar)
        escape.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        escape.activated.connect(self.cancel_amendment)
        self.amend_bar.hide()

    # -- model ------------------------------------------------------------------------------
    def set_chart(self, chart: SessionChart | None) -> None:
        self.chart = chart
        self.keys.clear()
        self.cancel_amendment()
        self.model.set_rows([], None)
        self._last_current = None
        self.refresh()

    def refresh(self, now: datetime | None = None) -> None:
        """Re-read the rows (vitals, entries), move the prompt, raise/clear the reminder."""
        chart = self.chart
        if chart is None:
            self.prompt.setText("No session chart: connect a monitor to start a session.")
            return
        now = now or chart.clock.now()
        current = chart.current_minute(now)
        previous_last = len(self.model.rows) - 1
        selected = self.selected_minute()
        self.model.set_rows(chart.minute_rows(now), current)
        rows = len(self.model.rows)
        if rows and (selected is None or (selected == previous_last and rows - 1 > selected
                                          and not self.keys.started)):
            # Follow the newest minute unless the nurse is elsewhere or mid-entry.
            self.select_minute(rows - 1)
        elif selected is not None and selected == rows - 1:
            self.table.scrollTo(self.model.index(selected, 0))
        if current != self._last_current:
            self._last_current = current
            row = self.row(current)
            if current is not None and row is not None and not row.assessed:
                self.prompt.setText(f"Minute {current} — assess when ready")
            elif current is None:
                self.prompt.setText("Minutes are charted from infusion start to discharge."
                                    if not rows else "Charting ended.")
        # The reminder is the alarm engine's (one bar, one log): the bridge passes it the
        # streak; without alarms (a chart opened for review) it is only shown.
        streak = (self.bridge.update(now) if self.bridge is not None
                  else chart.unassessed_streak(now))
        self.reminder = (f"{streak} minutes in a row not assessed"
                         if streak >= REMINDER_STREAK else None)
        if self.reminder is None:
            self.reminder_label.hide()
        else:
            self.reminder_label.setText(f"* {self.reminder}")
            self.reminder_label.show()
        self._show_history()

    def row(self, minute: int | None) -> MinuteRow | None:
        rows = self.model.rows
        return rows[minute] if minute is not None and 0 <= minute < len(rows) else None

    def selected_minute(self) -> int | None:
        index = self.table.selectionModel().currentIndex()
        return index.row() if index.isValid() else None

    def select_minute(self, minute: int, column: int = 0) -> None:
        index = self.model.index(minute, column)
        self.table.selectionModel().setCurrentIndex(
            index, QItemSelectionModel.SelectionFlag.ClearAndSelect
            | QItemSelectionModel.SelectionFlag.Rows)
        self.table.scrollTo(index)

    # -- keys -------------------------------------------------------------------------------
    def _key(self, event: QKeyEvent) -> bool:
        """Score keys for the selected minute; False lets the table navigate."""
        minute = self.selected_minute()
        if minute is None or self.chart is None:
            return False
        key, text = event.key(), event.text()
        if key in _ENTER:
            if self.keys.started:
                self.commit()
            return True
        if key == Qt.Key.Key_Escape and self.keys.started:
            self.keys.clear()
            self._keys_changed(minute, "entry cleared")
            return True
        if key == Qt.Key.Key_Backspace:
            self.keys.back()
            self._keys_changed(minute)
            return True
        if text and text in _SCORE_CHARS and event.modifiers() in (
                Qt.KeyboardModifier.NoModifier, Qt.KeyboardModifier.ShiftModifier,
                Qt.KeyboardModifier.KeypadModifier):
            self._keys_minute = minute
            try:
                self.keys.press(text)
            except ChartingError as exc:
                self._keys_changed(minute)
                self.show_message(str(exc))
                return True
            self._keys_changed(minute)
            return True
        return False

    def _keys_changed(self, minute: int, note: str = "") -> None:
        self.message.setText(note)
        self.model.set_pending(minute, self.keys)
        step = min(self.keys.step, len(MINUTE_SCALES) - 1)
        # Move the current cell to the scale being typed: the focus shows in place.
        self.table.selectionModel().setCurrentIndex(
            self.model.index(minute, COL_SCORES[step]),
            QItemSelectionModel.SelectionFlag.NoUpdate)
        self._show_hint()

    def _show_hint(self) -> None:
        typed = [anchor_text(MINUTE_SCALES[i], self.keys.values[i])
                 for i in range(min(self.keys.step, len(MINUTE_SCALES)))]
        if self.keys.complete:
            self.anchor.setText("  ·  ".join(typed) + "   — Enter charts it")
            self.scale_hint.setText("Enter charts the minute · Backspace changes the last score"
                                    " · Esc clears")
        else:
            self.anchor.setText("  ·  ".join(typed))
            self.scale_hint.setText(scale_help(self.keys.step))

    def _row_changed(self, current: QModelIndex, previous: QModelIndex) -> None:
        if current.row() == previous.row():
            return
        if self.keys.started:
            self.keys.clear()
            self.model.set_pending(None, None)
            self.message.setText("unfinished entry cleared (nothing was charted)")
        self._keys_minute = None
        self._show_hint()
        self._show_history()

    def _show_history(self) -> None:
        row = self.row(self.selected_minute())
        self.history.setText("" if row is None else history_html(row))

    # -- writes -----------------------------------------------------------------------------
    def show_message(self, text: str) -> None:
        self.message.setText(f"✖ {text}")

    def commit(self) -> None:
        """Enter: chart the typed scores as one entry (or ask a reason if already charted)."""
        minute, chart = self._keys_minute, self.chart
        if minute is None or chart is None:
            return
        row = self.row(minute)
        scores = self.keys.scores()
        if row is not None and row.entry is not None:
            self._open_amendment(row, scores)
            return
        try:
            chart.chart_minute(minute, *scores, by=self._by())
        except (ChartingError, StoreError) as exc:
            self.show_message(str(exc))  # the typed scores stay, as typed
            return
        self.keys.clear()
        self.model.set_pending(None, None)
        self.message.setText("")
        self.prompt.setText(f"Minute {minute} charted.")
        self.refresh()
        self._show_hint()
        self.charted.emit()

    def _open_amendment(self, row: MinuteRow,
                        scores: tuple[int | None, int | None, int | None]) -> None:
        assert row.entry is not None
        self._amend_scores, self._amend_entry_id = scores, row.entry.id
        new = ", ".join(f"{s.title} {score_shown(s, v)}"
                        for s, v in zip(MINUTE_SCALES, scores, strict=True))
        self.amend_label.setText(f"Amend minute {row.minute} to {new} — reason:")
        self.amend_bar.show()
        self.amend_reason.setFocus()  # the nurse's own action asked for this field

    def commit_amendment(self) -> None:
        chart, scores, entry_id = self.chart, self._amend_scores, self._amend_entry_id
        if chart is None or scores is None or entry_id is None:
            return
        try:
            chart.amend_minute(entry_id, *scores, by=self._by(), reason=self.amend_reason.text())
        except (ChartingError, StoreError) as exc:
            self.show_message(str(exc))  # reason and scores stay for a second try
            return
        self.cancel_amendment()
        self.message.setText("")
        self.refresh()
        self.charted.emit()

    def cancel_amendment(self) -> None:
        self._amend_scores = self._amend_entry_id = None
        self.amend_reason.clear()
        was_open = self.amend_bar.isVisible()
        self.amend_bar.hide()
        self.keys.clear()
        self.model.set_pending(None, None)
        self._show_hint()
        if was_open:
            self.table.setFocus()
