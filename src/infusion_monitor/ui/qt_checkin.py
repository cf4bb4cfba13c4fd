"""Check-in: who the patient is and what is planned; the core's message shown beside the field.

Typed input is never cleared on an error. After check-in the form shows what was stored; an
amendment re-states it with a reason (the earlier version stays in the record).
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from infusion_monitor.errors import ChartingError, StoreError
from infusion_monitor.session.lifecycle import SessionChart
from infusion_monitor.session.validate import CHECK_IN_FIELDS
from infusion_monitor.store.charting import CheckIn
from infusion_monitor.ui import qt_theme as theme
from infusion_monitor.ui.qt_minute_log import coloured

LABELS = {
    "patient_id": "Patient ID (MRN)", "patient_name": "Name",
    "birth_date": "Date of birth (YYYY-MM-DD)", "weight_kg": "Weight (kg)",
    "dose_mg_per_kg": "Planned dose (mg/kg)", "planned_minutes": "Planned duration (min)",
    "attending": "Attending clinician", "nurse": "Nurse",
}
#: The start of the core's message for each field (validate.check_in_fields), to place it.
MESSAGE_PREFIX = {
    "patient_id": "patient ID", "patient_name": "patient name", "birth_date": "date of birth",
    "weight_kg": "weight", "dose_mg_per_kg": "planned dose",
    "planned_minutes": "planned duration", "attending": "attending", "nurse": "nurse",
}
_NUMBERS = {"weight_kg": float, "dose_mg_per_kg": float, "planned_minutes": int}


def parsed(name: str, text: str) -> object:
    """A number field as a number when it is one; otherwise the text, for the core to refuse."""
    kind = _NUMBERS.get(name)
    if kind is None:
        return text
    try:
        return kind(text.strip().replace(",", "."))
    except ValueError:
        return text


class CheckInForm(QFrame):
    """The check-in fields; ``check_in`` (or Enter) writes them through the core."""

    checked_in = Signal()

    def __init__(self, by: Callable[[], str], default_nurse: str = "",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._by = by
        self.chart: SessionChart | None = None
        self.fields: dict[str, QLineEdit] = {}
        self.errors: dict[str, QLabel] = {}
        form = QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)
        form.setVerticalSpacing(2)
        for name in CHECK_IN_FIELDS:
            edit = QLineEdit()
            edit.setObjectName(f"checkin_{name}")
            edit.returnPressed.connect(self.submit)
            error = _plain(coloured(QLabel(""), theme.ALERT_RED))
            error.hide()
            cell = QHBoxLayout()
            cell.addWidget(edit, 1)
            cell.addWidget(error, 2)
            form.addRow(LABELS[name], cell)
            self.fields[name], self.errors[name] = edit, error
        self.fields["nurse"].setText(default_nurse)
        self.reason = QLineEdit()
        self.reason.setPlaceholderText("reason for amending the check-in (required)")
        self.reason_label = QLabel("Amendment reason")
        form.addRow(self.reason_label, self.reason)
        self.button = QPushButton("Check in")
        self.button.clicked.connect(self.submit)
        self.amend = QPushButton("Amend check-in…")
        self.amend.clicked.connect(self._start_amend)
        self.message = _plain(coloured(QLabel(""), theme.ALERT_RED))
        self.message.setWordWrap(True)
        buttons = QHBoxLayout()
        buttons.addWidget(self.button)
        buttons.addWidget(self.amend)
        buttons.addStretch(1)
        column = QVBoxLayout(self)
        column.setContentsMargins(4, 2, 4, 2)
        column.addLayout(form)
        column.addLayout(buttons)
        column.addWidget(self.message)
        self._amending = False
        self.set_chart(None)

    def set_chart(self, chart: SessionChart | None) -> None:
        self.chart = chart
        self._amending = False
        self.refresh()

    def refresh(self) -> None:
        chart = self.chart
        details = None if chart is None else chart.check_in_details()
        if details is not None and not self._amending:
            self._show(details)
        editable = chart is not None and (details is None or self._amending)
        for edit in self.fields.values():
            edit.setReadOnly(not editable)
        self.button.setEnabled(editable)
        self.button.setText("Save amendment" if self._amending else "Check in")
        self.amend.setVisible(details is not None and not self._amending)
        self.reason.setVisible(self._amending)
        self.reason_label.setVisible(self._amending)

    def values(self) -> dict[str, object]:
        return {name: parsed(name, edit.text()) for name, edit in self.fields.items()}

    def submit(self) -> None:
        """Check in (or save the amendment); a refusal is shown next to its field."""
        chart = self.chart
        if chart is None or not self.button.isEnabled():
            return
        self._clear_errors()
        try:
            if self._amending:
                current = chart.check_in_details()
                changes = {k: v for k, v in self.values().items()
                           if current is None or _differs(getattr(current, k), v)}
                chart.amend_check_in(by=self._by(), reason=self.reason.text(), **changes)
            else:
                chart.check_in(**self.values(), by=self._by())  # type: ignore[arg-type]
        except (ChartingError, StoreError) as exc:
            self.show_error(str(exc))
            return
        self._amending = False
        self.reason.clear()
        self.message.setText("")
        self.refresh()
        self.checked_in.emit()

    def show_error(self, text: str) -> None:
        """The core's message beside the field it is about (and below the form)."""
        self.message.setText(f"✖ {text}")
        for name, prefix in MESSAGE_PREFIX.items():
            if text.startswith(prefix):
                self.errors[name].setText(f"✖ {text}")
                self.errors[name].show()
                self.fields[name].setFocus()
                break

    def _clear_errors(self) -> None:
        for label in self.errors.values():
            label.setText("")
            label.hide()

    def _show(self, c: CheckIn) -> None:
        for name, edit in self.fields.items():
            value = getattr(c, name)
            edit.setText("" if value is None else (
                value.isoformat() if hasattr(value, "isoformat") else f"{value:g}"
                if isinstance(value, float) else str(value)))

    def _start_amend(self) -> None:
        self._amending = True
        self.refresh()
        self.reason.setFocus()


def _plain(label: QLabel) -> QLabel:
    """A message that may quote what was typed ("got '<b>…'"): shown as typed, never as HTML."""
    label.setTextFormat(Qt.TextFormat.PlainText)
    return label


def _differs(old: object, new: object) -> bool:
    if hasattr(old, "isoformat"):
        return old.isoformat() != str(new).strip()  # type: ignore[union-attr]
    return old != new
