"""The GUI's way to ask for an encrypted database's key: a password dialog before any window.

It is the ``ask_key`` callback of store/keys.py, which asks only when neither the OS keyring
nor the environment has the key; the dialog returns what was typed and keeps nothing.
"""

from __future__ import annotations

import sys

from PySide6.QtWidgets import QApplication, QInputDialog, QLineEdit, QWidget

#: Holds the QApplication made here, which the windows opened next go on using.
_APP: list[QApplication] = []


def ask_key_dialog(prompt: str, parent: QWidget | None = None) -> str | None:
    """The key typed in a no-echo dialog, or None if cancelled."""
    if not isinstance(QApplication.instance(), QApplication):
        _APP.append(QApplication(sys.argv))  # the GUI's own: run_gui and the others reuse it
    key, accepted = QInputDialog.getText(parent, "Infusion Monitor — database key", prompt,
                                         QLineEdit.EchoMode.Password)
    return key if accepted else None
