"""Device link status and the session clock, for the window's status area."""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QLabel, QWidget

from infusion_monitor.clock import Clock
from infusion_monitor.devices.link import LinkState
from infusion_monitor.ui import qt_theme as theme

#: Text, symbol and colour per link state: never colour alone.
LINK_LOOK: dict[LinkState, tuple[str, str]] = {
    LinkState.CONNECTING: ("⋯ Connecting", theme.AMBER),
    LinkState.CONNECTED: ("● Connected", theme.OK_GREEN),
    LinkState.NO_DATA: ("◌ No data", theme.AMBER),
    LinkState.DISCONNECTED: ("✖ Disconnected", theme.ALERT_RED),
    LinkState.RECONNECTING: ("↻ Reconnecting", theme.AMBER),
    LinkState.STOPPED: ("■ Not recording", theme.MUTED),
}


def _colour(label: QLabel, colour: str) -> None:
    palette = label.palette()
    palette.setColor(QPalette.ColorRole.WindowText, QColor(colour))
    label.setPalette(palette)


class DeviceStatus(QLabel):
    """Shows the serial link's state as symbol + text + colour; the detail is the tooltip."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        font = self.font()
        font.setPixelSize(16)
        font.setBold(True)
        self.setFont(font)
        self.state = LinkState.STOPPED
        self.set_state(LinkState.STOPPED, "")

    def set_state(self, state: str, detail: str) -> None:
        """Show a link state (a LinkState or its value, as the feed delivers it)."""
        try:
            self.state = LinkState(state)
        except ValueError:  # an unknown state is shown as such, never as "connected"
            self.setText(f"? {state}")
            _colour(self, theme.AMBER)
            self.setToolTip(detail)
            return
        text, colour = LINK_LOOK[self.state]
        self.setText(text)
        _colour(self, colour)
        self.setToolTip(detail or text)

    def colour(self) -> str:
        return self.palette().color(QPalette.ColorRole.WindowText).name()


def format_hms(seconds: float) -> str:
    s = max(0, int(seconds))
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


class SessionClock(QLabel):
    """Elapsed session time (HH:MM:SS) on the injected clock; frozen when the session stops."""

    def __init__(self, clock: Clock, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._clock = clock
        self._t0: float | None = None
        self._frozen: float | None = None
        font = self.font()
        font.setPixelSize(16)
        font.setBold(True)
        self.setFont(font)
        _colour(self, theme.TEXT)
        self.refresh()

    def start(self) -> None:
        self._t0 = self._clock.monotonic()
        self._frozen = None
        self.refresh()

    def stop(self) -> None:
        if self._t0 is not None:
            self._frozen = self._clock.monotonic() - self._t0
        self.refresh()

    def elapsed_s(self) -> float | None:
        if self._t0 is None:
            return None
        return self._frozen if self._frozen is not None else self._clock.monotonic() - self._t0

    def refresh(self) -> None:
        elapsed = self.elapsed_s()
        self.setText("Session --:--:--" if elapsed is None else f"Session {format_hms(elapsed)}")
