"""At start: this chair left a session open (the app stopped unexpectedly); resume it, or close it.

The choice is the nurse's: the dialog offers "Resume session N (initials, phase, left open at
HH:MM)" and "Close it as interrupted". Dismissing it does neither: the session stays open, no
new recording starts beside it, and the window says so.
"""

from __future__ import annotations

from datetime import datetime

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QDialog, QLabel, QPushButton, QVBoxLayout, QWidget

from infusion_monitor.session.resume import OpenSession

RESUME = "resume"
CLOSE = "close"


class ResumeDialog(QDialog):
    """Asks what to do with one open session; ``chosen`` emits RESUME, CLOSE or "" (neither)."""

    chosen = Signal(str)

    def __init__(self, session: OpenSession, now: datetime,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.session = session
        self.choice = ""
        self.setWindowTitle("A session was left open")
        text = session.describe(now)
        self.message = QLabel(f"{text[0].upper()}{text[1:]} was not closed: the app stopped "
                              "unexpectedly. Resume it to go on recording it (the time in "
                              "between is marked as a gap), or close it as interrupted.")
        self.message.setWordWrap(True)
        self.resume_button = QPushButton(f"Resume {text}")
        self.close_button = QPushButton("Close it as interrupted")
        self.resume_button.setDefault(True)
        self.resume_button.clicked.connect(lambda: self._choose(RESUME))
        self.close_button.clicked.connect(lambda: self._choose(CLOSE))
        self.rejected.connect(lambda: self.chosen.emit(self.choice))
        layout = QVBoxLayout(self)
        layout.addWidget(self.message)
        layout.addWidget(self.resume_button)
        layout.addWidget(self.close_button)

    def _choose(self, choice: str) -> None:
        self.choice = choice
        self.accept()
        self.chosen.emit(choice)
