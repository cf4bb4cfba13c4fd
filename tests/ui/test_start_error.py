"""The GUI cannot start on a bad database: a message box with the one line, exit 1, the file
untouched (the same line the CLI prints; tests/store/test_storage_faults.py covers the rest)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox
from pytestqt.qtbot import QtBot

from infusion_monitor.cli import main


@pytest.mark.parametrize("command", [[], ["demo"], ["review"]], ids=["gui", "demo", "review"])
def test_a_foreign_database_is_a_message_box_and_exit_1(
        qtbot: QtBot, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        command: list[str]) -> None:
    path = tmp_path / "other-app.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
    con.commit()
    con.close()
    before = path.read_bytes()
    shown: list[str] = []

    def close_when_up() -> None:
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            QTimer.singleShot(20, close_when_up)
            return
        shown.append(box.text())
        box.close()

    QTimer.singleShot(0, close_when_up)
    assert main(["--db", str(path), *command]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(shown) == 1 and "belongs to another application" in shown[0]
    assert err == [f"infusion-monitor: {shown[0]}"]
    assert path.read_bytes() == before
