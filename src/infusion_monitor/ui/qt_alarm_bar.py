"""The alarm bar: the most urgent alarm by colour, flashing rate, symbol and words.

After IEC 60601-1-8 as monitors show it: high = red, flashing at 2 Hz, ``***``; medium = yellow,
0.5 Hz, ``**``; low = steady yellow, ``*``; technical alarms are cyan with their priority's
symbol and rate. The value is shown against its limit (``*** SpO2 87 < 88``) so no one has to
decode a colour. The bar only shows what it is given; acknowledging, pausing and the attending's
sign-off are requests it emits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import (
    QComboBox,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from infusion_monitor.ui import qt_theme as theme
from infusion_monitor.ui.qt_audio import DEFAULT_PAUSE_MIN, PAUSE_MINUTES
from infusion_monitor.ui.qt_numeric import format_age, local_hms

SECONDARY_TEXT = "Secondary alarm display — keep the monitor's own alarms on"
NO_ALARMS_TEXT = "✓ No active alarms"
SYMBOLS = theme.PRIORITY_SYMBOLS
FLASH_HZ = theme.PRIORITY_FLASH_HZ
RANK = {"high": 3, "medium": 2, "low": 1}
DARK_TEXT = "#101214"  # on the yellow and cyan grounds


@dataclass(frozen=True, slots=True)
class AlarmView:
    """One alarm as the UI shows it; built from the alarm engine's state by the window.

    ``text`` is the condition against its limit, e.g. ``SpO2 87 < 88``; ``active`` is False
    for a latched alarm whose condition has ended (it stays until acknowledged).
    """

    key: str
    priority: str  # high | medium | low
    text: str
    started: datetime
    technical: bool = False
    active: bool = True
    latched: bool = False
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = None
    vital: str | None = None  # the vital whose tile flashes (Vital value), if any

    @property
    def acknowledged(self) -> bool:
        return self.acknowledged_by is not None


def priority_colour(priority: str, technical: bool = False) -> str:
    return theme.PRIORITY_COLOURS["technical" if technical else priority]


def ordered(alarms: Sequence[AlarmView]) -> list[AlarmView]:
    """Most urgent first: unacknowledged before acknowledged, higher priority, newest."""
    return sorted(alarms, key=lambda a: (not a.acknowledged, RANK.get(a.priority, 0),
                                         a.started), reverse=True)


def headline(alarm: AlarmView) -> str:
    """``*** SpO2 87 < 88`` (plus what kind of alarm it is, when that is not obvious)."""
    parts = [SYMBOLS.get(alarm.priority, "*"), alarm.text]
    if alarm.technical:
        parts.insert(1, "TECHNICAL:")
    return " ".join(parts)


def _set_colour(widget: QWidget, role: QPalette.ColorRole, colour: str) -> None:
    palette = widget.palette()
    palette.setColor(role, QColor(colour))
    widget.setPalette(palette)


def _font(widget: QWidget, px: int, bold: bool = False) -> None:
    font = widget.font()
    font.setPixelSize(px)
    font.setBold(bold)
    widget.setFont(font)


class AlarmBar(QFrame):
    """The window's alarm strip; refreshed by the window's timer for ages and the countdown."""

    acknowledge_requested = Signal()
    pause_requested = Signal(int)  # minutes
    attending_ack_requested = Signal()
    log_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("alarmBar")
        self.setAutoFillBackground(True)
        self.alarms: list[AlarmView] = []
        self.top: AlarmView | None = None
        self._flash_on = True
        self._flash = QTimer(self)
        self._flash.timeout.connect(self._toggle_flash)
        self._attending_text = ""
        self._audio_warn = False
        # Why the logged-in user may not (None: they may); the core refuses them anyway.
        self._no_ack: str | None = None
        self._no_attending: str | None = None

        self.headline = QLabel(NO_ALARMS_TEXT)
        _font(self.headline, 24, bold=True)
        self.headline.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.more = QLabel("")
        _font(self.more, 16, bold=True)
        self.ack_button = QPushButton("Acknowledge (F2)")
        self.pause_button = QPushButton(f"Pause audio {DEFAULT_PAUSE_MIN} min (F3)")
        self.pause_minutes = QComboBox()
        for m in PAUSE_MINUTES:
            self.pause_minutes.addItem(f"{m} min", m)
        self.pause_minutes.setCurrentIndex(PAUSE_MINUTES.index(DEFAULT_PAUSE_MIN))
        self.pause_minutes.setToolTip("Length of an audio pause (never permanent)")
        self.log_button = QPushButton("Alarm log")
        for button in (self.ack_button, self.pause_button, self.log_button):
            _font(button, 15, bold=button is self.ack_button)
            button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.pause_minutes.setFocusPolicy(Qt.FocusPolicy.NoFocus)

        self.secondary = QLabel(f"ℹ {SECONDARY_TEXT}")
        self.audio_label = QLabel("")
        self.attending_label = QLabel("")
        self.attending_button = QPushButton("Attending: acknowledge")
        self.attending_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.message = QLabel("")
        for label in (self.secondary, self.audio_label, self.message):
            _font(label, 13)
        _font(self.attending_label, 15, bold=True)
        # The flag and a refusal take their full width when there is room, and give way
        # (clipped) rather than widen the window past the smallest bedside screen.
        for label, least in ((self.attending_label, 240), (self.message, 80)):
            label.setMinimumWidth(least)
        # The standing "secondary display" note (the window's top banner says it too) takes only
        # the width left, so neither the flag's reason nor the audio state is cut.
        self.secondary.setMinimumWidth(1)
        self.secondary.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.secondary.setToolTip(self.secondary.text())
        self.attending_label.hide()
        self.attending_button.hide()
        self.message.hide()

        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.headline, 1)
        top.addWidget(self.more)
        top.addWidget(self.ack_button)
        top.addWidget(self.pause_button)
        top.addWidget(self.pause_minutes)
        top.addWidget(self.log_button)
        second_row = QWidget()
        second_row.setFixedHeight(26)  # kept when empty: the charts must not jump with the flag
        second = QHBoxLayout(second_row)
        second.setContentsMargins(0, 0, 0, 0)
        second.addWidget(self.attending_label)
        second.addWidget(self.attending_button)
        second.addSpacing(12)
        second.addWidget(self.message)
        second.addStretch(1)
        second.addWidget(self.audio_label)
        second.addSpacing(16)
        second.addWidget(self.secondary)
        column = QVBoxLayout(self)
        column.setContentsMargins(10, 3, 10, 3)
        column.setSpacing(2)
        column.addLayout(top)
        column.addWidget(second_row)

        self.ack_button.clicked.connect(self.acknowledge_requested)
        self.pause_button.clicked.connect(lambda: self.pause_requested.emit(self.chosen_pause()))
        self.pause_minutes.currentIndexChanged.connect(self._pause_choice_changed)
        self.attending_button.clicked.connect(self.attending_ack_requested)
        self.log_button.clicked.connect(self.log_requested)
        self._paint()

    # -- inputs -----------------------------------------------------------------------------
    def chosen_pause(self) -> int:
        return int(self.pause_minutes.currentData())

    def _pause_choice_changed(self) -> None:
        self.pause_button.setText(f"Pause audio {self.chosen_pause()} min (F3)")

    def set_alarms(self, alarms: Sequence[AlarmView], now: datetime) -> None:
        """Show these alarms (active ones and latched ones still awaiting acknowledgement)."""
        self.alarms = ordered(alarms)
        top = self.alarms[0] if self.alarms else None
        restart = (top is None) != (self.top is None) or (
            top is not None and self.top is not None
            and (top.key, top.priority, top.acknowledged)
            != (self.top.key, self.top.priority, self.top.acknowledged))
        self.top = top
        if restart:
            self._flash_on = True
            interval = theme.flash_interval_ms(top.priority) if top and not top.acknowledged else 0
            if interval:
                self._flash.start(interval)
            else:
                self._flash.stop()
        self.ack_button.setEnabled(self._no_ack is None
                                   and any(not a.acknowledged for a in self.alarms))
        self.refresh(now)

    def set_permissions(self, no_ack: str | None, no_attending: str | None) -> None:
        """Disable what the logged-in user may not do, the tooltip saying who may
        (``None``: allowed). Buttons only: the core checks every request itself."""
        self._no_ack, self._no_attending = no_ack, no_attending
        self.ack_button.setEnabled(no_ack is None and any(not a.acknowledged
                                                          for a in self.alarms))
        self.ack_button.setToolTip(no_ack or "")
        for widget in (self.pause_button, self.pause_minutes):
            widget.setEnabled(no_ack is None)
        self.pause_button.setToolTip(no_ack or "")
        self.pause_minutes.setToolTip(no_ack or "Length of an audio pause (never permanent)")
        self.attending_button.setEnabled(no_attending is None)
        self.attending_button.setToolTip(no_attending or "")

    def set_attending_flag(self, text: str) -> None:
        """Show the "notify attending" flag with its reason; "" hides it."""
        self._attending_text = text
        self.attending_label.setText(f"⚑ Notify attending — {text}" if text else "")
        self.attending_label.setVisible(bool(text))
        self.attending_button.setVisible(bool(text))

    def set_audio_text(self, text: str, warn: bool) -> None:
        """No device, paused countdown, or where the tones go."""
        self.audio_label.setText(text)
        self.audio_label.setToolTip(text)
        self._audio_warn = warn
        self._paint()

    def show_message(self, text: str) -> None:
        """A short notice in the bar (e.g. why a request was refused); "" clears it."""
        self.message.setText(text)
        self.message.setVisible(bool(text))

    # -- drawing ----------------------------------------------------------------------------
    @property
    def flash_hz(self) -> float:
        """How fast the bar is flashing now (0 = steady)."""
        return 500 / self._flash.interval() if self._flash.isActive() else 0.0

    @property
    def text(self) -> str:
        return self.headline.text()

    @property
    def flash_on(self) -> bool:
        return self._flash_on

    def refresh(self, now: datetime) -> None:
        """Re-evaluate the text (how long ago the top alarm started)."""
        top = self.top
        if top is None:
            self.headline.setText(NO_ALARMS_TEXT)
            self.more.setText("")
        else:
            age = format_age((now - top.started).total_seconds())
            state = []
            if top.acknowledged:
                state.append(f"ack {top.acknowledged_by}")
            if not top.active:
                state.append("ended — acknowledge to clear" if not top.acknowledged else "ended")
            suffix = f" ({', '.join(state)})" if state else ""
            self.headline.setText(f"{headline(top)} · since {local_hms(top.started)}, "
                                  f"{age}{suffix}")
            others = len(self.alarms) - 1
            self.more.setText(f"+{others} more" if others else "")
        self._paint()

    def _toggle_flash(self) -> None:
        self._flash_on = not self._flash_on
        self._paint()

    def background(self) -> str:
        """The bar's current ground colour (``#rrggbb``)."""
        return self.palette().color(QPalette.ColorRole.Window).name()

    def _paint(self) -> None:
        top = self.top
        if top is None:
            ground, fg = theme.PANEL, theme.OK_GREEN
        elif self._flash_on and not top.acknowledged:
            ground = priority_colour(top.priority, top.technical)
            fg = "#ffffff" if top.priority == "high" and not top.technical else DARK_TEXT
        else:
            ground, fg = theme.PANEL, priority_colour(top.priority, top.technical)
        lit = ground != theme.PANEL
        _set_colour(self, QPalette.ColorRole.Window, ground)
        role = QPalette.ColorRole.WindowText
        for label in (self.headline, self.more):
            _set_colour(label, role, fg)
        _set_colour(self.secondary, role, fg if lit else theme.MUTED)
        _set_colour(self.audio_label, role,
                    fg if lit else theme.AMBER if self._audio_warn else theme.MUTED)
        _set_colour(self.message, role, fg if lit else theme.AMBER)
        _set_colour(self.attending_label, role, fg if lit else theme.ALERT_RED)
