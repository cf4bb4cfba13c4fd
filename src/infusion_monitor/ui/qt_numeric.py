"""Big numeric tiles: the last value of a vital, its age, and whether it can still be trusted."""

from __future__ import annotations

import enum
import math
from datetime import datetime

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import (
    QColor,
    QFont,
    QFontMetricsF,
    QPainter,
    QPaintEvent,
    QPalette,
    QPen,
    QResizeEvent,
)
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QSizePolicy, QVBoxLayout, QWidget

from infusion_monitor.clock import Clock
from infusion_monitor.devices.base import DeviceEvent, DeviceEventKind, Event
from infusion_monitor.ui import qt_theme as theme
from infusion_monitor.vitals import NIBP, SPECS, Quality, Reading, Vital

NO_VALUE = "---"
VALID_STATUS = "valid"  # PARAMETER_STATUS detail when a vital is available again


class TileState(enum.StrEnum):
    """What a tile is showing; the text and symbol on screen follow from it."""

    WAITING = "waiting"  # nothing received yet (or the device said it is valid again)
    VALID = "valid"
    STALE = "stale"  # the last value is older than ``stale_after_s``
    MARKED = "marked"  # an artifact, questionable or demo value: shown greyed, never as valid
    INVALID = "invalid"  # the device reports no value for this vital


def format_age(seconds: float) -> str:
    """A short age for a nurse: "12 s", "3 min", "1 h 05 min"."""
    s = max(0, int(seconds))
    if s < 120:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def format_int(value: float) -> str:
    """Whole numbers, rounding halves up (as monitors display them)."""
    return str(math.floor(value + 0.5))


def local_hms(t: datetime) -> str:
    """Clock time in the clinic's local zone, to compare with the wall clock and the monitor."""
    return t.astimezone().strftime("%H:%M:%S")


class FitLabel(QLabel):
    """A label whose font grows to fill its box, so the numerics scale with the window."""

    def __init__(self, template: str, *, fill: float = 0.92, parent: QWidget | None = None):
        super().__init__(NO_VALUE, parent)
        self._template = template
        self._fill = fill
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        font = self.font()
        font.setBold(True)
        self.setFont(font)

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt override
        """Refit the font to the new box."""
        super().resizeEvent(event)
        font = QFont(self.font())
        font.setPixelSize(100)
        fm = QFontMetricsF(font)
        by_width = 100 * self.width() * self._fill / max(1.0, fm.horizontalAdvance(self._template))
        by_height = 100 * self.height() * self._fill / max(1.0, fm.height())
        font.setPixelSize(max(8, int(min(by_width, by_height))))
        self.setFont(font)


def _set_colour(label: QLabel, colour: str) -> None:
    """Set the text colour; a no-op when unchanged (a palette change repaints the tile, and the
    window refreshes every tile ten times a second)."""
    wanted = QColor(colour)
    palette = label.palette()
    if palette.color(QPalette.ColorRole.WindowText) == wanted:
        return
    palette.setColor(QPalette.ColorRole.WindowText, wanted)
    label.setPalette(palette)


