"""The connection bar: protocol, serial port (or URL), baud rate, Setup… and Connect/Stop.

The quick path is unchanged: pick a port and press Connect, with the protocol's line settings.
"Setup…" opens the full dialog (every line setting, auto-detect); what it returns is kept until
the protocol changes here, and Connect carries the full ``SerialSettings`` either way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QWidget,
)
from serial.tools import list_ports

from infusion_monitor.devices.base import SerialSettings
from infusion_monitor.devices.detect import line_settings
from infusion_monitor.devices.registry import PROTOCOLS, ProtocolInfo
from infusion_monitor.ui.qt_device_setup import DeviceSetupDialog, PortCombo

PortLister = Callable[[], list[tuple[str, str]]]


def system_ports() -> list[tuple[str, str]]:
    """The serial ports the OS knows: (device, description)."""
    return [(p.device, p.description or "") for p in sorted(list_ports.comports())]


class PortPicker(QWidget):
    """Chooses what to record from; emits requests, never opens a port itself."""

    connect_requested = Signal(str, str, int, object)  # protocol, url, baud, SerialSettings
    stop_requested = Signal()

    def __init__(
        self,
        *,
        list_ports_fn: PortLister = system_ports,
        protocols: Mapping[str, ProtocolInfo] = PROTOCOLS,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._list_ports = list_ports_fn
        self.running = False
        self._settings: SerialSettings | None = None  # from Setup…, until the protocol changes
        self.setup_dialog: DeviceSetupDialog | None = None
        self.protocol_combo = QComboBox()
        for info in protocols.values():
            self.protocol_combo.addItem(info.title, info.name)
        self._protocols = dict(protocols)
        self.port_combo = PortCombo()
        self.refresh_button = QPushButton("↻ Refresh")
        self.refresh_button.setToolTip("List the serial ports again")
        self.baud_spin = QSpinBox()
        self.baud_spin.setRange(300, 921_600)
        self.baud_spin.setSingleStep(9600)
        self.baud_spin.setSuffix(" baud")
        self.line_label = QLabel("")
        self.line_label.setToolTip("Data bits, parity, stop bits and handshake (Setup… to change)")
        self.setup_button = QPushButton("⚙ Setup…")
        self.setup_button.setToolTip(
            "Every serial setting, and auto-detect of the monitor on the chosen port")
        self.connect_button = QPushButton("▶ Connect")
        self.connect_button.setMinimumWidth(120)

        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 4)
        layout.addWidget(QLabel("Monitor"))
        layout.addWidget(self.protocol_combo)
        layout.addWidget(QLabel("Port"))
        layout.addWidget(self.port_combo, 1)
        layout.addWidget(self.refresh_button)
        layout.addWidget(self.baud_spin)
        layout.addWidget(self.line_label)
        layout.addWidget(self.setup_button)
        layout.addWidget(self.connect_button)

        self.protocol_combo.currentIndexChanged.connect(self._protocol_changed)
        self.refresh_button.clicked.connect(self.refresh_ports)
        self.setup_button.clicked.connect(self.open_setup)
        self.baud_spin.valueChanged.connect(self._show_line_settings)
        self.connect_button.clicked.connect(self._clicked)
        self.port_combo.editTextChanged.connect(self._update_button)
        self._protocol_changed()
        self.refresh_ports()

    def protocol(self) -> str:
        return str(self.protocol_combo.currentData())

    def url(self) -> str:
        """The chosen port's device, or the typed path/URL."""
        return self.port_combo.url()

    def serial_settings(self) -> SerialSettings:
        """The full line settings Connect uses: Setup…'s, else the protocol's, at the baud shown."""
        base = self._settings or self._protocols[self.protocol()].serial
        return replace(base, baudrate=self.baud_spin.value())

    def set_selection(self, protocol: str, url: str, baud: int,
                      settings: SerialSettings | None = None) -> None:
        """Preset the bar (e.g. for auto-connect), as if the nurse had chosen it.

        ``settings`` (from Setup…) replace the protocol's defaults; without them, earlier
        settings stay unless the protocol changes.
        """
        index = self.protocol_combo.findData(protocol)
        if index >= 0:
            self.protocol_combo.setCurrentIndex(index)
        self.port_combo.setEditText(url)
        if settings is not None:
            self._settings = settings
        self.baud_spin.setValue(baud)
        self._show_line_settings()

    def open_setup(self) -> DeviceSetupDialog:
        """Open the "Monitor connection" dialog on the current choice; OK applies it here."""
        if self.setup_dialog is not None:
            self.setup_dialog.close()
            self.setup_dialog.deleteLater()
        dialog = DeviceSetupDialog(
            list_ports_fn=self._list_ports, protocol=self.protocol(), url=self.url(),
            settings=self.serial_settings(), protocols=self._protocols, parent=self,
        )
        dialog.accepted.connect(self._setup_accepted)
        self.setup_dialog = dialog
        dialog.open()
        return dialog

    def _setup_accepted(self) -> None:
        dialog = self.setup_dialog
        if dialog is not None:
            settings = dialog.settings()
            self.set_selection(dialog.protocol(), dialog.url(), settings.baudrate, settings)

    def refresh_ports(self) -> None:
        """List the system's serial ports again, keeping whatever is typed."""
        self.port_combo.fill(self._list_ports())
        self._update_button()

    def set_running(self, running: bool) -> None:
        """Switch between Connect and Stop; the selection is locked while recording."""
        self.running = running
        for w in (self.protocol_combo, self.port_combo, self.refresh_button, self.baud_spin,
                  self.setup_button):
            w.setEnabled(not running)
        self.connect_button.setText("■ Stop" if running else "▶ Connect")
        self._update_button()

    def _protocol_changed(self) -> None:
        self._settings = None  # another protocol: its own defaults again
        info = self._protocols.get(self.protocol())
        if info is not None:
            self.baud_spin.setValue(info.serial.baudrate)
        self._show_line_settings()

    def _show_line_settings(self) -> None:
        if self.protocol() in self._protocols:
            self.line_label.setText(line_settings(self.serial_settings()).split(" ", 1)[1])

    def _update_button(self) -> None:
        self.connect_button.setEnabled(self.running or bool(self.url()))

    def _clicked(self) -> None:
        if self.running:
            self.stop_requested.emit()
        elif self.url():
            self.connect_requested.emit(self.protocol(), self.url(), self.baud_spin.value(),
                                        self.serial_settings())
