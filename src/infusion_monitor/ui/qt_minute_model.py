"""The minute log as a Qt table model: one row per minute from infusion start (read-only)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt
from PySide6.QtGui import QBrush, QColor, QFont

from infusion_monitor.session.minutes import MinuteRow
from infusion_monitor.session.scales import MINUTE_SCALES, NOT_ASSESSED, Scale
from infusion_monitor.store.charting import MinuteEntry
from infusion_monitor.ui import qt_theme as theme
from infusion_monitor.ui.score_keys import ScoreKeys

COLUMNS = ("Min", "Time", "HR", "SpO2 min/med", "NIBP (age)", "RR", "Dissociation", "RASS",
           "Distress", "Status")
COL_SCORES = (6, 7, 8)  # dissociation, RASS, distress (the order of MINUTE_SCALES)
AMENDED = "✎"
_Index = QModelIndex | QPersistentModelIndex


def hhmm(t: datetime) -> str:
    """A time as the nurse reads the wall clock (local time)."""
    return t.astimezone().strftime("%H:%M")


def hhmmss(t: datetime) -> str:
    return t.astimezone().strftime("%H:%M:%S")


def score_shown(scale: Scale, score: int | None) -> str:
    """"−2" / "+1" / "3", or "not assessed"."""
    if score is None:
        return NOT_ASSESSED
    return scale.anchor(score).shown.replace("-", "−")


def anchor_text(scale: Scale, score: int | None) -> str:
    if score is None:
        return f"{scale.title}: {NOT_ASSESSED}"
    return f"{scale.title} " + scale.anchor(score).text.replace("-", "−")


def scores_text(e: MinuteEntry) -> str:
    return ", ".join(f"{s.title} {score_shown(s, v)}"
                     for s, v in zip(MINUTE_SCALES, (e.dissociation, e.rass, e.distress),
                                     strict=True))


def status_text(row: MinuteRow, current_minute: int | None) -> str:
    """"not assessed", "assessed", "late, entered HH:MM", with "✎ amended" when corrected."""
    if row.entry is None:
        return NOT_ASSESSED + (" (in progress)" if row.minute == current_minute else "")
    first = row.first_entry
    text = f"late, entered {hhmm(first.entered_at)}" if row.late and first else "assessed"
    if row.history:
        text += f" · {AMENDED} amended"
    return text


def history_html(row: MinuteRow) -> str:
    """Every version of the minute's entry (author, time, reason) and its notes, for a reviewer."""
    v = row.vitals
    lines = [f"<b>Minute {row.minute}</b> ({hhmm(v.start)}–{hhmm(v.end)})"]
    versions = (*row.history, row.entry) if row.entry is not None else ()
    if not versions:
        lines.append(f"<i>{NOT_ASSESSED}</i>")
    for i, e in enumerate(versions):
        head = "Original" if i == 0 else f"{AMENDED} Amendment {i}"
        current = " (current)" if i == len(versions) - 1 and len(versions) > 1 else ""
        line = (f"{head}{current}: {escape(scores_text(e))}<br>&nbsp;&nbsp;by "
                f"{escape(e.entered_by)} at {hhmmss(e.entered_at)}")
        if e.reason:
            line += f"<br>&nbsp;&nbsp;reason: {escape(e.reason)}"
        lines.append(line)
    for chain in row.notes:
        note = chain[-1]
        lines.append(f"Note {hhmm(chain[0].t)} {escape(chain[0].entered_by)}: "
                     f"{escape(note.text)}" + (f" ({AMENDED})" if len(chain) > 1 else ""))
    return "<br>".join(lines)


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.0f}"


