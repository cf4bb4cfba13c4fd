"""The trends' redraw gives new data only to the items of vitals that changed.

The soak benchmark (benchmarks/soak.py) found every 10 Hz redraw re-laying all thirteen plot
items (the NIBP symbols the dearest) whenever any one value had arrived.
"""

from __future__ import annotations

from collections import Counter

from pytestqt.qtbot import QtBot

from infusion_monitor.clock import ManualClock
from infusion_monitor.devices.base import DeviceEvent, DeviceEventKind
from infusion_monitor.ui.qt_trends import TREND_VITALS, TrendPanel
from infusion_monitor.vitals import Reading, Vital


def panel_with_history(qtbot: QtBot, clock: ManualClock) -> tuple[TrendPanel, Counter[Vital]]:
    """A panel with one of every vital drawn; the counter counts later ``setData`` per vital."""
    trends = TrendPanel(clock)
    qtbot.addWidget(trends)
    trends.start_session(clock.now())
    t = clock.now()
    trends.add_events([Reading(v, value, t_received=t) for v, value in (
        (Vital.HR, 72), (Vital.PR, 71), (Vital.SPO2, 98), (Vital.NIBP_SYS, 120),
        (Vital.NIBP_DIA, 80), (Vital.NIBP_MEAN, 93))])
    trends.redraw()
    drawn: Counter[Vital] = Counter()
    for vital in TREND_VITALS:
        trends._curves[vital].sigPlotChanged.connect(lambda *_, v=vital: drawn.update([v]))
    return trends, drawn


def test_an_hr_value_gives_new_data_to_the_hr_curve_only(qtbot: QtBot, clock: ManualClock) -> None:
    trends, drawn = panel_with_history(qtbot, clock)
    clock.advance(1)
    trends.add_events([Reading(Vital.HR, 90, t_received=clock.now())])
    trends.redraw()
    assert drawn == {Vital.HR: 1}
    assert trends.drawn_data(Vital.HR)[1].tolist() == [72, 90]
    trends.redraw()  # nothing new: nothing re-laid
    assert drawn == {Vital.HR: 1}


def test_an_nibp_measurement_redraws_its_three_series_and_its_bar(
        qtbot: QtBot, clock: ManualClock) -> None:
    trends, drawn = panel_with_history(qtbot, clock)
    clock.advance(300)
    t = clock.now()
    trends.add_events([Reading(Vital.NIBP_SYS, 150, t_received=t),
                       Reading(Vital.NIBP_DIA, 95, t_received=t),
                       Reading(Vital.NIBP_MEAN, 113, t_received=t)])
    trends.redraw()
    assert drawn == {Vital.NIBP_SYS: 1, Vital.NIBP_DIA: 1, Vital.NIBP_MEAN: 1}
    assert trends._bars.getOriginalDataset()[1].tolist() == [120, 80, 150, 95]


def test_a_lost_link_breaks_every_line_on_the_next_redraw(
        qtbot: QtBot, clock: ManualClock) -> None:
    trends, drawn = panel_with_history(qtbot, clock)
    trends.add_events([DeviceEvent(DeviceEventKind.LINK_DOWN, "cable")])
    trends.redraw()
    assert set(drawn) == set(TREND_VITALS)
    assert all(trends.drawn_data(v)[1].size == 2 for v in TREND_VITALS)  # value, then the gap