class _Tile(QFrame):
    """Shared frame of a tile: header (label, unit), a big value, a status line; ages on a clock."""

    def __init__(self, title: str, unit: str, colour: str, clock: Clock, stale_after_s: float,
                 template: str, parent: QWidget | None) -> None:
        super().__init__(parent)
        self.setObjectName("tile")
        self._clock = clock
        self._colour = colour
        self.stale_after_s = stale_after_s
        self.state = TileState.WAITING
        self._received: float | None = None  # monotonic time the value was stamped
        self._invalid_reason = ""

        self._title = QLabel(title)
        self._unit = QLabel(unit)
        _set_colour(self._title, colour)
        _set_colour(self._unit, theme.MUTED)
        header = QHBoxLayout()
        header.addWidget(self._title)
        header.addStretch(1)
        header.addWidget(self._unit)
        self.value_label = FitLabel(template)
        self.status_label = QLabel("waiting for first value")
        self.status_label.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter)
        self._layout = QVBoxLayout(self)
        self._layout.setContentsMargins(10, 6, 10, 6)
        self._layout.setSpacing(0)
        self._layout.addLayout(header)
        self._layout.addWidget(self.value_label, 1)
        self._layout.addWidget(self.status_label)
        _set_colour(self.value_label, theme.GREYED)
        _set_colour(self.status_label, theme.MUTED)
        self.alarm_priority: str | None = None  # an alarm on this vital: its frame flashes
        self._alarm_colour = ""
        self._alarm_lit = False
        self._alarm_timer = QTimer(self)
        self._alarm_timer.timeout.connect(self._toggle_alarm)

    # -- alarm state ------------------------------------------------------------------------
    def set_alarm(self, priority: str | None, *, technical: bool = False,
                  acknowledged: bool = False) -> None:
        """Flash the tile's frame at ``priority``'s rate; steady once acknowledged; None: off."""
        colour = theme.PRIORITY_COLOURS["technical" if technical else priority] if priority \
            else ""
        interval = 0 if acknowledged or priority is None else theme.flash_interval_ms(priority)
        if (priority, colour, interval) == (self.alarm_priority, self._alarm_colour,
                                            self.alarm_flash_ms):
            return
        self.alarm_priority, self._alarm_colour = priority, colour
        self._alarm_lit = priority is not None
        if interval:
            self._alarm_timer.start(interval)
        else:
            self._alarm_timer.stop()
        self.update()

    @property
    def alarm_flash_ms(self) -> int:
        """Half the flash period now (0: steady or no alarm)."""
        return self._alarm_timer.interval() if self._alarm_timer.isActive() else 0

    @property
    def alarm_lit(self) -> bool:
        """True while the alarm frame is drawn (the "on" half of a flash)."""
        return self._alarm_lit

    def _toggle_alarm(self) -> None:
        self._alarm_lit = not self._alarm_lit
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt override
        """The frame, then (during the "on" half of a flash) a thick border and a tint."""
        super().paintEvent(event)
        if not (self.alarm_priority and self._alarm_lit):
            return
        colour = QColor(self._alarm_colour)
        painter = QPainter(self)
        tint = QColor(colour)
        tint.setAlpha(55)
        painter.fillRect(self.rect(), tint)
        painter.setPen(QPen(colour, 6))
        painter.drawRect(self.rect().adjusted(3, 3, -3, -3))
        painter.end()

    # -- for tests and screenshots ----------------------------------------------------------
    @property
    def value_text(self) -> str:
        return self.value_label.text()

    @property
    def status_text(self) -> str:
        return self.status_label.text()

    def value_colour(self) -> str:
        """The colour the big value is drawn in (``#rrggbb``)."""
        return self.value_label.palette().color(QPalette.ColorRole.WindowText).name()

    # -- shared behaviour -------------------------------------------------------------------
    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt override
        """Scale the header and status text with the tile, within readable bounds."""
        super().resizeEvent(event)
        px = max(14, min(30, int(self.height() * 0.1)))
        for label, size, bold in ((self._title, px + 2, True), (self._unit, px, False),
                                  (self.status_label, px, False)):
            font = label.font()
            font.setPixelSize(size)
            font.setBold(bold)
            label.setFont(font)

    def _stamp(self, reading: Reading) -> float:
        """The reading's stamp on the monotonic clock (queue lag counts towards its age)."""
        now = self._clock.monotonic()
        if reading.t_received is None:
            return now
        lag = (self._clock.now() - reading.t_received).total_seconds()
        return now - max(0.0, lag)

    def age_s(self) -> float | None:
        """Seconds since the shown value was received, or None when there is none."""
        if self._received is None:
            return None
        return self._clock.monotonic() - self._received

    def _show(self, state: TileState, value: str, status: str, status_colour: str) -> None:
        self.state = state
        self.value_label.setText(value)
        _set_colour(self.value_label, self._colour if state is TileState.VALID else theme.GREYED)
        self.status_label.setText(status)
        _set_colour(self.status_label, status_colour)

    def _invalidate(self, reason: str) -> None:
        """The device says there is no value: drop the number, show the device's reason."""
        self._received = None
        self._invalid_reason = reason
        self._show(TileState.INVALID, NO_VALUE, f"{theme.SYMBOL_INVALID} NO VALUE — {reason}",
                   theme.AMBER)

    def _revalidate(self) -> None:
        self._invalid_reason = ""
        self._show(TileState.WAITING, NO_VALUE, "valid again: waiting for a value", theme.MUTED)

    def _marked(self, quality: Quality) -> str:
        if quality is Quality.DEMO:
            return f"{theme.SYMBOL_DEMO} DEMO — not patient data"
        return f"{theme.SYMBOL_ARTIFACT} {quality.value.upper()}"

    def _status_for(
        self, quality: Quality, age: float, extra: str = ""
    ) -> tuple[TileState, str, str]:
        """State, status text and its colour for a value of this quality and age."""
        ago = f"{format_age(age)} ago"
        if age > self.stale_after_s:
            text = f"{theme.SYMBOL_STALE} STALE {format_age(age)}"
            if quality is not Quality.OK:
                text += f" · {self._marked(quality)}"
            return TileState.STALE, text, theme.AMBER
        if quality is not Quality.OK:
            return TileState.MARKED, f"{self._marked(quality)} · {ago}", theme.AMBER
        return TileState.VALID, f"{extra}{ago}", theme.MUTED

    def reset(self, status: str = "waiting for first value") -> None:
        """Forget everything shown (a new session starts); ``status`` says what to expect."""
        self._received = None
        self._invalid_reason = ""
        self._show(TileState.WAITING, NO_VALUE, status, theme.MUTED)

    def refresh(self) -> None:  # pragma: no cover - overridden
        """Re-evaluate age and staleness (called by the window's redraw timer)."""
        raise NotImplementedError

    def handle(self, event: Event) -> None:  # pragma: no cover - overridden
        """Take one recorder event; ignores those about other vitals."""
        raise NotImplementedError

    def _status_event(self, event: DeviceEvent) -> None:
        if event.kind is DeviceEventKind.PROBE_OFF:
            self._invalidate(event.detail or "probe off")
        elif event.detail == VALID_STATUS:
            if self.state is TileState.INVALID:
                self._revalidate()
        else:
            self._invalidate(event.detail)