class MinuteLogModel(QAbstractTableModel):
    """Rows come from ``SessionChart.minute_rows``; the pending keys of one row are overlaid."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[MinuteRow] = []
        self.current_minute: int | None = None
        self.pending_minute: int | None = None
        self.pending: ScoreKeys | None = None
        self._italic = QFont()
        self._italic.setItalic(True)

    def set_rows(self, rows: Sequence[MinuteRow], current_minute: int | None) -> None:
        """Replace the rows; rows are only ever appended, so the view keeps its selection."""
        old, new = len(self.rows), len(rows)
        if new < old:  # an undone infusion start: start over
            self.beginResetModel()
            self.rows = list(rows)
            self.current_minute = current_minute
            self.endResetModel()
            return
        before, was_current = self.rows, self.current_minute
        if new > old:
            self.beginInsertRows(QModelIndex(), old, new - 1)
            self.rows = list(rows)
            self.endInsertRows()
        else:
            self.rows = list(rows)
        self.current_minute = current_minute
        # Repaint only rows that changed (the live window refreshes every second).
        changed = [i for i, (a, b) in enumerate(zip(before, rows, strict=False)) if a != b]
        changed += [m for m in (was_current, current_minute)
                    if m is not None and m < min(old, new) and was_current != current_minute]
        if changed:
            self.dataChanged.emit(self.index(min(changed), 0),
                                  self.index(max(changed), len(COLUMNS) - 1))

    def set_pending(self, minute: int | None, keys: ScoreKeys | None) -> None:
        self.pending_minute, self.pending = minute, keys
        if minute is not None and 0 <= minute < len(self.rows):
            self.dataChanged.emit(self.index(minute, 0), self.index(minute, len(COLUMNS) - 1))

    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008, N802 - Qt API
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: B008, N802 - Qt API
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation,  # noqa: N802 - Qt API
                   role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return COLUMNS[section]
        return None

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> object:
        if not index.isValid():
            return None
        row, col = self.rows[index.row()], index.column()
        if role == Qt.ItemDataRole.DisplayRole:
            return self._text(row, col)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(row, col)
        if role == Qt.ItemDataRole.ForegroundRole:
            if col in COL_SCORES and self._pending_value(row, col) is not None:
                return QBrush(QColor(theme.AMBER))
            if (col in COL_SCORES or col == 9) and row.entry is None:
                return QBrush(QColor(theme.MUTED))
            return None
        if role == Qt.ItemDataRole.BackgroundRole and row.minute == self.current_minute:
            return QBrush(QColor("#1d2a38"))  # the new minute, quietly: no flashing, no dialog
        if role == Qt.ItemDataRole.FontRole and col in COL_SCORES and (
                self._pending_value(row, col) is not None):
            return self._italic
        if role == Qt.ItemDataRole.TextAlignmentRole and col < 6:
            return int(Qt.AlignmentFlag.AlignCenter)
        return None

    def _pending_value(self, row: MinuteRow, col: int) -> str | None:
        keys = self.pending
        if keys is None or row.minute != self.pending_minute or not keys.started:
            return None
        i = COL_SCORES.index(col)
        if i < keys.step:
            return f"{score_shown(MINUTE_SCALES[i], keys.values[i])} ▸"
        if i == keys.step and keys.sign:
            return f"{keys.sign.replace('-', '−')}… ▸"
        return None

    def _text(self, row: MinuteRow, col: int) -> str:
        v = row.vitals
        if col == 0:
            return str(row.minute)
        if col == 1:
            return hhmm(v.start)
        if col == 2:
            return _num(v.hr_median)
        if col == 3:
            return "—" if v.spo2_min is None else f"{_num(v.spo2_min)} / {_num(v.spo2_median)}"
        if col == 4:
            if v.nibp is None:
                return "—"
            age = "" if v.nibp_age_s is None else f" ({v.nibp_age_s / 60:.0f} min)"
            return f"{v.nibp.sys:.0f}/{v.nibp.dia:.0f}{age}"
        if col == 5:
            return _num(v.rr_median)
        if col in COL_SCORES:
            pending = self._pending_value(row, col)
            if pending is not None:
                return pending
            if row.entry is None:
                return NOT_ASSESSED if col == COL_SCORES[0] else "·"
            i = COL_SCORES.index(col)
            e = row.entry
            text = score_shown(MINUTE_SCALES[i], (e.dissociation, e.rass, e.distress)[i])
            return f"{AMENDED} {text}" if row.history else text
        return status_text(row, self.current_minute)

    def _tooltip(self, row: MinuteRow, col: int) -> str | None:
        if col in COL_SCORES and row.entry is not None:
            i = COL_SCORES.index(col)
            e = row.entry
            return anchor_text(MINUTE_SCALES[i], (e.dissociation, e.rass, e.distress)[i])
        if col == 2 and row.vitals.hr_source is not None:
            return f"median {row.vitals.hr_source.value.upper()}"
        if col == 9 or (col in COL_SCORES and row.entry is None):
            return history_html(row)
        return None
