"""Exports from the read-only review window: every format, progress when slow, cancel, errors."""

from __future__ import annotations

import csv
import importlib.util
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import hl7
import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QProgressDialog, QPushButton
from pytestqt.qtbot import QtBot

from infusion_monitor.clock import ManualClock
from infusion_monitor.export.formats import FORMATS
from infusion_monitor.export.hl7v2 import build_oru
from infusion_monitor.export.record import SessionRecord, load_session_record
from infusion_monitor.ui import qt_export
from infusion_monitor.ui.qt_export import SHOW_PROGRESS_AFTER_MS
from infusion_monitor.ui.qt_review import ReviewWindow
from tests.pgdb import ENGINES, database_url


@pytest.fixture(scope="module", params=ENGINES)
def record(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[SessionRecord]:
    """The simulated 75-minute session of the export tests, loaded as the review loads it."""
    spec = importlib.util.spec_from_file_location(
        "export_conftest_for_review", Path(__file__).parents[1] / "export" / "conftest.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    with database_url(request.param, tmp_path_factory.mktemp("review-export")) as url:
        session = module.build_session(url)
        yield load_session_record(session.database, session.session_id, ManualClock())
        session.database.close()


class Recorder:
    """Stands in for the save dialog and the message box, and remembers what was shown."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.asked: list[str] = []
        self.warnings: list[str] = []

    def ask(self, _parent, suggested: str, _filter: str) -> str | None:
        self.asked.append(suggested)
        return None if self.path is None else str(self.path)

    def warn(self, _parent, _title: str, text: str) -> None:
        self.warnings.append(text)


def open_review(qtbot: QtBot, record: SessionRecord, user: Recorder) -> ReviewWindow:
    window = ReviewWindow(record, ManualClock())
    qtbot.addWidget(window)
    window.exporter._ask_path = user.ask
    window.exporter._notify = user.warn
    window.show()
    qtbot.waitExposed(window)
    return window


def run_export(qtbot: QtBot, window: ReviewWindow, fmt: str) -> tuple[bool, str, bool]:
    """Trigger the menu action; returns (ok, status message, progress dialog was shown)."""
    with qtbot.waitSignal(window.exporter.finished, timeout=60_000) as blocker:
        window.export_actions[fmt].trigger()
    ok, message = blocker.args
    assert window.statusBar().currentMessage() == message
    return ok, message, window.exporter.progress_shown


def test_every_format_is_in_the_menu_and_writes_what_the_cli_writes(
        qtbot: QtBot, record: SessionRecord, tmp_path: Path) -> None:
    assert [a.text() for a in window_actions(qtbot, record)] == [f.title for f in FORMATS.values()]
    outputs = {}
    for fmt in FORMATS:
        user = Recorder(tmp_path / f"out-{fmt}")
        window = open_review(qtbot, record, user)
        ok, message, _ = run_export(qtbot, window, fmt)
        assert ok, message
        assert user.asked == [f"session-{record.info.id}-2026-05-04{FORMATS[fmt].suffix}"]
        assert message.startswith("Wrote ") and str(user.path) in message
        outputs[fmt] = user.path.read_bytes()
        assert (user.path.stat().st_mode & 0o777) == 0o600
        window.close()
    with (tmp_path / "out-csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(record.readings)
    assert outputs["pdf"].startswith(b"%PDF")
    bundle = json.loads(outputs["fhir"])
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection"
    # HL7: exactly the message the exporter builds from the record (its export time included),
    # readable by a second library.
    (expected,) = build_oru(record)
    assert outputs["hl7"].decode() == expected + "\r"
    assert str(hl7.parse(expected).segment("PID")[3][0][0]) == record.check_in.patient_id
    assert list(tmp_path.glob("*.part")) == []


def window_actions(qtbot: QtBot, record: SessionRecord):
    window = open_review(qtbot, record, Recorder(None))
    actions = list(window.export_actions.values())
    # Choosing no file in the dialog writes nothing and starts nothing.
    assert window.exporter.export("pdf") is False and not window.exporter.busy
    return actions


def test_slow_export_shows_progress_and_fast_one_does_not(
        qtbot: QtBot, record: SessionRecord, tmp_path: Path) -> None:
    # The FHIR Bundle validates every resource as it is built: over a second for 75 minutes.
    slow = open_review(qtbot, record, Recorder(tmp_path / "b.json"))
    ok, message, shown = run_export(qtbot, slow, "fhir")
    assert ok and shown, message
    seconds = float(message.rsplit("(", 1)[1].split(" s)")[0])
    assert seconds > SHOW_PROGRESS_AFTER_MS / 1000
    fast = open_review(qtbot, record, Recorder(tmp_path / "r.csv"))
    ok, message, shown = run_export(qtbot, fast, "csv")
    assert ok and not shown, message


def test_cancel_stops_the_export_and_writes_no_file(
        qtbot: QtBot, record: SessionRecord, tmp_path: Path, monkeypatch) -> None:
    # Stretch the export (0.1 s per progress report) so that Cancel surely lands mid-way
    # however fast or busy the machine is; the cancel itself is the real path.
    real = qt_export.write_export

    def slow(*args, progress, **kwargs):
        def report(done: int, total: int) -> None:
            time.sleep(0.1)
            progress(done, total)
        return real(*args, progress=report, **kwargs)

    monkeypatch.setattr(qt_export, "write_export", slow)
    target = tmp_path / "b.json"
    window = open_review(qtbot, record, Recorder(target))
    with qtbot.waitSignal(window.exporter.finished, timeout=60_000) as blocker:
        window.export_actions["fhir"].trigger()
        qtbot.waitUntil(lambda: window.exporter.dialog is not None
                        and window.exporter.dialog.isVisible(), timeout=10_000)
        dialog = window.exporter.dialog
        assert isinstance(dialog, QProgressDialog)
        (button,) = dialog.findChildren(QPushButton)
        assert button.text() == "Cancel"
        qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    assert blocker.args == [False, "Export cancelled; no file was written"]
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_unwritable_target_gives_a_message_not_a_traceback(
        qtbot: QtBot, record: SessionRecord, tmp_path: Path) -> None:
    user = Recorder(tmp_path / "no-such-dir" / "r.pdf")
    window = open_review(qtbot, record, user)
    ok, message, _ = run_export(qtbot, window, "pdf")
    assert not ok
    assert user.warnings and "no-such-dir" in user.warnings[0]
    assert message == f"Export failed: {user.warnings[0]}"
    assert "Traceback" not in message