class NumericTile(_Tile):
    """One continuously measured vital (HR, PR, SpO2): big integer, unit, age, staleness."""

    def __init__(self, vital: Vital, clock: Clock, *, stale_after_s: float = 15.0,
                 parent: QWidget | None = None) -> None:
        spec = SPECS[vital]
        super().__init__(spec.label, spec.unit, theme.colour(vital), clock, stale_after_s,
                         "000?", parent)
        self.vital = vital
        self._value: float | None = None
        self._quality = Quality.OK

    def reset(self, status: str = "waiting for first value") -> None:
        """Forget everything shown (a new session starts)."""
        super().reset(status)
        self._value = None
        self._quality = Quality.OK

    @property
    def value(self) -> float | None:
        """The value on screen (None when there is none), whatever its quality."""
        return self._value

    def handle(self, event: Event) -> None:
        """Take one recorder event; ignores those about other vitals."""
        if event.vital is not self.vital:
            return
        if isinstance(event, Reading):
            self.update_reading(event)
        elif event.kind in (DeviceEventKind.PARAMETER_STATUS, DeviceEventKind.PROBE_OFF):
            self._status_event(event)
            if self.state in (TileState.INVALID, TileState.WAITING):
                self._value = None

    def update_reading(self, reading: Reading) -> None:
        """Show a new value of this tile's vital."""
        self._value = reading.value
        self._quality = reading.quality
        self._received = self._stamp(reading)
        self._invalid_reason = ""
        self.refresh()

    def refresh(self) -> None:
        """Re-evaluate age and staleness (called by the window's redraw timer)."""
        age = self.age_s()
        if self.state is TileState.INVALID or age is None or self._value is None:
            return
        state, status, colour = self._status_for(self._quality, age)
        text = format_int(self._value)
        if self._quality is not Quality.OK:
            text += theme.SYMBOL_ARTIFACT
        self._show(state, text, status, colour)


