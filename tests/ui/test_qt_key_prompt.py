"""The GUI asks for an encrypted database's key in a no-echo dialog, through the same core
function as the terminal (store/keys.py), before any window opens."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QInputDialog, QLineEdit
from pytestqt.qtbot import QtBot

from infusion_monitor.errors import StoreError
from infusion_monitor.store import open_database
from infusion_monitor.store.keys import KEY_ENV_VAR
from infusion_monitor.ui.qt_key_prompt import ask_key_dialog

KEY = "dialog key 7"


pytestmark = pytest.mark.usefixtures("no_keyring")  # tests/conftest.py


def answering(qtbot: QtBot, answers: list[Callable[[QInputDialog], None]],
              seen: list[str]) -> None:
    """Act on each key dialog in turn as soon as it is up (each runs its own modal loop);
    ``seen`` gets each one's prompt."""
    def act_when_up() -> None:
        dialog = QApplication.activeModalWidget()
        if not isinstance(dialog, QInputDialog) or dialog.property("answered"):
            QTimer.singleShot(20, act_when_up)
            return
        dialog.setProperty("answered", True)
        seen.append(dialog.labelText())
        answers.pop(0)(dialog)
        if answers:
            QTimer.singleShot(0, act_when_up)
    QTimer.singleShot(0, act_when_up)


def type_key(key: str) -> Callable[[QInputDialog], None]:
    def act(dialog: QInputDialog) -> None:
        assert dialog.textEchoMode() == QLineEdit.EchoMode.Password
        dialog.setTextValue(key)
        dialog.accept()
    return act


def test_a_new_encrypted_database_takes_its_key_from_the_dialog_twice(
        qtbot: QtBot, tmp_path: Path) -> None:
    url = f"sqlite+pysqlcipher:///{tmp_path / 'enc.db'}"
    seen: list[str] = []
    answering(qtbot, [type_key(KEY), type_key(KEY)], seen)
    with open_database(url, ask_key=ask_key_dialog) as database:
        assert database.repository.list_sessions() == []
    assert len(seen) == 2
    assert str(tmp_path / "enc.db") in seen[0] and seen[1] == "Repeat the key: "
    # the file has the typed key: the environment's copy of it opens it without asking
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(KEY_ENV_VAR, KEY)
        open_database(url, ask_key=None).close()


def test_cancelling_the_dialog_opens_nothing(qtbot: QtBot, tmp_path: Path) -> None:
    path = tmp_path / "enc.db"
    answering(qtbot, [lambda d: d.reject()], [])
    with pytest.raises(StoreError, match="no key for the encrypted database"):
        open_database(f"sqlite+pysqlcipher:///{path}", ask_key=ask_key_dialog)
    assert not path.exists()
