"""The trends chart of the PDF report: HR/PR, NIBP and SpO2 against minutes from infusion start.

Drawn directly as a reportlab ``Drawing`` (three stacked panels on one time axis). Valid values
are black lines; artifacts and questionable values are grey crosses apart from them (never joined
to the line); a silence of more than ``GAP_S``, or a gap the recording noted (an interrupted
recording, drawn between dotted verticals marked "gap"), breaks a line. Phase markers are
dashed verticals (voided ones dotted grey). Alarm spans are shaded by priority in the panel of
their vital (all panels for an equipment alarm) and marked ``***``/``**``/``*`` above the chart,
so priority never depends on colour alone; charting reminders and score alarms are in the
alarm log, not here. Alarm limits in force are dotted lines labelled in the right margin.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from reportlab.graphics.shapes import Drawing, Line, PolyLine, Rect, String
from reportlab.lib import colors
from reportlab.pdfbase.pdfmetrics import stringWidth

from infusion_monitor.devices.base import DeviceEventKind
from infusion_monitor.export.pdf_style import BOLD, FONT, printable
from infusion_monitor.export.record import SessionRecord
from infusion_monitor.session.phases import Phase
from infusion_monitor.session.thresholds import NOTIFY_ATTENDING
from infusion_monitor.store.alarm_log import AlarmRecord
from infusion_monitor.vitals import Quality, Reading, Vital

GAP_S = 30.0  # a longer silence between two values is a gap, not a joining line
ART_GREY = colors.Color(0.55, 0.55, 0.55)
BAND = {"high": colors.Color(1, 0.80, 0.80), "medium": colors.Color(1, 0.91, 0.72),
        "low": colors.Color(0.85, 0.91, 1), "technical": colors.Color(0.88, 0.88, 0.88)}
STARS = {"high": "***", "medium": "**", "low": "*", "technical": "T"}
PANEL_OF = {Vital.HR: 0, Vital.PR: 0, Vital.NIBP_SYS: 1, Vital.NIBP_DIA: 1,
            Vital.NIBP_MEAN: 1, Vital.SPO2: 2}
ALL_PANELS = (0, 1, 2)

LEFT, RIGHT = 30.0, 34.0
PANEL_H = (112.0, 112.0, 88.0)
PANEL_GAP = 6.0
LABEL_ROWS = 3  # phase labels are stacked in up to three rows above the chart
TOP_STRIP = 12.0 + 9.0 * LABEL_ROWS  # phase labels + alarm stars
BOTTOM = 42.0  # axis labels + legend


@dataclass(frozen=True, slots=True)
class Axis:
    """Maps minutes and values of one panel to drawing coordinates."""

    x0: float
    x1: float
    m0: float
    m1: float
    y0: float
    y1: float
    v0: float
    v1: float

    def x(self, minute: float) -> float:
        return self.x0 + (minute - self.m0) / (self.m1 - self.m0) * (self.x1 - self.x0)

    def y(self, value: float) -> float:
        v = min(max(value, self.v0), self.v1)
        return self.y0 + (v - self.v0) / (self.v1 - self.v0) * (self.y1 - self.y0)


def origin(record: SessionRecord) -> datetime:
    """Minute 0 of the chart: the infusion start in force, else the session start."""
    starts = [m.t for m in record.markers if m.phase is Phase.INFUSION and not m.voided]
    return starts[-1] if starts else record.info.started


def trends_drawing(record: SessionRecord, width: float) -> Drawing:
    """The whole chart, ``width`` points wide."""
    t0 = origin(record)

    def minute(t: datetime) -> float:
        return (t - t0).total_seconds() / 60.0

    times = [r.time for r in record.readings] + [m.t for m in record.markers]
    if record.info.ended is not None:
        times.append(record.info.ended)
    m0 = math.floor(min((minute(t) for t in times), default=-5.0))
    m1 = math.ceil(max((minute(t) for t in times), default=5.0))
    if m1 - m0 < 10:
        m1 = m0 + 10
    height = BOTTOM + sum(PANEL_H) + 2 * PANEL_GAP + TOP_STRIP
    d = Drawing(width, height)
    valid: dict[Vital, list[Reading]] = {v: [] for v in PANEL_OF}
    doubtful: dict[Vital, list[Reading]] = {v: [] for v in PANEL_OF}
    for r in record.readings:
        if r.vital in PANEL_OF:
            (valid if r.quality is Quality.OK else doubtful)[r.vital].append(r)
    ranges = _ranges(valid)
    axes: list[Axis] = []
    top = height - TOP_STRIP
    for i, h in enumerate(PANEL_H):
        lo, hi = ranges[i]
        axes.append(Axis(LEFT, width - RIGHT, m0, m1, top - h, top, lo, hi))
        top -= h + PANEL_GAP
    _bands(d, axes, record, minute)
    for i, a in enumerate(axes):
        _frame(d, a, last=i == 2)
        _limits(d, a, record, i)
    for vital, points in doubtful.items():
        _crosses(d, axes[PANEL_OF[vital]], [(minute(r.time), r.value) for r in points])
    gaps = recorded_gaps(record)
    breaks = [end for _, end in gaps]
    _series(d, axes[0], valid[Vital.PR], minute, colors.Color(0.35, 0.35, 0.35), (2, 1.5), 0.5,
            breaks)
    _series(d, axes[0], valid[Vital.HR], minute, colors.black, None, 0.6, breaks)
    _nibp(d, axes[1], valid, minute)
    _series(d, axes[2], valid[Vital.SPO2], minute, colors.black, None, 0.6, breaks)
    _gaps(d, axes, gaps, minute)
    for a, label in zip(axes, ("HR / PR (/min)", "NIBP (mmHg)", "SpO2 (%)"), strict=True):
        _panel_label(d, a, label)
    _phases(d, axes, record, minute)
    _legend(d)
    return d


def _ranges(valid: dict[Vital, list[Reading]]) -> list[tuple[float, float]]:
    def span(vitals: Sequence[Vital], lo: float, hi: float, pad: float,
             step: float, cap: tuple[float, float]) -> tuple[float, float]:
        values = [r.value for v in vitals for r in valid[v]]
        low = min([lo, *(x - pad for x in values)])
        high = max([hi, *(x + pad for x in values)])
        low = max(cap[0], math.floor(low / step) * step)
        high = min(cap[1], math.ceil(high / step) * step)
        return low, high

    return [
        span((Vital.HR, Vital.PR), 40, 120, 5, 10, (0, 300)),
        span((Vital.NIBP_SYS, Vital.NIBP_DIA, Vital.NIBP_MEAN), 40, 160, 10, 20, (0, 300)),
        span((Vital.SPO2,), 86, 100, 2, 2, (50, 100)),
    ]


def _frame(d: Drawing, a: Axis, *, last: bool) -> None:
    d.add(Rect(a.x0, a.y0, a.x1 - a.x0, a.y1 - a.y0, fillColor=None,
               strokeColor=colors.black, strokeWidth=0.6))
    step = _nice((a.v1 - a.v0) / 5)
    v = math.ceil(a.v0 / step) * step
    while v <= a.v1 + 1e-9:
        y = a.y(v)
        d.add(Line(a.x0, y, a.x1, y, strokeColor=colors.Color(0.85, 0.85, 0.85),
                   strokeWidth=0.3))
        d.add(String(a.x0 - 3, y - 2.5, f"{v:g}", fontName=FONT, fontSize=6.5,
                     textAnchor="end"))
        v += step
    xstep = _nice((a.m1 - a.m0) / 12)
    m = math.ceil(a.m0 / xstep) * xstep
    while m <= a.m1 + 1e-9:
        x = a.x(m)
        d.add(Line(x, a.y0, x, a.y1, strokeColor=colors.Color(0.9, 0.9, 0.9), strokeWidth=0.3))
        if last:
            d.add(Line(x, a.y0, x, a.y0 - 2.5, strokeColor=colors.black, strokeWidth=0.5))
            d.add(String(x, a.y0 - 10, f"{m:g}", fontName=FONT, fontSize=6.5,
                         textAnchor="middle"))
        m += xstep
    if last:
        d.add(String((a.x0 + a.x1) / 2, a.y0 - 19, "minutes from infusion start",
                     fontName=FONT, fontSize=7, textAnchor="middle"))


def _panel_label(d: Drawing, a: Axis, label: str) -> None:
    """The panel's name at its top left, on white so no line runs through it."""
    w = stringWidth(label, BOLD, 7)
    d.add(Rect(a.x0 + 0.5, a.y1 - 10, w + 5, 9.5, fillColor=colors.white, strokeColor=None))
    d.add(String(a.x0 + 3, a.y1 - 7.5, label, fontName=BOLD, fontSize=7))


