"""Phase markers and alarm bands on the trend charts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pyqtgraph as pg
from pytestqt.qtbot import QtBot

from infusion_monitor.clock import ManualClock
from infusion_monitor.ui import qt_theme as theme
from infusion_monitor.ui.qt_trends import AlarmBands, Grid, TrendPanel

T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)


def items(plot: pg.PlotWidget, kind: type) -> list:
    return [i for i in plot.getPlotItem().items if isinstance(i, kind)]


def test_markers_are_drawn_on_every_plot_at_their_minute(qtbot: QtBot) -> None:
    clock = ManualClock(T0)
    panel = TrendPanel(clock)
    qtbot.addWidget(panel)
    panel.start_session(T0)
    panel.set_markers([
        (T0 + timedelta(minutes=5), "Infusion start", False),
        (T0 + timedelta(minutes=7), "Infusion end", True),
    ])
    for plot in panel.plots:
        lines = items(plot, pg.InfiniteLine)
        assert sorted(line.value() for line in lines) == [5.0, 7.0]
    labels = [line.label.toPlainText() for line in items(panel.hr_plot, pg.InfiniteLine)]
    assert sorted(labels) == ["Infusion end (undone)", "Infusion start"]
    # Replacing the markers removes the old lines.
    panel.set_markers([(T0 + timedelta(minutes=1), "Baseline", False)])
    assert [line.value() for line in items(panel.nibp_plot, pg.InfiniteLine)] == [1.0]


def test_alarm_bands_span_the_alarm_in_its_priority_colour(qtbot: QtBot) -> None:
    clock = ManualClock(T0)
    panel = TrendPanel(clock)
    qtbot.addWidget(panel)
    panel.start_session(T0)
    clock.advance(30 * 60)
    panel.set_alarm_bands([
        (T0 + timedelta(minutes=20), T0 + timedelta(minutes=21), "high"),
        (T0 + timedelta(minutes=25), None, "medium"),  # still active: runs to now
    ])
    for plot in panel.plots:
        (bands,) = items(plot, AlarmBands)
        spans = sorted((round(a, 3), round(b, 3), c.name()) for a, b, c in bands.spans)
        assert spans == [(20.0, 21.0, theme.PRIORITY_COLOURS["high"]),
                         (25.0, 30.0, theme.PRIORITY_COLOURS["medium"])]
    # Painted behind the curves, full height, in the priority colour: look at the pixels.
    panel.resize(800, 600)
    panel.show()
    qtbot.waitExposed(panel)
    panel.redraw()
    image = panel.spo2_plot.grab().toImage()
    vb = panel.spo2_plot.getPlotItem().getViewBox()

    def pixel(minute: float, value: float):
        point = panel.spo2_plot.mapFromScene(vb.mapViewToScene(pg.Point(minute, value)))
        return image.pixelColor(point.x(), point.y())

    def distance(a, b) -> int:
        return sum(abs(x - y) for x, y in zip(a.getRgb()[:3], b.getRgb()[:3], strict=True))

    background = pixel(12.5, 82.5)  # between grid lines
    for minute, priority in ((20.5, "high"), (27.0, "medium")):
        band = pg.mkColor(theme.PRIORITY_COLOURS[priority])
        for value in (81.5, 91.5, 99.5):  # full height, between grid lines
            inside = pixel(minute, value)
            # Translucent over the background: tinted towards the priority colour.
            assert distance(inside, band) < distance(background, band), (priority, value)
    panel.set_alarm_bands([])
    assert all(items(p, AlarmBands)[0].spans == [] for p in panel.plots)


def test_grid_lines_fall_on_the_major_ticks(qtbot: QtBot) -> None:
    clock = ManualClock(T0)
    panel = TrendPanel(clock)
    qtbot.addWidget(panel)
    panel.start_session(T0)
    panel.resize(800, 600)
    panel.show()
    qtbot.waitExposed(panel)
    panel.redraw()
    plot = panel.nibp_plot
    (grid,) = items(plot, Grid)
    vb = plot.getPlotItem().getViewBox()
    (x0, x1), (y0, y1) = vb.viewRange()
    xs = grid._major("bottom", x0, x1, vb.width())
    ys = grid._major("left", y0, y1, vb.height())
    assert xs and ys
    image = plot.grab().toImage()

    def pixel(x: float, y: float):
        point = plot.mapFromScene(vb.mapViewToScene(pg.Point(x, y)))
        return image.pixelColor(point.x(), point.y()).lightness()

    between_x = (xs[0] + xs[1]) / 2
    between_y = (ys[0] + ys[1]) / 2
    background = pixel(between_x, between_y)
    assert pixel(xs[1], between_y) > background  # a vertical line at a major x tick
    assert pixel(between_x, ys[1]) > background  # a horizontal line at a major y tick
