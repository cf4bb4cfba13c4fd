"""Session trend charts: HR/PR, NIBP and SpO2 stacked on one time axis (minutes from start)."""

from __future__ import annotations

import math
from collections.abc import Iterable
from datetime import datetime

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QLineF, QRectF, Qt
from PySide6.QtGui import QColor, QPen
from PySide6.QtWidgets import QVBoxLayout, QWidget

from infusion_monitor.clock import Clock
from infusion_monitor.devices.base import DeviceEvent, DeviceEventKind, Event
from infusion_monitor.ui import qt_theme as theme
from infusion_monitor.vitals import NIBP, SPECS, Quality, Reading, Vital

TREND_VITALS = (Vital.HR, Vital.PR, Vital.NIBP_SYS, Vital.NIBP_DIA, Vital.NIBP_MEAN, Vital.SPO2)
#: A longer silence than this between two values is drawn as a gap, not a joining line.
CONTINUOUS_GAP_S = 30.0
_LINK_LOST = (DeviceEventKind.LINK_DOWN, DeviceEventKind.NO_DATA)


class SeriesBuffer:
    """A growable pair of numpy arrays (seconds, value); a NaN value marks a break in the line."""

    def __init__(self, capacity: int = 1024) -> None:
        self._x = np.empty(capacity)
        self._y = np.empty(capacity)
        self.size = 0

    def append(self, x: float, y: float) -> None:
        if self.size == len(self._x):  # double: amortised O(1), a session holds a few thousand
            self._x = np.concatenate([self._x, np.empty_like(self._x)])
            self._y = np.concatenate([self._y, np.empty_like(self._y)])
        self._x[self.size] = x
        self._y[self.size] = y
        self.size += 1

    def break_line(self) -> None:
        """End the current line segment (``connect='finite'`` will not join across it)."""
        if self.size and not math.isnan(self._y[self.size - 1]):
            self.append(self._x[self.size - 1], math.nan)

    def clear(self) -> None:
        self.size = 0

    @property
    def xs(self) -> np.ndarray:
        return self._x[: self.size]

    @property
    def ys(self) -> np.ndarray:
        return self._y[: self.size]

    def last_x(self) -> float | None:
        return float(self._x[self.size - 1]) if self.size else None

    def points(self) -> tuple[np.ndarray, np.ndarray]:
        """The real points only (gap markers left out), as copies."""
        keep = np.isfinite(self.ys)
        return self.xs[keep].copy(), self.ys[keep].copy()


def _plot(label_html: str, y_range: tuple[float, float], *,
          interactive: bool = False) -> pg.PlotWidget:
    plot = pg.PlotWidget()
    # Live: the whole session stays in view, no accidental zoom. Review: zoom and pan in time.
    plot.setMouseEnabled(x=interactive, y=False)
    plot.setMenuEnabled(False)
    plot.hideButtons()
    plot.addItem(Grid(plot), ignoreBounds=True)
    plot.setLabel("left", label_html)
    plot.getAxis("left").setWidth(64)
    plot.setYRange(*y_range, padding=0)
    return plot


def _line(plot: pg.PlotWidget, colour: str, **kwargs: object) -> pg.PlotDataItem:
    opts: dict[str, object] = {"connect": "finite", "clipToView": True, "antialias": False}
    opts.update(kwargs)
    item = pg.PlotDataItem(pen=pg.mkPen(colour, width=1), **opts)
    plot.addItem(item)
    return item


def _artifacts(plot: pg.PlotWidget) -> pg.PlotDataItem:
    """Grey hollow circles, never joined: values shown for the record, not as valid."""
    item = pg.PlotDataItem(
        pen=None, symbol="o", symbolSize=7, symbolPen=pg.mkPen(theme.GREYED, width=1),
        symbolBrush=None, clipToView=True, antialias=False,
    )
    plot.addItem(item)
    return item


def _span(label: str, vital: Vital) -> str:
    return f'<span style="color:{theme.colour(vital)}">{label}</span>'