def _nice(raw: float) -> float:
    """A round step near ``raw``: 1, 2, 5, 10, 20, ..."""
    exp = 10 ** math.floor(math.log10(max(raw, 1e-9)))
    for f in (1, 2, 5, 10):
        if raw <= f * exp:
            return f * exp
    return 10 * exp


_PANEL_LIMITS = (
    (("hr_low", "<"), ("hr_high", ">")),
    (("sbp_high", "S ≥"), ("dbp_high", "D ≥"), ("sbp_low", "S <")),
    (("spo2_low", "<"),),
)


def _limits(d: Drawing, a: Axis, record: SessionRecord, panel: int) -> None:
    """The alarm limits in force: thin dotted lines, labelled in the right margin."""
    placed: list[float] = []
    for name, prefix in _PANEL_LIMITS[panel]:
        value = record.limits.get(name)
        if value is None or not a.v0 < value < a.v1:
            continue
        y = a.y(value)
        d.add(Line(a.x0, y, a.x1 + 2, y, strokeColor=colors.Color(0.4, 0.4, 0.4),
                   strokeWidth=0.4, strokeDashArray=(1, 2)))
        ty = y - 2
        while any(abs(ty - p) < 6 for p in placed):  # keep close labels apart
            ty += 6
        placed.append(ty)
        d.add(String(a.x1 + 3, ty, f"{prefix}{value:g}", fontName=FONT, fontSize=5.5,
                     fillColor=colors.Color(0.25, 0.25, 0.25)))


