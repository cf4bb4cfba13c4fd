"""One chair on the clinic overview: who, which phase, how long, live vitals, and what is wrong.

The tile shows a ``ChairState`` (store/overview.py) and ages it on the overview's clock. Its
frame takes the colour of the chair's most urgent active alarm (high red, medium and low
yellow, technical cyan, as on the bedside), with the priority also in symbols and text.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPalette, QPen, QResizeEvent
from PySide6.QtWidgets import QFrame, QGridLayout, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from infusion_monitor.store.overview import ChairState, Latest
from infusion_monitor.ui import qt_theme as theme
from infusion_monitor.ui.qt_numeric import NO_VALUE, FitLabel, format_age, format_int, local_hms
from infusion_monitor.vitals import Vital

ATTENDING_BADGE = "⚑ ATTENDING REQUESTED"
BORDER_PX = 8
TINT_ALPHA = 50


def _set_colour(label: QLabel, colour: str, role: QPalette.ColorRole = QPalette.ColorRole.WindowText
                ) -> None:
    palette = label.palette()
    palette.setColor(role, QColor(colour))
    label.setPalette(palette)


def format_minutes(span: timedelta) -> str:
    """"7 min", "1 h 05 min": elapsed times on a tile."""
    m = max(0, int(span.total_seconds() // 60))
    return f"{m} min" if m < 60 else f"{m // 60} h {m % 60:02d} min"


class _Numeric(QWidget):
    """A label over a big number; the number greys out when it is old or missing."""

    def __init__(self, label: str, colour: str, template: str) -> None:
        super().__init__()
        self.colour = colour
        self.name = QLabel(label)
        _set_colour(self.name, colour)
        self.value = FitLabel(template)
        self.age = QLabel("")
        _set_colour(self.age, theme.MUTED)
        column = QVBoxLayout(self)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addWidget(self.name)
        column.addWidget(self.value, 1)
        column.addWidget(self.age)
        self.stale = True

    def show_value(self, text: str, stale: bool, age: str, label: str | None = None) -> None:
        if label is not None:
            self.name.setText(label)
        self.value.setText(text)
        self.stale = stale
        _set_colour(self.value, theme.GREYED if stale else self.colour)
        self.age.setText(age)
        _set_colour(self.age, theme.AMBER if stale and text != NO_VALUE else theme.MUTED)


class ChairTile(QFrame):
    """A chair's tile; ``show_state`` with new data, ``refresh`` as time passes."""

    def __init__(self, workstation: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("tile")
        self.workstation = workstation
        self.state: ChairState | None = None
        self.alarm_colour = ""  # the frame's colour now ("" without an active alarm)
        self.painted_colour = ""  # the frame colour of the last paint (tests, benchmarks)
        self.paints = 0
        self._current = True

        self.title = QLabel(workstation)
        self.patient = QLabel("")
        header = QHBoxLayout()
        header.addWidget(self.title)
        header.addStretch(1)
        header.addWidget(self.patient)
        self.phase = QLabel("")
        self.elapsed = QLabel("")
        _set_colour(self.elapsed, theme.MUTED)
        self.hr = _Numeric("HR", theme.colour(Vital.HR), "000")
        self.nibp = _Numeric("NIBP", theme.colour(Vital.NIBP_SYS), "000/000")
        self.spo2 = _Numeric("SpO2", theme.colour(Vital.SPO2), "000")
        numbers = QGridLayout()
        numbers.setHorizontalSpacing(12)
        numbers.addWidget(self.hr, 0, 0)
        numbers.addWidget(self.nibp, 0, 1)
        numbers.addWidget(self.spo2, 0, 2)
        numbers.setColumnStretch(0, 2)
        numbers.setColumnStretch(1, 3)
        numbers.setColumnStretch(2, 2)
        self.alarm = QLabel("")
        self.alarm.setWordWrap(True)
        self.badge = QLabel(ATTENDING_BADGE)
        self.badge.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.badge.setAutoFillBackground(True)
        _set_colour(self.badge, theme.AMBER, QPalette.ColorRole.Window)
        _set_colour(self.badge, theme.BACKGROUND)
        self.badge.hide()
        self.unassessed = QLabel("")
        column = QVBoxLayout(self)
        column.setContentsMargins(BORDER_PX + 6, BORDER_PX + 2, BORDER_PX + 6, BORDER_PX + 2)
        column.setSpacing(2)
        column.addLayout(header)
        column.addWidget(self.phase)
        column.addWidget(self.elapsed)
        column.addLayout(numbers, 1)
        column.addWidget(self.alarm)
        column.addWidget(self.badge)
        column.addWidget(self.unassessed)

    # -- data -------------------------------------------------------------------------------
    def show_state(self, state: ChairState, now: datetime) -> None:
        """Show a new state of this chair (from the database)."""
        self.state = state
        self.patient.setText(state.initials or "—")
        colour = ""
        if state.alarm_priority is not None and state.live:
            colour = theme.PRIORITY_COLOURS.get(state.alarm_priority, theme.ALERT_RED)
            symbol = theme.PRIORITY_SYMBOLS.get(state.alarm_urgency or "", "")
            kind = " (technical)" if state.alarm_priority == "technical" else ""
            self.alarm.setText(f"{symbol} {state.alarm_text or 'alarm'}{kind}".strip())
            _set_colour(self.alarm, colour)
        else:
            self.alarm.setText("no active alarm" if state.live else "")
            _set_colour(self.alarm, theme.MUTED)
        self.badge.setVisible(state.attending and state.live)
        if state.attending_text:
            self.badge.setToolTip(state.attending_text)
        n = state.unassessed_minutes
        self.unassessed.setText(f"{n} min unassessed" if n else "")
        _set_colour(self.unassessed, theme.AMBER if n >= 3 else theme.TEXT)
        if colour != self.alarm_colour:
            self.alarm_colour = colour
            self.update()
        self.refresh(now)

    def refresh(self, now: datetime, *, current: bool = True) -> None:
        """Ages, staleness and elapsed times at ``now`` (called about once a second);
        ``current`` False (the database is out of reach): every value greyed."""
        s = self.state
        if s is None:
            return
        self._current = current
        phase = s.phase.label if s.phase is not None else "Not checked in"
        if s.phase_since is not None and s.live:
            phase += f" · {format_minutes(now - s.phase_since)}"
        self.phase.setText(phase)
        if s.live:
            self.elapsed.setText(f"{format_minutes(s.elapsed(now))} since "
                                 f"{'check-in' if s.initials else 'start'}")
        else:
            assert s.ended is not None
            self.elapsed.setText(f"recording ended {local_hms(s.ended)} "
                                 f"({format_minutes(s.elapsed(now))})")
        heart, label = (s.hr, "HR") if s.hr is not None or s.pr is None else (s.pr, "PR")
        self._numeric(self.hr, heart, "pr" if label == "PR" else "hr", now, label)
        self._numeric(self.spo2, s.spo2, "spo2", now)
        if s.nibp_sys is None:
            self.nibp.show_value(NO_VALUE, True, "")
        else:
            dia = "?" if s.nibp_dia is None else format_int(s.nibp_dia)
            stale = not (s.live and current) or s.stale("nibp", now)
            self.nibp.show_value(f"{format_int(s.nibp_sys.value)}/{dia}", stale,
                                 f"{local_hms(s.nibp_sys.t)} ({format_age(s.nibp_sys.age_s(now))})")

    def _numeric(self, widget: _Numeric, latest: Latest | None, vital: str, now: datetime,
                 label: str | None = None) -> None:
        assert self.state is not None
        if latest is None:
            widget.show_value(NO_VALUE, True, "", label)
            return
        stale = not (self.state.live and self._current) or self.state.stale(vital, now)
        age = format_age(latest.age_s(now))
        widget.show_value(format_int(latest.value), stale,
                          f"{theme.SYMBOL_STALE} {age} ago" if stale else f"{age} ago", label)

    # -- painting ---------------------------------------------------------------------------
    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt override
        """The panel, then (with an active alarm) a tint and a thick border in its colour."""
        super().paintEvent(event)
        self.paints += 1
        self.painted_colour = self.alarm_colour
        if not self.alarm_colour:
            return
        colour = QColor(self.alarm_colour)
        tint = QColor(colour)
        tint.setAlpha(TINT_ALPHA)
        painter = QPainter(self)
        painter.fillRect(self.rect(), tint)
        painter.setPen(QPen(colour, BORDER_PX))
        half = BORDER_PX // 2
        painter.drawRect(self.rect().adjusted(half, half, -half, -half))
        painter.end()

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt override
        """Scale the text with the tile, within readable bounds."""
        super().resizeEvent(event)
        px = max(13, min(26, int(self.height() * 0.055)))
        for label, size, bold in (
            (self.title, px + 4, True), (self.patient, px + 4, True), (self.phase, px + 2, True),
            (self.elapsed, px, False), (self.alarm, px + 2, True), (self.badge, px + 2, True),
            (self.unassessed, px, True), (self.hr.name, px, True), (self.nibp.name, px, True),
            (self.spo2.name, px, True), (self.hr.age, px - 2, False),
            (self.nibp.age, px - 2, False), (self.spo2.age, px - 2, False),
        ):
            font = label.font()
            font.setPixelSize(size)
            font.setBold(bold)
            label.setFont(font)