class Grid(pg.GraphicsObject):
    """Grid lines at the axes' major ticks, drawn in one call behind the curves.

    pyqtgraph's own grid (``showGrid``) cost about 14 ms per plot per repaint here (it is
    painted by each axis over the whole plot); this draws the same lines in about 0.1 ms, which
    matters for opening a review and for the live window's CPU.
    """

    def __init__(self, plot: pg.PlotWidget, alpha: int = 46) -> None:
        super().__init__()
        self._plot = plot
        self._pen = QPen(QColor(255, 255, 255, alpha))
        self._pen.setCosmetic(True)
        self.setZValue(-20)
        self._ticks: dict[tuple[str, float, float, float], list[float]] = {}

    def _ranges(self) -> tuple[tuple[float, float], tuple[float, float]] | None:
        vb = self.getViewBox()
        if vb is None:
            return None
        (x0, x1), (y0, y1) = vb.viewRange()
        return (x0, x1), (y0, y1)

    def viewRangeChanged(self) -> None:  # noqa: N802 - pyqtgraph hook
        self.prepareGeometryChange()

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt override
        ranges = self._ranges()
        if ranges is None:
            return QRectF()
        (x0, x1), (y0, y1) = ranges
        return QRectF(x0, y0, x1 - x0, y1 - y0)

    def _major(self, axis: str, lo: float, hi: float, pixels: float) -> list[float]:
        """The axis's major ticks; remembered per range and size, since the live window
        repaints ten times a second over the same range (pyqtgraph's tick search was ~15 %
        of a frame)."""
        key = (axis, lo, hi, pixels)
        found = self._ticks.get(key)
        if found is None:
            levels = self._plot.getAxis(axis).tickValues(lo, hi, max(pixels, 1.0))
            found = list(levels[0][1]) if levels else []
            if len(self._ticks) > 64:
                self._ticks.clear()
            self._ticks[key] = found
        return found

    def paint(self, painter, *_args) -> None:  # type: ignore[override]
        ranges = self._ranges()
        if ranges is None:
            return
        (x0, x1), (y0, y1) = ranges
        vb = self.getViewBox()
        size = vb.size()
        painter.setPen(self._pen)
        lines = [QLineF(x, y0, x, y1) for x in self._major("bottom", x0, x1, size.width())]
        lines += [QLineF(x0, y, x1, y) for y in self._major("left", y0, y1, size.height())]
        if lines:
            painter.drawLines(lines)


class AlarmBands(pg.GraphicsObject):
    """Alarm spans shaded full-height behind a plot's curves: ``(x0, x1, colour)`` each."""

    def __init__(self) -> None:
        super().__init__()
        self.spans: list[tuple[float, float, QColor]] = []
        self.setZValue(-10)

    def set_spans(self, spans: list[tuple[float, float, QColor]]) -> None:
        self.prepareGeometryChange()
        self.spans = spans
        self.update()

    def _y_range(self) -> tuple[float, float]:
        vb = self.getViewBox()
        if vb is None:
            return 0.0, 1.0
        lo, hi = vb.viewRange()[1]
        return lo, hi

    def viewRangeChanged(self) -> None:  # noqa: N802 - pyqtgraph hook
        self.prepareGeometryChange()

    def boundingRect(self) -> QRectF:  # noqa: N802 - Qt override
        if not self.spans:
            return QRectF()
        lo, hi = self._y_range()
        x0 = min(a for a, _, _ in self.spans)
        x1 = max(b for _, b, _ in self.spans)
        return QRectF(x0, lo, max(x1 - x0, 0.0), hi - lo)

    def paint(self, painter, *_args) -> None:  # type: ignore[override]
        lo, hi = self._y_range()
        painter.setPen(Qt.PenStyle.NoPen)
        for x0, x1, colour in self.spans:
            painter.setBrush(colour)
            painter.drawRect(QRectF(x0, lo, max(x1 - x0, 0.0), hi - lo))