def panels_of(alarm: AlarmRecord) -> tuple[int, ...]:
    """Where an alarm is shaded: its vital's panel, every panel for an equipment alarm.

    The attending flag is not shaded: it lasts until the attending acknowledges, not as long
    as the values are out of range (its BP alarms are shaded themselves).
    """
    if alarm.condition == NOTIFY_ATTENDING:
        return ()
    if alarm.parameter is not None:
        try:
            return (PANEL_OF[Vital(alarm.parameter)],)
        except (ValueError, KeyError):
            return ()  # a charted score (RASS, distress): in the alarm log only
    return ALL_PANELS if alarm.technical else ()


def _bands(d: Drawing, axes: list[Axis], record: SessionRecord, minute) -> None:
    for alarm in record.alarms:
        end = alarm.end or alarm.cleared
        for i in panels_of(alarm):
            a = axes[i]
            x0 = a.x(max(a.m0, minute(alarm.start)))
            x1 = a.x1 if end is None else a.x(min(a.m1, minute(end)))
            d.add(Rect(x0, a.y0, max(x1 - x0, 0.8), a.y1 - a.y0, strokeColor=None,
                       fillColor=BAND.get(alarm.priority, BAND["technical"])))


def recorded_gaps(record: SessionRecord) -> list[tuple[datetime, datetime]]:
    """The recording's own gaps (crash recovery: a GAP device event at the first reading after
    the resume): from the last reading before each to the event."""
    ends = sorted(e.t_received for e in record.device_events
                  if e.kind is DeviceEventKind.GAP and e.t_received is not None)
    times = sorted(r.time for r in record.readings)
    out = []
    for end in ends:
        before = bisect.bisect_left(times, end)
        out.append((times[before - 1] if before else end, end))
    return out


