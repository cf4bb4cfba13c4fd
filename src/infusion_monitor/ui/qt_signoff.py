"""The sign-off tab: a supervisor attests the session (printed name, meaning, comment).

Shows the sign-offs so far and the addenda entered since the last one; the core
(session/signoff.py) decides whether the session may be signed and by whom. Once the database
has accounts, the printed name is the logged-in account's and the password is asked again.
"""

from __future__ import annotations

import html
from collections.abc import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from infusion_monitor.clock import Clock
from infusion_monitor.errors import InfusionMonitorError
from infusion_monitor.session.auth import Action, denial_message
from infusion_monitor.session.lifecycle import SessionChart
from infusion_monitor.session.locking import LockState, signed_when
from infusion_monitor.session.signoff import sign_off
from infusion_monitor.store.signoff import MEANINGS

_STATE_TEXT = {
    LockState.UNSIGNED: "Not signed off.",
    LockState.SIGNED: "Signed off: the record is locked; changes are addenda.",
    LockState.SIGNED_WITH_UNSIGNED_ADDENDA: "Signed off, with addenda not yet signed off.",
}


class SignOffPanel(QWidget):
    """Printed name, meaning, comment and a Sign button over one ``SessionChart``."""

    signed = Signal()

    def __init__(self, clock: Clock, user: Callable[[], str], role: Callable[[], str],
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._clock, self._user, self._role = clock, user, role
        self.chart: SessionChart | None = None
        self.state = QLabel("")
        self.state.setObjectName("signoffState")
        self.printed_name = QLineEdit()
        self.printed_name.setMaxLength(256)
        self.printed_name.setPlaceholderText("your name as printed on the record")
        self.meaning = QComboBox()
        for key, label in MEANINGS.items():
            self.meaning.addItem(label, key)
        self.comment = QPlainTextEdit()
        self.comment.setPlaceholderText("findings (required for 'Reviewed with findings')")
        self.comment.setMaximumHeight(70)
        self.password = QLineEdit()
        self.password.setObjectName("signPassword")
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.password.setPlaceholderText("your password: it signs")
        self.password_label = QLabel("Password")
        self._enforcing = False
        self._no_sign: str | None = None  # why the logged-in user may not sign
        self.sign_button = QPushButton("Sign")
        self.sign_button.clicked.connect(self.sign)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.history = QLabel("")
        self.history.setWordWrap(True)
        self.history.setAlignment(Qt.AlignmentFlag.AlignTop)
        self.history.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        form = QFormLayout()
        form.addRow("Printed name", self.printed_name)
        form.addRow("Meaning", self.meaning)
        form.addRow("Comment", self.comment)
        form.addRow(self.password_label, self.password)
        self.password_label.hide()
        self.password.hide()
        buttons = QHBoxLayout()
        buttons.addWidget(self.sign_button)
        buttons.addWidget(self.message, 1)
        left = QVBoxLayout()
        left.addWidget(self.state)
        left.addLayout(form)
        left.addLayout(buttons)
        left.addStretch(1)
        row = QHBoxLayout(self)
        row.setContentsMargins(4, 2, 4, 2)
        row.addLayout(left, 3)
        row.addWidget(self.history, 2)

    def set_chart(self, chart: SessionChart | None) -> None:
        self.chart = chart
        self.message.setText("")
        self.set_permissions()

    def set_permissions(self) -> None:
        """Follow who is logged in: their printed name, the password field, and the Sign
        button disabled (saying who may) for a user who may not sign."""
        access = None if self.chart is None else self.chart.access
        principal = None if access is None else access.principal
        self._enforcing = access is not None and access.enforcing()
        self.password.setVisible(self._enforcing)
        self.password_label.setVisible(self._enforcing)
        self.printed_name.setReadOnly(self._enforcing)
        if self._enforcing:
            self.printed_name.setText(principal.display_name if principal else "")
        self._no_sign = None
        if self._enforcing and (principal is None or not principal.may(Action.SIGN_OFF)):
            self._no_sign = denial_message(principal, Action.SIGN_OFF)
        self.sign_button.setToolTip(self._no_sign or "")
        self.refresh()

    def refresh(self) -> None:
        chart = self.chart
        self.sign_button.setEnabled(chart is not None and self._no_sign is None)
        if chart is None:
            self.state.setText("No session.")
            self.history.setText("")
            return
        self.state.setText(_STATE_TEXT[chart.lock_state()])
        self.history.setText(history_html(chart))

    def sign(self) -> None:
        chart = self.chart
        if chart is None:
            return
        password = self.password.text()
        self.password.clear()
        try:
            done = sign_off(chart.store.engine, chart.session_id, signed_by=self._user(),
                            printed_name=self.printed_name.text(), role=self._role(),
                            meaning=self.meaning.currentData(),
                            comment=self.comment.toPlainText(), clock=self._clock,
                            access=chart.access, password=password)
        except InfusionMonitorError as exc:
            self.message.setText(f"✖ {exc}")  # what was typed stays for a second try
            return
        chart.reload()
        self.comment.clear()
        self.message.setText(f"Signed off by {done.printed_name} on {signed_when(done)}.")
        self.refresh()
        self.signed.emit()


def history_html(chart: SessionChart) -> str:
    """The sign-offs so far, then the addenda since the last one."""
    signoffs = chart.signoffs()
    if not signoffs:
        return "<b>Sign-offs</b><br>none yet"
    e = html.escape
    parts = ["<b>Sign-offs</b>"]
    for s in signoffs:
        parts.append(f"{e(s.printed_name)} ({e(s.role)}), {signed_when(s)}: "
                     f"{e(s.meaning_label)}" + (f" — {e(s.comment)}" if s.comment else ""))
    pending = [a for a in chart.addenda() if not a.signed]
    parts.append(f"<br><b>Addenda since the last sign-off: {len(pending)}</b>")
    for a in pending:
        parts.append(f"{a.entered_at:%Y-%m-%d %H:%M} {e(a.entered_by)}: {e(a.kind)} — "
                     f"{e(a.summary)}" + (f" (reason: {e(a.reason)})" if a.reason else ""))
    return "<br>".join(parts)
