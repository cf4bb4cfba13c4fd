"""The "Monitor connection" dialog: protocol, port and line settings, and auto-detect.

Changing the protocol fills in that protocol's line settings; a field changed after that keeps
what was typed until the protocol changes again. Auto-detect runs ``devices.detect.detect`` on a
worker QThread, shows which protocol it is trying, can be cancelled, and is always stopped and
joined before the dialog closes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping

from PySide6.QtCore import QCoreApplication, Qt, QThread, Signal
from PySide6.QtGui import QCloseEvent, QIntValidator
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from infusion_monitor.devices.base import SerialSettings
from infusion_monitor.devices.detect import Attempt, DetectResult, detect
from infusion_monitor.devices.registry import PROTOCOLS, ProtocolInfo

log = logging.getLogger(__name__)

PortLister = Callable[[], list[tuple[str, str]]]
DetectFn = Callable[..., DetectResult]

BAUD_RATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200, 230400, 460800, 921600)
DATA_BITS = (5, 6, 7, 8)
PARITIES = (("None", "N"), ("Even", "E"), ("Odd", "O"), ("Mark", "M"), ("Space", "S"))
STOP_BITS = (("1", 1.0), ("1.5", 1.5), ("2", 2.0))
#: How long closing the dialog waits for a cancelled auto-detect (it stops within ~0.1 s, or
#: after a write timeout of 1 s on a port stuck on RTS/CTS).
STOP_WAIT_MS = 5000


class DetectWorker(QThread):
    """Runs one ``detect()`` off the GUI thread; results arrive through queued signals.

    Every signal carries the worker's ``run`` number, so the dialog can ignore what a run it
    already cancelled and joined still had queued.
    """

    progress = Signal(int, object)  # run, Attempt
    found = Signal(int, object)  # run, DetectResult (found or not)
    failed = Signal(int, str)  # run, message

    def __init__(self, run: int, url: str, protocols: Iterable[str] | None,
                 detect_fn: DetectFn, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.run_number = run
        self.url = url
        self._protocols = None if protocols is None else list(protocols)
        self._detect = detect_fn
        self._cancel = threading.Event()

    def cancel(self) -> None:
        self._cancel.set()

    def run(self) -> None:
        run = self.run_number
        try:
            result = self._detect(self.url, self._protocols, cancel=self._cancel,
                                  on_progress=lambda attempt: self.progress.emit(run, attempt))
        except Exception as exc:  # shown in the dialog; the GUI must stay usable
            log.exception("auto-detect on %s failed", self.url)
            self.failed.emit(run, f"Auto-detect failed: {exc}")
            return
        self.found.emit(run, result)


class PortCombo(QComboBox):
    """The system's serial ports to pick from, or a typed device path or pyserial URL."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setEditable(True)
        self.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.lineEdit().setPlaceholderText(
            "serial port, or a URL: socket://host:port, rfc2217://host:port, /dev/…")
        self.setToolTip("Pick a port, or type a device path or pyserial URL")

    def url(self) -> str:
        """The chosen port's device, or the typed path/URL."""
        text = self.currentText().strip()
        index = self.findText(text)
        if index >= 0 and self.itemData(index):
            return str(self.itemData(index))
        return text

    def fill(self, ports: list[tuple[str, str]]) -> None:
        """List ``(device, description)`` ports again, keeping whatever is typed."""
        typed = self.currentText()
        self.clear()
        for device, description in ports:
            label = f"{device} — {description}" if description and description != "n/a" \
                else device
            self.addItem(label, device)
        if typed or not self.count():
            self.setEditText(typed)