def _gaps(d: Drawing, axes: list[Axis], gaps: Sequence[tuple[datetime, datetime]],
          minute) -> None:
    """Each recorded gap: dotted verticals at its ends through every panel, "gap" above."""
    top, bottom = axes[0].y1, axes[-1].y0
    a = axes[0]
    grey = colors.Color(0.45, 0.45, 0.45)
    for start, end in gaps:
        x0, x1 = a.x(minute(start)), a.x(minute(end))
        for x in {x0, x1}:
            d.add(Line(x, bottom, x, top, strokeColor=grey, strokeWidth=0.5,
                       strokeDashArray=(0.8, 1.6)))
        d.add(String((x0 + x1) / 2 - 5, top - 7, "gap", fontName=FONT, fontSize=6,
                     fillColor=grey))


def _series(d: Drawing, a: Axis, readings: Sequence[Reading], minute, colour,
            dash: tuple[float, float] | None, width: float,
            breaks: Sequence[datetime] = ()) -> None:
    """One line per run of values without a gap longer than GAP_S or a recorded gap."""
    run: list[float] = []
    last: datetime | None = None

    def flush() -> None:
        if len(run) >= 4:
            d.add(PolyLine(list(run), strokeColor=colour, strokeWidth=width,
                           strokeDashArray=dash, strokeLineJoin=1))
        elif len(run) == 2:
            d.add(Rect(run[0] - 0.6, run[1] - 0.6, 1.2, 1.2, fillColor=colour, strokeColor=None))
        run.clear()

    for r in readings:
        if last is not None and ((r.time - last).total_seconds() > GAP_S
                                 or any(last < t <= r.time for t in breaks)):
            flush()
        run.extend((a.x(minute(r.time)), a.y(r.value)))
        last = r.time
    flush()


def _crosses(d: Drawing, a: Axis, points: Sequence[tuple[float, float]]) -> None:
    s = 1.6
    for m, v in points:
        if not a.m0 <= m <= a.m1:
            continue
        x, y = a.x(m), a.y(v)
        d.add(Line(x - s, y - s, x + s, y + s, strokeColor=ART_GREY, strokeWidth=0.5))
        d.add(Line(x - s, y + s, x + s, y - s, strokeColor=ART_GREY, strokeWidth=0.5))


def _nibp(d: Drawing, a: Axis, valid: dict[Vital, list[Reading]], minute) -> None:
    """Each valid measurement as a sys–dia bar with a square at the mean."""
    by_time: dict[datetime, dict[Vital, float]] = {}
    for v in (Vital.NIBP_SYS, Vital.NIBP_DIA, Vital.NIBP_MEAN):
        for r in valid[v]:
            by_time.setdefault(r.time, {})[v] = r.value
    for t, parts in sorted(by_time.items()):
        x = a.x(minute(t))
        sys_, dia, mean = (parts.get(v) for v in (Vital.NIBP_SYS, Vital.NIBP_DIA,
                                                   Vital.NIBP_MEAN))
        if sys_ is not None and dia is not None:
            d.add(Line(x, a.y(dia), x, a.y(sys_), strokeColor=colors.black, strokeWidth=0.9))
            for v in (sys_, dia):
                d.add(Line(x - 2, a.y(v), x + 2, a.y(v), strokeColor=colors.black,
                           strokeWidth=0.9))
        if mean is not None:
            d.add(Rect(x - 1.4, a.y(mean) - 1.4, 2.8, 2.8, fillColor=colors.white,
                       strokeColor=colors.black, strokeWidth=0.6))


