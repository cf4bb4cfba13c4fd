"""Exports from the review window: a save dialog, a worker thread and progress when it is slow.

The export itself (``export.formats.write_export``) is a pure function of the ``SessionRecord``
the window already holds, so it runs on a worker thread without touching any widget or the
database. A progress dialog appears only if the export is still running after half a second
(``QProgressDialog.minimumDuration``), and its Cancel button stops the export at the next
progress report; the target file is then left as it was.

The first export of a format imports its writer on the GUI thread, behind a progress dialog shown
at once: importing fhir.resources builds its pydantic validators while holding the GIL for about
a second, which would freeze the window (dialog included) if a worker thread did it.
"""

from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, Qt, QThread, QTimer, Signal
from PySide6.QtWidgets import (
    QApplication,
    QFileDialog,
    QMessageBox,
    QProgressDialog,
    QWidget,
)

from infusion_monitor.export.formats import (
    FORMATS,
    ExportAudit,
    ExportError,
    default_file_name,
    write_export,
)
from infusion_monitor.export.record import SessionRecord

#: Exports that finish sooner than this never show a progress dialog (issue: > 0.5 s).
SHOW_PROGRESS_AFTER_MS = 500

AskPath = Callable[[QWidget, str, str], str | None]
Notify = Callable[[QWidget, str, str], None]


class ExportCancelledError(Exception):
    """Raised inside the worker's progress callback when the user pressed Cancel."""


def ask_save_path(parent: QWidget, suggested: str, file_filter: str) -> str | None:
    path, _ = QFileDialog.getSaveFileName(parent, "Export session", suggested, file_filter)
    return path or None


def warn(parent: QWidget, title: str, text: str) -> None:
    QMessageBox.warning(parent, title, text)


class _Worker(QThread):
    progressed = Signal(int, int)
    slow = Signal()  # the export has run for SHOW_PROGRESS_AFTER_MS: show the dialog
    succeeded = Signal(int)
    failed = Signal(str)

    def __init__(self, record: SessionRecord, fmt: str, path: Path,
                 parent: QObject | None = None, audit: ExportAudit | None = None) -> None:
        super().__init__(parent)
        self.record, self.fmt, self.path = record, fmt, path
        self.audit = audit
        self.cancelled = False
        self._t0 = 0.0
        self._said_slow = False

    def _progress(self, done: int, total: int) -> None:
        if self.cancelled:
            raise ExportCancelledError
        # Said by the worker itself, so it reaches the window before the result does even when
        # the GUI thread's own timer is late (a busy machine).
        if not self._said_slow and time.monotonic() - self._t0 >= SHOW_PROGRESS_AFTER_MS / 1000:
            self._said_slow = True
            self.slow.emit()
        self.progressed.emit(done, total)

    def run(self) -> None:
        self._t0 = time.monotonic()
        try:
            n = write_export(self.record, self.fmt, self.path, progress=self._progress,
                             audit=self.audit)
        except ExportCancelledError:
            self.failed.emit("")
        except ExportError as exc:
            self.failed.emit(str(exc))
        except Exception as exc:  # a bug must reach the user as a message, not kill the app
            self.failed.emit(f"the export failed: {type(exc).__name__}: {exc}")
        else:
            self.succeeded.emit(n)