class NibpTile(_Tile):
    """The last NIBP measurement: sys/dia large, mean smaller, and when it was measured."""

    def __init__(self, clock: Clock, *, stale_after_s: float = 20 * 60.0,
                 parent: QWidget | None = None) -> None:
        super().__init__("NIBP", SPECS[Vital.NIBP_SYS].unit, theme.colour(Vital.NIBP_SYS), clock,
                         stale_after_s, "000/000", parent)
        self.mean_label = QLabel("")
        self.mean_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._layout.insertWidget(2, self.mean_label, 0)
        self._values: dict[Vital, float] = {}
        self._quality = Quality.OK
        self._measurement: datetime | None = None  # groups sys/dia/mean of one measurement
        self._measured: datetime | None = None  # when it reached us, on the injected clock

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt override
        """Size the mean at about a third of sys/dia: present, but not mistaken for them."""
        super().resizeEvent(event)
        font = self.mean_label.font()
        px = max(18, int(self.height() * 0.13))
        font.setPixelSize(px)
        font.setBold(True)
        self.mean_label.setFont(font)
        # A fixed row, whatever the text: the layout must not wait for a size hint to settle.
        self.mean_label.setFixedHeight(int(px * 1.3))

    def reset(self, status: str = "waiting for first value") -> None:
        """Forget everything shown (a new session starts)."""
        super().reset(status)
        self._values.clear()
        self._quality = Quality.OK
        self._measurement = self._measured = None
        self.mean_label.setText("")

    @property
    def values(self) -> dict[Vital, float]:
        """The measurement on screen, by vital (empty when there is none)."""
        return dict(self._values)

    @property
    def mean_text(self) -> str:
        return self.mean_label.text()

    def handle(self, event: Event) -> None:
        """Take one recorder event; ignores those not about NIBP."""
        if event.vital not in NIBP:
            return
        if isinstance(event, Reading):
            self.update_reading(event)
        elif event.kind in (DeviceEventKind.PARAMETER_STATUS, DeviceEventKind.PROBE_OFF):
            self._status_event(event)
            if self.state in (TileState.INVALID, TileState.WAITING):
                self._values.clear()
                self._measurement = self._measured = None
                self.mean_label.setText("")

    def update_reading(self, reading: Reading) -> None:
        """Add one value of a measurement; a newer measurement time starts a new measurement."""
        key = reading.t_device or reading.t_received or self._clock.now()
        if self._measurement is None or key != self._measurement:
            self._values.clear()
            self._quality = Quality.OK
            self._measurement = key
            # Shown on our clock, not the monitor's: it must agree with the age beside it.
            self._measured = reading.t_received or self._clock.now()
        self._values[reading.vital] = reading.value
        if reading.quality is not Quality.OK:
            self._quality = reading.quality
        self._received = self._stamp(reading)
        self.refresh()

    def refresh(self) -> None:
        """Re-evaluate age and staleness (called by the window's redraw timer)."""
        age = self.age_s()
        if self.state is TileState.INVALID or age is None or self._measured is None:
            return
        sys_, dia, mean = (self._values.get(v) for v in NIBP)
        text = f"{format_int(sys_) if sys_ is not None else '?'}/" \
               f"{format_int(dia) if dia is not None else '?'}"
        if self._quality is not Quality.OK:
            text += theme.SYMBOL_ARTIFACT
        extra = f"measured {local_hms(self._measured)}, "
        state, status, colour = self._status_for(self._quality, age, extra)
        if state is not TileState.VALID:
            status = f"{status} · measured {local_hms(self._measured)}"
        self._show(state, text, status, colour)
        self.mean_label.setText(f"({format_int(mean)})" if mean is not None else "")
        _set_colour(self.mean_label,
                    theme.colour(Vital.NIBP_MEAN) if state is TileState.VALID else theme.GREYED)