def _phases(d: Drawing, axes: list[Axis], record: SessionRecord, minute) -> None:
    """Dashed verticals, labelled above the chart in up to three rows so that no two labels
    overlap (markers at the same moment share one label); one star mark per alarm start."""
    top, bottom = axes[0].y1, axes[-1].y0
    a = axes[0]
    groups: list[tuple[float, bool, list[str]]] = []  # x, voided, labels
    for mk in sorted(record.markers, key=lambda m: (m.t, m.marker.id)):
        m = minute(mk.t)
        if not a.m0 <= m <= a.m1:
            continue
        x = a.x(m)
        label = mk.phase.label + (" (voided)" if mk.voided else "")
        if groups and abs(groups[-1][0] - x) < 1 and groups[-1][1] == mk.voided:
            groups[-1][2].append(label)
        else:
            groups.append((x, mk.voided, [label]))
    row_end = [-math.inf] * LABEL_ROWS  # right edge of the last label in each row
    labels = []
    for x, voided, names in groups:
        label = printable(" / ".join(names))
        w = stringWidth(label, FONT, 6.5)
        lx = min(max(x - w / 2, 2.0), a.x1 + RIGHT - w - 2)
        row = next((r for r in range(LABEL_ROWS) if row_end[r] + 4 <= lx), LABEL_ROWS - 1)
        row_end[row] = lx + w
        y = top + 12 + 9 * row
        grey = colors.Color(0.55, 0.55, 0.55) if voided else colors.black
        d.add(Line(x, bottom, x, y - 1.5, strokeColor=grey, strokeWidth=0.6,
                   strokeDashArray=(1, 1.5) if voided else (3, 2)))
        labels.append((lx, y, w, label, grey))
    for lx, y, w, label, grey in labels:  # on white, over any line that passes behind
        d.add(Rect(lx - 1, y - 2, w + 2, 8, fillColor=colors.white, strokeColor=None))
        d.add(String(lx, y, label, fontName=FONT, fontSize=6.5, fillColor=grey))
    stars: dict[int, str] = {}  # one mark per point of the axis: the highest priority
    for alarm in record.alarms:
        m = minute(alarm.start)
        if panels_of(alarm) and a.m0 <= m <= a.m1:
            x = round(a.x(m))
            mark = STARS.get(alarm.priority, "?")
            if len(mark) > len(stars.get(x, "")):
                stars[x] = mark
    for x, mark in stars.items():
        d.add(String(x + 0.5, top + 3, mark, fontName=BOLD, fontSize=6,
                     fillColor=colors.Color(0.25, 0.25, 0.25)))


def _legend(d: Drawing) -> None:
    y, x = 4.0, LEFT
    black = colors.black

    def text(s: str) -> None:
        nonlocal x
        d.add(String(x, y - 2.3, s, fontName=FONT, fontSize=6.3))
        x += stringWidth(s, FONT, 6.3) + 9

    d.add(Line(x, y, x + 14, y, strokeColor=black, strokeWidth=0.6))
    x += 17
    text("HR, SpO2")
    d.add(Line(x, y, x + 14, y, strokeColor=black, strokeWidth=0.5, strokeDashArray=(2, 1.5)))
    x += 17
    text("PR")
    d.add(Line(x + 2, y - 3.5, x + 2, y + 3.5, strokeColor=black, strokeWidth=0.9))
    d.add(Rect(x + 0.6, y - 1.4, 2.8, 2.8, fillColor=colors.white, strokeColor=black,
               strokeWidth=0.6))
    x += 7
    text("NIBP sys–dia, mean")
    _crosses(d, Axis(x, x + 1, 0, 1, y - 1, y + 1, 0, 1), [(0.5, 0.5)])
    x += 5
    text("not used (artifact)")
    d.add(Line(x, y, x + 12, y, strokeColor=colors.Color(0.4, 0.4, 0.4), strokeWidth=0.4,
               strokeDashArray=(1, 2)))
    x += 15
    text("alarm limit")
    for prio in ("high", "medium", "low"):
        d.add(Rect(x, y - 3, 9, 6, fillColor=BAND[prio], strokeColor=None))
        x += 11
        text(f"{STARS[prio]} {prio} alarm")
