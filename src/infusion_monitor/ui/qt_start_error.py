"""The GUI's one clear line when it cannot start (a damaged, foreign or newer database).

Started from a desktop launcher nobody sees stderr, so the line is shown in a message box
too; the command still prints it and exits 1 (cli.py).
"""

from __future__ import annotations

import sys

from PySide6.QtWidgets import QApplication, QMessageBox

#: Holds the QApplication made here (as qt_key_prompt does), for the box's lifetime.
_APP: list[QApplication] = []


def show_start_error(text: str) -> None:
    """A modal error box with ``text``; returns when it is closed."""
    if not isinstance(QApplication.instance(), QApplication):
        _APP.append(QApplication(sys.argv))
    box = QMessageBox(QMessageBox.Icon.Critical, "Infusion Monitor — cannot start", text,
                      QMessageBox.StandardButton.Close)
    box.setObjectName("startError")
    box.exec()