class ExportController(QObject):
    """Runs one export at a time for a review window; reports through ``finished``."""

    finished = Signal(bool, str)  # ok, message for the status bar

    def __init__(self, parent: QWidget, record: SessionRecord, *,
                 ask_path: AskPath = ask_save_path, notify: Notify = warn,
                 audit: ExportAudit | None = None) -> None:
        super().__init__(parent)
        self._parent = parent
        self.record = record
        self._audit = audit  # records each export in the audit trail (and can do nothing else)
        self._ask_path = ask_path
        self._notify = notify
        self.worker: _Worker | None = None
        self.dialog: QProgressDialog | None = None
        self.last_message = ""
        self._started = 0.0
        self._show_timer: QTimer | None = None
        self.progress_shown = False

    @property
    def busy(self) -> bool:
        return self.worker is not None

    def export(self, fmt: str) -> bool:
        """Ask where, then start writing; False if cancelled or another export is running."""
        if self.busy:
            return False
        spec = FORMATS[fmt]
        path = self._ask_path(self._parent, default_file_name(self.record, fmt),
                              spec.file_filter)
        if not path:
            return False
        self.start(fmt, Path(path))
        return True

    def start(self, fmt: str, path: Path) -> None:
        spec = FORMATS[fmt]
        dialog = QProgressDialog(f"Exporting {spec.title.rstrip('…')} of session "
                                 f"{self.record.info.id}…", "Cancel", 0, 0, self._parent)
        dialog.setWindowTitle("Export")
        dialog.setWindowModality(Qt.WindowModality.WindowModal)
        # Shown by our own timer, not Qt's time estimate (which needs a value to estimate from).
        dialog.setMinimumDuration(2**30)
        dialog.setAutoClose(False)
        dialog.setAutoReset(False)
        self._show_timer = QTimer(self)
        self._show_timer.setSingleShot(True)
        self._show_timer.timeout.connect(self._show_progress)
        worker = _Worker(self.record, fmt, path, self, self._audit)
        worker.progressed.connect(self._progressed)
        worker.slow.connect(self._show_progress)
        worker.succeeded.connect(lambda n: self._done(True, f"Wrote {n} {spec.what} to {path}"))
        worker.failed.connect(lambda text: self._done(False, text))
        dialog.canceled.connect(self._cancel)
        self.dialog, self.worker = dialog, worker
        self._started = time.monotonic()
        self.progress_shown = False  # did this export show its progress dialog?
        if spec.module not in sys.modules:
            dialog.setLabelText(f"Loading the {spec.title.rstrip('…')} exporter…")
            self._show_progress()
            QApplication.processEvents()  # paint it before the import holds the GIL
            try:
                importlib.import_module(spec.module)
            except ImportError as exc:  # a broken installation: say so, keep the window
                self.worker = None
                self._done(False, f"the {spec.name} exporter cannot be loaded: {exc}")
                return
            dialog.setLabelText(f"Exporting {spec.title.rstrip('…')} of session "
                                f"{self.record.info.id}…")
        self._show_timer.start(SHOW_PROGRESS_AFTER_MS)
        worker.start()

    def _show_progress(self) -> None:
        if self.dialog is not None and self.worker is not None and not self.progress_shown:
            self.dialog.show()
            self.progress_shown = self.dialog.isVisible()

    def _progressed(self, done: int, total: int) -> None:
        if self.dialog is None:
            return
        if total > 0:
            self.dialog.setMaximum(total)
            self.dialog.setValue(min(done, total))

    def _cancel(self) -> None:
        if self.worker is not None:
            self.worker.cancelled = True

    def _done(self, ok: bool, text: str) -> None:
        self._show_timer.stop()
        worker, self.worker = self.worker, None
        if worker is not None:
            worker.wait()
        if self.dialog is not None:
            self.dialog.close()
            self.dialog.deleteLater()
            self.dialog = None
        elapsed = time.monotonic() - self._started
        if ok:
            message = f"{text} ({elapsed:.1f} s)"
        elif text:
            message = f"Export failed: {text}"
            self._notify(self._parent, "Export failed", text)
        else:
            message = "Export cancelled; no file was written"
        self.last_message = message
        self.finished.emit(ok, message)

    def shutdown(self) -> None:
        """Window closing: stop a running export and wait for its thread."""
        if self._show_timer is not None:
            self._show_timer.stop()
        if self.worker is not None:
            self.worker.cancelled = True
            self.worker.wait()
            self.worker = None
        if self.dialog is not None:
            self.dialog.close()
            self.dialog = None