class DeviceSetupDialog(QDialog):
    """Chooses the monitor protocol, the port and every line setting; OK returns them."""

    def __init__(
        self,
        *,
        list_ports_fn: PortLister,
        protocol: str | None = None,
        url: str = "",
        settings: SerialSettings | None = None,
        protocols: Mapping[str, ProtocolInfo] = PROTOCOLS,
        detect_fn: DetectFn = detect,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Monitor connection")
        self._protocols = dict(protocols)
        self._list_ports = list_ports_fn
        self._detect_fn = detect_fn
        self._worker: DetectWorker | None = None
        self._run = 0  # number of the current (or last) auto-detect run
        self._filling = False
        #: Fields changed by the user since the protocol last filled them in.
        self.edited: set[str] = set()
        self.last_result: DetectResult | None = None
        self._build()
        app = QCoreApplication.instance()
        if app is not None:  # quitting (SIGTERM) with the dialog open must not leave the thread
            app.aboutToQuit.connect(self.stop_detect)
        self.refresh_ports()
        index = self.protocol_combo.findData(protocol) if protocol else -1
        if index >= 0:
            self.protocol_combo.setCurrentIndex(index)
        self._protocol_changed()  # fill in the defaults even if the index did not move
        if url:
            self.port_combo.setEditText(url)
        if settings is not None:
            self.set_settings(settings, edited=True)
        self._update_buttons()

    # -- widgets ----------------------------------------------------------------------------
    def _build(self) -> None:
        self.protocol_combo = QComboBox()
        for info in self._protocols.values():
            self.protocol_combo.addItem(info.title, info.name)
        self.port_combo = PortCombo()
        self.port_combo.setMinimumWidth(280)
        self.refresh_button = QPushButton("↻")
        self.refresh_button.setToolTip("List the serial ports again")
        self.baud_combo = QComboBox()
        self.baud_combo.setEditable(True)
        self.baud_combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        for rate in BAUD_RATES:
            self.baud_combo.addItem(str(rate))
        self.baud_combo.setValidator(QIntValidator(50, 4_000_000, self))
        self.data_bits_combo = QComboBox()
        for bits in DATA_BITS:
            self.data_bits_combo.addItem(str(bits), bits)
        self.parity_combo = QComboBox()
        for label, letter in PARITIES:
            self.parity_combo.addItem(label, letter)
        self.stop_bits_combo = QComboBox()
        for label, value in STOP_BITS:
            self.stop_bits_combo.addItem(label, value)
        self.rtscts_check = QCheckBox("RTS/CTS (hardware handshake)")
        self.defaults_button = QPushButton("Restore defaults")
        self.defaults_button.setToolTip("The selected protocol's own line settings")
        self.detect_button = QPushButton("Auto-detect")
        self.detect_button.setToolTip(
            "Try every known monitor protocol on this port, each with its own settings")
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)
        self.details_label = QLabel("")
        self.details_label.setWordWrap(True)
        self.details_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.details_label.hide()
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)

        port_row = QHBoxLayout()
        port_row.addWidget(self.port_combo, 1)
        port_row.addWidget(self.refresh_button)
        form = QFormLayout()
        form.addRow("Monitor", self.protocol_combo)
        form.addRow("Port", port_row)
        form.addRow("Baud rate", self.baud_combo)
        form.addRow("Data bits", self.data_bits_combo)
        form.addRow("Parity", self.parity_combo)
        form.addRow("Stop bits", self.stop_bits_combo)
        form.addRow("Flow control", self.rtscts_check)
        detect_row = QHBoxLayout()
        detect_row.addWidget(self.detect_button)
        detect_row.addStretch(1)
        detect_row.addWidget(self.defaults_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(detect_row)
        layout.addWidget(self.status_label)
        layout.addWidget(self.details_label)
        layout.addStretch(1)
        layout.addWidget(self.buttons)

        self.protocol_combo.currentIndexChanged.connect(self._protocol_changed)
        self.refresh_button.clicked.connect(self.refresh_ports)
        self.port_combo.editTextChanged.connect(self._update_buttons)
        self.baud_combo.editTextChanged.connect(lambda: self._field_edited("baudrate"))
        self.data_bits_combo.currentIndexChanged.connect(lambda: self._field_edited("bytesize"))
        self.parity_combo.currentIndexChanged.connect(lambda: self._field_edited("parity"))
        self.stop_bits_combo.currentIndexChanged.connect(lambda: self._field_edited("stopbits"))
        self.rtscts_check.toggled.connect(lambda: self._field_edited("rtscts"))
        self.defaults_button.clicked.connect(self.restore_defaults)
        self.detect_button.clicked.connect(self._detect_clicked)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

    # -- the choice -------------------------------------------------------------------------
    def protocol(self) -> str:
        return str(self.protocol_combo.currentData())

    def url(self) -> str:
        """The chosen port's device, or the typed path/URL."""
        return self.port_combo.url()

    def baudrate(self) -> int | None:
        text = self.baud_combo.currentText().strip()
        return int(text) if text.isdigit() and int(text) >= 50 else None

    def settings(self) -> SerialSettings:
        """The line settings as shown (the protocol's default speed if the field is empty)."""
        return SerialSettings(
            baudrate=self.baudrate() or self.defaults().baudrate,
            bytesize=int(self.data_bits_combo.currentData()),
            parity=str(self.parity_combo.currentData()),
            stopbits=float(self.stop_bits_combo.currentData()),
            rtscts=self.rtscts_check.isChecked(),
        )

    def defaults(self) -> SerialSettings:
        return self._protocols[self.protocol()].serial

    def set_settings(self, settings: SerialSettings, *, edited: bool) -> None:
        """Show ``settings``; ``edited`` marks fields that differ from the protocol's defaults."""
        self._filling = True
        try:
            self.baud_combo.setEditText(str(settings.baudrate))
            self.data_bits_combo.setCurrentIndex(self.data_bits_combo.findData(settings.bytesize))
            self.parity_combo.setCurrentIndex(self.parity_combo.findData(settings.parity))
            self.stop_bits_combo.setCurrentIndex(
                self.stop_bits_combo.findData(float(settings.stopbits)))
            self.rtscts_check.setChecked(settings.rtscts)
        finally:
            self._filling = False
        defaults = self.defaults()
        self.edited = {
            name for name in ("baudrate", "bytesize", "parity", "stopbits", "rtscts")
            if edited and getattr(settings, name) != getattr(defaults, name)
        }
        self._update_buttons()

    def restore_defaults(self) -> None:
        self.set_settings(self.defaults(), edited=False)

    def refresh_ports(self) -> None:
        """List the system's serial ports again, keeping whatever is typed."""
        self.port_combo.fill(self._list_ports())
        self._update_buttons()

    def _protocol_changed(self) -> None:
        if self.protocol() in self._protocols:
            self.restore_defaults()

    def _field_edited(self, name: str) -> None:
        if not self._filling:
            self.edited.add(name)
        self._update_buttons()

    def _update_buttons(self) -> None:
        detecting = self.detecting
        ok = self.buttons.button(QDialogButtonBox.StandardButton.Ok)
        ok.setEnabled(not detecting and bool(self.url()) and self.baudrate() is not None)
        self.detect_button.setEnabled(detecting or bool(self.url()))
        for w in (self.protocol_combo, self.port_combo, self.refresh_button, self.baud_combo,
                  self.data_bits_combo, self.parity_combo, self.stop_bits_combo,
                  self.rtscts_check, self.defaults_button):
            w.setEnabled(not detecting)

    # -- auto-detect ------------------------------------------------------------------------
    @property
    def detecting(self) -> bool:
        return self._worker is not None

    def _detect_clicked(self) -> None:
        if self._worker is not None:
            self.cancel_detect()
        else:
            self.start_detect()

    def start_detect(self) -> None:
        """Try every protocol on the chosen port, on a worker thread."""
        if self._worker is not None or not self.url():
            return
        names = None if self._protocols.keys() == PROTOCOLS.keys() else list(self._protocols)
        self._run += 1
        worker = DetectWorker(self._run, self.url(), names, self._detect_fn, self)
        worker.progress.connect(self._on_progress)
        worker.found.connect(self._on_result)
        worker.failed.connect(self._on_failed)
        worker.finished.connect(self._on_worker_finished)
        self._worker = worker
        self.last_result = None
        self.detect_button.setText("■ Cancel auto-detect")
        self.status_label.setText(f"Auto-detect on {worker.url}…")
        self.details_label.hide()
        self._update_buttons()
        worker.start()

    def cancel_detect(self) -> None:
        """Ask a running auto-detect to stop; its result (\"cancelled\") arrives as usual."""
        if self._worker is not None:
            self._worker.cancel()
            self.detect_button.setEnabled(False)
            self.status_label.setText("Cancelling auto-detect…")

    def _current(self, run: int) -> bool:
        return self._worker is not None and run == self._run

    def _on_progress(self, run: int, attempt: Attempt) -> None:
        if self._current(run):
            self.status_label.setText(f"Trying {attempt.name}… {attempt.step}/{attempt.total}")

    def _on_result(self, run: int, result: DetectResult) -> None:
        if not self._current(run):
            return
        self.last_result = result
        if result.protocol is not None:
            self.protocol_combo.setCurrentIndex(self.protocol_combo.findData(result.protocol))
            self.restore_defaults()  # detection used the defaults: they are what works
            self.status_label.setText(f"✔ {result.summary()}")
        else:
            self.status_label.setText(("" if result.cancelled else "✖ ") + result.summary())
        self.details_label.setText("\n".join(result.details()))
        self.details_label.setVisible(bool(result.evidence))

    def _on_failed(self, run: int, text: str) -> None:
        if self._current(run):
            self.status_label.setText(f"✖ {text}")

    def _on_worker_finished(self) -> None:
        worker = self._worker
        if worker is not None and worker.isFinished():
            self._forget_worker()

    def _forget_worker(self) -> None:
        worker, self._worker = self._worker, None
        if worker is not None:
            worker.deleteLater()
        self.detect_button.setText("Auto-detect")
        self._update_buttons()

    def stop_detect(self) -> None:
        """Cancel a running auto-detect and wait for its thread to end; drop its results."""
        worker = self._worker
        if worker is None:
            return
        worker.cancel()
        if not worker.wait(STOP_WAIT_MS):  # pragma: no cover - detect() ignoring its cancel
            log.error("auto-detect on %s did not stop within %d ms", worker.url, STOP_WAIT_MS)
        self._forget_worker()

    # -- closing ----------------------------------------------------------------------------
    def done(self, result: int) -> None:
        """OK, Cancel, Esc and the close button all end here: stop auto-detect first."""
        self.stop_detect()
        super().done(result)

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt's name
        # A hidden dialog's close() does not reach done(): stop the worker here as well.
        self.stop_detect()
        super().closeEvent(event)