class TrendPanel(QWidget):
    """Three stacked plots sharing the x axis; data rate and redraw rate are separate.

    Events only append to numpy buffers; ``redraw()`` (called by a ~10 Hz timer) pushes the
    buffers to the plot items when something changed.
    """

    def __init__(self, clock: Clock, *, window_min: float = 60.0, interactive: bool = False,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._clock = clock
        self.window_min = window_min
        self.t0: datetime | None = None
        self._valid = {v: SeriesBuffer() for v in TREND_VITALS}
        self._artifact = {v: SeriesBuffer() for v in TREND_VITALS}
        # Vitals whose buffers changed since the last redraw: only their items are given new
        # data (and repainted), so an HR value does not re-lay the NIBP symbols every tick.
        self._dirty: set[Vital] = set()
        self._x_max = 0.0
        self._y_defaults: dict[pg.PlotWidget, tuple[float, float, float]] = {}

        unit = SPECS[Vital.HR].unit
        self.hr_plot = _plot(f"{_span('HR', Vital.HR)} {_span('PR', Vital.PR)} {unit}",
                             (40, 140), interactive=interactive)
        # Short axis titles: at 1366x768 a plot is ~120 px tall and a long title is clipped.
        self.nibp_plot = _plot(
            f"{_span('NIBP', Vital.NIBP_SYS)} {_span('(mean)', Vital.NIBP_MEAN)} mmHg", (40, 180),
            interactive=interactive)
        self.spo2_plot = _plot(f"{_span('SpO2', Vital.SPO2)} %", (80, 101),
                               interactive=interactive)
        self.plots = (self.hr_plot, self.nibp_plot, self.spo2_plot)
        self.markers: list[tuple[datetime, str, bool]] = []
        self.bands: list[tuple[datetime, datetime | None, str]] = []
        self._marker_items: dict[pg.PlotWidget, list[pg.InfiniteLine]] = {p: [] for p in self.plots}
        #: Recorded gaps (time, detail), each marked on every plot.
        self.gaps: list[tuple[datetime, str]] = []
        self._gap_items: dict[pg.PlotWidget, list[pg.InfiniteLine]] = {p: [] for p in self.plots}
        self._band_items: dict[pg.PlotWidget, AlarmBands] = {}
        for plot in self.plots:
            bands = AlarmBands()
            plot.addItem(bands, ignoreBounds=True)
            self._band_items[plot] = bands
        self._y_defaults = {self.hr_plot: (40, 140, 5), self.nibp_plot: (40, 180, 10),
                            self.spo2_plot: (80, 101, 2)}
        for plot in self.plots[:-1]:
            plot.setXLink(self.spo2_plot)
            plot.getAxis("bottom").setStyle(showValues=False)
        self.spo2_plot.setLabel("bottom", "minutes since start")

        nibp = theme.colour(Vital.NIBP_SYS)
        # One sys-dia bar per measurement; not clipped, clipping could split a pair.
        self._bars = _line(self.nibp_plot, nibp, connect="pairs", clipToView=False)
        self._curves = {
            Vital.HR: _line(self.hr_plot, theme.colour(Vital.HR)),
            Vital.PR: _line(self.hr_plot, theme.colour(Vital.PR)),
            Vital.NIBP_SYS: _line(self.nibp_plot, nibp, symbol="t", symbolSize=10,
                                  symbolPen=None, symbolBrush=nibp),
            Vital.NIBP_DIA: _line(self.nibp_plot, theme.colour(Vital.NIBP_DIA), symbol="t1",
                                  symbolSize=10, symbolPen=None,
                                  symbolBrush=theme.colour(Vital.NIBP_DIA)),
            Vital.NIBP_MEAN: _line(self.nibp_plot, theme.colour(Vital.NIBP_MEAN), symbol="o",
                                   symbolSize=5, symbolPen=None,
                                   symbolBrush=theme.colour(Vital.NIBP_MEAN)),
            Vital.SPO2: _line(self.spo2_plot, theme.colour(Vital.SPO2)),
        }
        self._curves[Vital.HR].setZValue(1)  # ECG heart rate above the oximeter's pulse rate
        owner = {Vital.HR: self.hr_plot, Vital.PR: self.hr_plot, Vital.SPO2: self.spo2_plot}
        self._artifact_items = {v: _artifacts(owner.get(v, self.nibp_plot)) for v in TREND_VITALS}
        # Kept beside the buffers so the sys-dia bar of each measurement can be drawn.
        self._nibp_pairs: dict[float, dict[Vital, float]] = {}

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        for plot, stretch in zip(self.plots, (3, 3, 2), strict=True):
            layout.addWidget(plot, stretch)
        self._set_x_range()

    # -- data in ----------------------------------------------------------------------------
    def start_session(self, t0: datetime | None = None) -> None:
        """Forget all points; x = 0 is ``t0`` (default: now on the injected clock)."""
        self.t0 = t0 or self._clock.now()
        for buf in (*self._valid.values(), *self._artifact.values()):
            buf.clear()
        self._nibp_pairs.clear()
        self._clear_gap_marks()
        self._x_max = 0.0
        self._dirty.update(TREND_VITALS)

    def add_events(self, events: Iterable[Event]) -> None:
        """Append a batch of recorder events to the buffers (drawn on the next redraw)."""
        for event in events:
            if isinstance(event, Reading):
                self._add_reading(event)
            elif event.kind is DeviceEventKind.GAP:
                self.mark_gap(event)
            elif event.kind in _LINK_LOST:
                for buf in self._valid.values():
                    buf.break_line()
                self._dirty.update(self._valid)
            elif event.vital in self._valid and (
                event.kind is DeviceEventKind.PROBE_OFF
                or (event.kind is DeviceEventKind.PARAMETER_STATUS and event.detail != "valid")
            ):
                self._valid[event.vital].break_line()
                self._dirty.add(event.vital)

    def _add_reading(self, reading: Reading) -> None:
        if reading.vital not in self._valid:
            return
        t = reading.t_received or self._clock.now()
        if self.t0 is None:
            self.start_session(t)
        assert self.t0 is not None
        x = (t - self.t0).total_seconds()
        valid = self._valid[reading.vital]
        if reading.quality is Quality.OK:
            last = valid.last_x()
            if reading.vital not in NIBP and last is not None and x - last > CONTINUOUS_GAP_S:
                valid.break_line()
            valid.append(x, reading.value)
            if reading.vital in (Vital.NIBP_SYS, Vital.NIBP_DIA):
                self._nibp_pairs.setdefault(x, {})[reading.vital] = reading.value
        else:
            valid.break_line()
            self._artifact[reading.vital].append(x, reading.value)
        self._dirty.add(reading.vital)

    # -- for tests --------------------------------------------------------------------------
    # -- phase markers and alarm bands ------------------------------------------------------
    def _x(self, t: datetime) -> float:
        """Minutes since the session start on the shared x axis."""
        t0 = self.t0 or t
        return (t - t0).total_seconds() / 60.0

    def set_markers(self, markers: Iterable[tuple[datetime, str, bool]]) -> None:
        """Show phase markers ``(time, label, voided)`` as labelled vertical lines on every plot.

        A voided marker (undone by an amendment) stays visible, dashed and greyed.
        """
        for plot, items in self._marker_items.items():
            for item in items:
                plot.removeItem(item)
            items.clear()
        self.markers = list(markers)
        for t, label, voided in self.markers:
            pen = pg.mkPen(theme.GREYED if voided else theme.TEXT, width=1,
                           style=Qt.PenStyle.DashLine if voided else Qt.PenStyle.SolidLine)
            for plot, items in self._marker_items.items():
                line = pg.InfiniteLine(
                    pos=self._x(t), angle=90, movable=False, pen=pen,
                    label=(label + (" (undone)" if voided else "")) if plot is self.hr_plot
                    else None,
                    labelOpts={"position": 0.5, "color": theme.MUTED, "rotateAxis": (1, 0)},
                )
                plot.addItem(line, ignoreBounds=True)
                items.append(line)

    def mark_gap(self, event: DeviceEvent) -> None:
        """A recorded gap (device event GAP: the link was down, or the app had stopped): no
        line is drawn across it, and a dotted line labelled "gap" marks where data resumed."""
        for buf in self._valid.values():
            buf.break_line()
        self._dirty.update(self._valid)
        t = event.t_received or self._clock.now()
        if self.t0 is None:
            self.start_session(t)
        self.gaps.append((t, event.detail))
        pen = pg.mkPen(theme.MUTED, width=1, style=Qt.PenStyle.DotLine)
        for plot, items in self._gap_items.items():
            line = pg.InfiniteLine(pos=self._x(t), angle=90, movable=False, pen=pen,
                                   label="gap" if plot is self.hr_plot else None,
                                   labelOpts={"position": 0.9, "color": theme.MUTED})
            line.setToolTip(event.detail)
            plot.addItem(line, ignoreBounds=True)
            items.append(line)

    def _clear_gap_marks(self) -> None:
        for plot, items in self._gap_items.items():
            for item in items:
                plot.removeItem(item)
            items.clear()
        self.gaps.clear()

    def set_alarm_bands(
        self, bands: Iterable[tuple[datetime, datetime | None, str]]
    ) -> None:
        """Shade each alarm's span ``(start, end or None while active, priority)``.

        Called on every alarm change and about once a second while one is open. One
        ``AlarmBands`` item per plot paints all spans: a long session holds dozens of alarms,
        and an interactive region item per alarm made opening a review ~40 ms slower.
        """
        self.bands = list(bands)
        now = self._clock.now()
        spans = []
        for start, end, priority in self.bands:
            colour = pg.mkColor(theme.PRIORITY_COLOURS.get(priority, theme.AMBER))
            colour.setAlpha(60)
            spans.append((self._x(start), self._x(end or now), colour))
        for item in self._band_items.values():
            item.set_spans(spans)

    def curve_data(self, vital: Vital) -> tuple[np.ndarray, np.ndarray]:
        """The valid points held for a vital: (seconds since start, values)."""
        return self._valid[vital].points()

    def artifact_data(self, vital: Vital) -> tuple[np.ndarray, np.ndarray]:
        """The artifact/questionable points held for a vital: (seconds since start, values)."""
        return self._artifact[vital].points()

    def drawn_data(self, vital: Vital) -> tuple[np.ndarray, np.ndarray]:
        """What the valid curve item was last given (minutes, values; NaN marks a gap)."""
        x, y = self._curves[vital].getOriginalDataset()
        return (np.empty(0), np.empty(0)) if x is None else (x, y)

    # -- drawing ----------------------------------------------------------------------------
    def redraw(self) -> None:
        """Push changed buffers to the plot items and keep the whole session in view."""
        self._set_x_range()
        if not self._dirty:
            return
        dirty, self._dirty = self._dirty, set()
        for vital in dirty:
            buf = self._valid[vital]
            self._curves[vital].setData(buf.xs / 60.0, buf.ys)
            art = self._artifact[vital]
            self._artifact_items[vital].setData(art.xs / 60.0, art.ys)
        self._fit_y(dirty)
        if dirty.isdisjoint((Vital.NIBP_SYS, Vital.NIBP_DIA)):
            return
        pairs = [(x, p) for x, p in self._nibp_pairs.items() if len(p) == 2]
        bar_x = np.repeat([x / 60.0 for x, _ in pairs], 2)
        bar_y = np.array([p[v] for _, p in pairs for v in (Vital.NIBP_SYS, Vital.NIBP_DIA)])
        self._bars.setData(bar_x, bar_y)

    def _set_x_range(self) -> None:
        elapsed = 0.0 if self.t0 is None else (self._clock.now() - self.t0).total_seconds() / 60
        x_max = max(self.window_min, math.ceil(elapsed + 1))
        if x_max != self._x_max:
            self._x_max = x_max
            self.spo2_plot.setXRange(0, x_max, padding=0)

    def _fit_y(self, changed: set[Vital]) -> None:
        """Default ranges, widened (never narrowed) to keep every valid value in view; only
        the plots showing a ``changed`` vital."""
        members = {self.hr_plot: (Vital.HR, Vital.PR), self.nibp_plot: NIBP,
                   self.spo2_plot: (Vital.SPO2,)}
        for plot, vitals in members.items():
            if changed.isdisjoint(vitals):
                continue
            lo, hi, margin = self._y_defaults[plot]
            ys = np.concatenate([self._valid[v].points()[1] for v in vitals])
            if ys.size:
                lo = min(lo, math.floor(float(ys.min()) - margin))
                hi = max(hi, math.ceil(float(ys.max()) + margin))
            if plot is self.spo2_plot:
                hi = min(hi, 101)
            plot.setYRange(lo, hi, padding=0)
