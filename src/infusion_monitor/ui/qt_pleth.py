"""The pleth: a sweeping live trace under the SpO2 numeric, and a strip of it in review.

The live sweep is drawn like a bedside monitor's: a fixed time window, new samples overwrite
the old ones left to right behind a small erase gap. Its position is the number of samples
received, never the wall clock: blocks arrive about three times a second and the frame timer
only spreads each block's reveal over the frames until the next one is due.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime, timedelta

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QStackedWidget, QVBoxLayout, QWidget

from infusion_monitor.clock import Clock, to_us
from infusion_monitor.devices.base import WaveformBlock
from infusion_monitor.store.waveforms import WaveformTrace
from infusion_monitor.ui import qt_theme as theme
from infusion_monitor.vitals import Quality, Vital

WINDOW_S = 5.0  # width of the sweep, as on most monitors' pleth at 25 mm/s
ERASE_S = 0.15  # the blank just ahead of the newest sample
STALE_S = 2.0  # no block for this long: say so rather than show a frozen trace
FRAME_MS = 40  # 25 frames/s: smooth enough for a 75 Hz trace, cheap enough for the GUI thread
CATCH_UP = 1.25  # reveal speed (x device rate) while more than a block and a half behind
NO_SIGNAL = "no pleth signal"
STRIP_HALF_S = 5.0  # review shows the cursor's time ±5 s


def _set_colour(label: QLabel, colour: str) -> None:
    palette = label.palette()
    palette.setColor(QPalette.ColorRole.WindowText, QColor(colour))
    label.setPalette(palette)


def _trace_plot() -> pg.PlotWidget:
    """A bare plot: no mouse, menu or buttons; the caller fixes the ranges."""
    plot = pg.PlotWidget()
    plot.setMouseEnabled(x=False, y=False)
    plot.setMenuEnabled(False)
    plot.hideButtons()
    plot.getPlotItem().getViewBox().enableAutoRange(enable=False)
    return plot


def _curves(plot: pg.PlotWidget) -> tuple[pg.PlotDataItem, pg.PlotDataItem]:
    """(valid, marked) items: the valid trace in the SpO2 colour; artifact/demo grey, dashed."""
    opts = {"connect": "finite", "antialias": False}
    valid = pg.PlotDataItem(pen=pg.mkPen(theme.colour(Vital.SPO2), width=1), **opts)
    marked = pg.PlotDataItem(
        pen=pg.mkPen(theme.GREYED, width=1, style=Qt.PenStyle.DashLine), **opts)
    plot.addItem(valid)
    plot.addItem(marked)
    return valid, marked


class PlethSweep(QFrame):
    """Live sweeping pleth; hidden until the device sends its first pleth block.

    GUI thread only: blocks come through the window's ``LiveFeed``. ``received`` counts samples
    taken, ``revealed`` those drawn so far (at most a couple of blocks behind, and equal to
    ``received`` once the frame timer has caught up); the sweep position is ``revealed``
    modulo the window's sample count.
    """

    def __init__(self, clock: Clock, *, wave: str = "pleth", window_s: float = WINDOW_S,
                 stale_after_s: float = STALE_S, frame_ms: int = FRAME_MS,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("tile")
        self._clock = clock
        self.wave = wave
        self.window_s = window_s
        self.stale_after_s = stale_after_s

        self._title = QLabel("Pleth")
        _set_colour(self._title, theme.colour(Vital.SPO2))
        self.status_label = QLabel("")
        _set_colour(self.status_label, theme.MUTED)
        header = QHBoxLayout()
        header.addWidget(self._title)
        header.addStretch(1)
        header.addWidget(self.status_label)
        self.plot = _trace_plot()
        self.plot.hideAxis("left")
        self.plot.hideAxis("bottom")
        self.plot.setXRange(0, window_s, padding=0)
        self._valid, self._marked = _curves(self.plot)
        self.message = QLabel(NO_SIGNAL)
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        _set_colour(self.message, theme.GREYED)
        self._stack = QStackedWidget()
        self._stack.addWidget(self.plot)
        self._stack.addWidget(self.message)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 6, 10, 6)
        layout.setSpacing(2)
        layout.addLayout(header)
        layout.addWidget(self._stack, 1)

        self._timer = QTimer(self)
        self._timer.setInterval(frame_ms)
        self._timer.timeout.connect(self.frame)
        self.reset()

    # -- state -------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget everything and hide (a new recording; its device may send no waveform)."""
        self._timer.stop()
        self.hide()
        self._last_block: float | None = None  # clock.monotonic() of the last block
        self._last_frame = 0.0
        self.stale = False
        self._marked_drawn = False
        self._configure(1.0)
        self.rate_hz = 0.0  # unknown until the first block
        self._stack.setCurrentWidget(self.plot)
        self.status_label.setText("")

    def _configure(self, rate_hz: float) -> None:
        """Size the rings for ``rate_hz``; the sweep starts again at the left."""
        self.rate_hz = rate_hz
        self.capacity = cap = max(2, round(self.window_s * rate_hz))
        self.erase = max(1, round(ERASE_S * rate_hz))
        self._x = np.arange(cap) / rate_hz
        # Samples received but maybe not yet revealed: room for two windows.
        self._in_y = np.full(2 * cap, math.nan)
        self._in_marked = np.zeros(2 * cap, bool)
        # What the sweep shows, one slot per x position: valid and marked samples apart.
        self._shown_valid = np.full(cap, math.nan)
        self._shown_marked = np.full(cap, math.nan)
        self.received = self._revealed = 0
        self._reveal_at = 0.0  # fractional reveal position the frames advance
        self._longest_block = 0
        self._y_range: tuple[float, float] | None = None

    @property
    def revealed(self) -> int:
        return self._revealed

    @property
    def position(self) -> int:
        """Index of the next sample the sweep will draw (the erase gap starts here)."""
        return self._revealed % self.capacity

    @property
    def message_text(self) -> str:
        """The message shown instead of a stale trace ("" while the trace is live)."""
        return NO_SIGNAL if self.stale else ""

    def _max_lag(self) -> int:
        return min(self.capacity, 2 * max(1, self._longest_block))

    # -- data in (GUI thread) ------------------------------------------------------------------
    def add_blocks(self, blocks: Sequence[object]) -> None:
        """Take blocks from the feed; shows the sweep on the first block of ``wave``."""
        mine = [b for b in blocks
                if isinstance(b, WaveformBlock) and b.wave == self.wave and b.samples]
        if not mine:
            return
        for block in mine:
            self._add(block)
        self._last_block = self._clock.monotonic()
        self._fit_y()
        marked = mine[-1].quality is not Quality.OK
        text = f"{theme.SYMBOL_ARTIFACT} {mine[-1].quality.value}" if marked else ""
        if self.status_label.text() != text:
            self.status_label.setText(text)
        if self.stale:
            self.stale = False
            self._stack.setCurrentWidget(self.plot)
        if self.isHidden():
            self.show()
        if not self._timer.isActive():
            self._last_frame = self._clock.monotonic()
            self._timer.start()

    def _add(self, block: WaveformBlock) -> None:
        if block.rate_hz != self.rate_hz:
            self._configure(block.rate_hz)
        n = len(block.samples)
        self._longest_block = max(self._longest_block, min(n, self.capacity))
        ring = self._in_y.size
        end = self.received + n
        # Never fall more than ``_max_lag`` behind; reveal what the new block would push out.
        if end - self._max_lag() > self._revealed:
            self._reveal_to(min(end - self._max_lag(), self.received))
        values = np.asarray(block.samples, dtype=np.float64)
        if n > ring:
            values = values[-ring:]
        slots = np.arange(end - values.size, end) % ring
        self._in_y[slots] = values
        self._in_marked[slots] = block.quality is not Quality.OK
        self.received = end
        if end - self._max_lag() > self._revealed:
            self._reveal_to(end - self._max_lag())

    def _reveal_to(self, upto: int) -> None:
        """Move samples ``[revealed, upto)`` from the input ring onto the sweep."""
        start = max(self._revealed, upto - self.capacity)
        if upto <= start:
            return
        index = np.arange(start, upto)
        src = index % self._in_y.size
        dst = index % self.capacity
        values, marked = self._in_y[src], self._in_marked[src]
        self._shown_valid[dst] = np.where(marked, math.nan, values)
        self._shown_marked[dst] = np.where(marked, values, math.nan)
        self._revealed = upto
        self._reveal_at = max(self._reveal_at, float(upto))

    def _fit_y(self) -> None:
        """Fit the y range to the last window of samples, only when it changed noticeably."""
        n = min(self.received, self.capacity)
        recent = self._in_y[np.arange(self.received - n, self.received) % self._in_y.size]
        lo, hi = float(recent.min()), float(recent.max())
        span = max(hi - lo, 1.0)
        if self._y_range is not None:
            cur_lo, cur_hi = self._y_range
            cur_span = cur_hi - cur_lo
            if cur_lo <= lo and hi <= cur_hi and span > 0.5 * cur_span:
                return
        self._y_range = (lo - 0.08 * span, hi + 0.08 * span)
        self.plot.setYRange(*self._y_range, padding=0)

    # -- frames ----------------------------------------------------------------------------------
    def frame(self) -> None:
        """Frame timer: reveal at the device's rate what has been received, then draw."""
        now = self._clock.monotonic()
        dt, self._last_frame = max(0.0, now - self._last_frame), now
        lag = self.received - self._reveal_at
        speed = self.rate_hz * (CATCH_UP if lag > 1.5 * self._longest_block else 1.0)
        self._reveal_at = min(float(self.received), self._reveal_at + speed * dt)
        before = self._revealed
        self._reveal_to(math.floor(self._reveal_at))
        if self._revealed != before:
            self._draw()

    def _draw(self) -> None:
        gap = (self._revealed + np.arange(self.erase)) % self.capacity
        valid = self._shown_valid.copy()
        valid[gap] = math.nan
        self._valid.setData(self._x, valid)
        marked = self._shown_marked.copy()
        marked[gap] = math.nan
        if self._marked_drawn or np.isfinite(marked).any():
            self._marked.setData(self._x, marked)
            self._marked_drawn = bool(np.isfinite(marked).any())

    def check_stale(self) -> None:
        """Called by the window's redraw timer: no block for ``stale_after_s`` -> say so."""
        if self.stale or self._last_block is None:
            return
        if self._clock.monotonic() - self._last_block > self.stale_after_s:
            self.stale = True
            self._timer.stop()
            self._reveal_to(self.received)  # the sweep goes on from here when data resume
            self._shown_valid.fill(math.nan)
            self._shown_marked.fill(math.nan)
            self._draw()
            self._stack.setCurrentWidget(self.message)
            self.status_label.setText("")

    def stop(self) -> None:
        """Stop the frame timer (the window is closing)."""
        self._timer.stop()

    # -- for tests ---------------------------------------------------------------------------
    def drawn_data(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """What the items were last given: (x seconds, valid y, marked y); NaN = nothing."""
        x, valid = self._valid.getOriginalDataset()
        _, marked = self._marked.getOriginalDataset()
        if x is None:
            empty = np.full(self.capacity, math.nan)
            return self._x, empty, empty
        return x, valid, (np.full(self.capacity, math.nan) if marked is None else marked)

    def marked_pen(self) -> object:
        return self._marked.opts["pen"]


class PlethStrip(QWidget):
    """Review: the recorded pleth around the cursor (±5 s); hidden when none was recorded."""

    def __init__(self, trace: WaveformTrace | None, *, half_s: float = STRIP_HALF_S,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.trace = trace if trace is not None else WaveformTrace.empty("pleth")
        self.half_s = half_s
        self.shown = WaveformTrace.empty(self.trace.wave)
        self.plot = _trace_plot()
        self.plot.setLabel("left", f'<span style="color:{theme.colour(Vital.SPO2)}">Pleth</span>')
        self.plot.getAxis("left").setWidth(64)  # as the trends': the plots line up
        self.plot.getAxis("left").setStyle(showValues=False)
        self.plot.setLabel("bottom", "seconds from the cursor")
        self.plot.setXRange(-half_s, half_s, padding=0)
        self.plot.addItem(pg.InfiniteLine(
            pos=0, angle=90, movable=False,
            pen=pg.mkPen(theme.AMBER, width=1, style=Qt.PenStyle.DashLine)))
        self._valid, self._marked = _curves(self.plot)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot)
        if not len(self.trace):
            self.hide()

    def show_at(self, t: datetime) -> None:
        """Show the samples within ``half_s`` of ``t`` (one call per cursor move)."""
        if not len(self.trace):
            return
        centre = to_us(t)
        half = to_us(t + timedelta(seconds=self.half_s)) - centre
        self.shown = window = self.trace.window(centre - half, centre + half)
        x = (window.t_us - centre) / 1e6
        y = window.samples.astype(np.float64)
        # A line may not bridge a gap in the recording: a NaN before each block that starts anew.
        cut = np.flatnonzero(window.breaks[1:]) + 1
        marked = np.insert(window.marked, cut, False)
        x, y = np.insert(x, cut, math.nan), np.insert(y, cut, math.nan)
        self._valid.setData(x, np.where(marked, math.nan, y))
        self._marked.setData(x, np.where(marked, y, math.nan))
        if len(window):  # fitted per window: a unit may switch between 8- and 16-bit pleth
            lo, hi = float(window.samples.min()), float(window.samples.max())
            pad = 0.08 * max(hi - lo, 1.0)
            self.plot.setYRange(lo - pad, hi + pad, padding=0)
