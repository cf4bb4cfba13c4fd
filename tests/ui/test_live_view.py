"""The live view fed as in production: events pushed from a worker thread through the recorder."""

from __future__ import annotations

import re
import threading

import numpy as np
import pytest
from conftest import Harness, run_in_thread
from PySide6.QtCore import QObject, Slot
from pytestqt.qtbot import QtBot

from infusion_monitor.devices.base import DeviceEvent, DeviceEventKind
from infusion_monitor.devices.link import LinkState
from infusion_monitor.errors import DeviceConnectionError, StoreError
from infusion_monitor.ui import qt_theme as theme
from infusion_monitor.ui.qt_bridge import LiveFeed
from infusion_monitor.ui.qt_numeric import TileState, local_hms
from infusion_monitor.ui.qt_status import LINK_LOOK
from infusion_monitor.vitals import Quality, Reading, Vital


def nibp(sys_: float, dia: float, mean: float) -> list[Reading]:
    return [Reading(Vital.NIBP_SYS, sys_), Reading(Vital.NIBP_DIA, dia),
            Reading(Vital.NIBP_MEAN, mean)]


class Collector(QObject):
    """Records what arrives and on which thread."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[object]] = []
        self.threads: set[str] = set()

    @Slot(object)
    def take(self, events: list[object]) -> None:
        self.batches.append(events)
        self.threads.add(threading.current_thread().name)


def test_feed_delivers_on_the_gui_thread(qtbot: QtBot) -> None:
    feed, collector = LiveFeed(), Collector()
    feed.events.connect(collector.take)
    with qtbot.waitSignal(feed.events, timeout=2000):
        run_in_thread(feed.push_events, (Reading(Vital.HR, 70),))
    qtbot.waitUntil(lambda: len(collector.batches) == 1)
    assert collector.threads == {threading.main_thread().name}
    assert collector.batches[0] == [Reading(Vital.HR, 70)]


def test_tiles_show_the_last_values(live: Harness, qtbot: QtBot) -> None:
    w, rec = live.window, live.recording
    rec.deliver([Reading(Vital.HR, 72), Reading(Vital.PR, 71), Reading(Vital.SPO2, 97.4)])
    rec.deliver([Reading(Vital.HR, 75.5), *nibp(121, 79, 93)])
    qtbot.waitUntil(lambda: w.tiles[Vital.HR].value_text == "76")
    assert w.tiles[Vital.PR].value_text == "71"
    assert w.tiles[Vital.SPO2].value_text == "97"
    assert w.tiles[Vital.NIBP_SYS].value_text == "121/79"
    assert w.tiles[Vital.NIBP_SYS].mean_text == "(93)"
    for vital, tile in w.tiles.items():
        assert tile.state is TileState.VALID
        assert tile.value_colour() == theme.colour(vital)
    assert w.tiles[Vital.HR].status_text == "0 s ago"


def test_trends_hold_exactly_the_points_received(live: Harness, qtbot: QtBot) -> None:
    w, rec, clock = live.window, live.recording, live.clock
    hr = [70, 72, 74, 73, 90]
    for value in hr:
        clock.advance(5)
        rec.deliver([Reading(Vital.HR, value), Reading(Vital.SPO2, 98)])
    rec.deliver(nibp(130, 85, 100))
    qtbot.waitUntil(lambda: len(w.trends.curve_data(Vital.HR)[1]) == len(hr))
    xs, ys = w.trends.curve_data(Vital.HR)
    assert ys.tolist() == hr
    assert xs.tolist() == [5, 10, 15, 20, 25]
    assert len(w.trends.curve_data(Vital.SPO2)[1]) == len(hr)
    assert w.trends.curve_data(Vital.PR)[1].size == 0
    assert w.trends.curve_data(Vital.NIBP_DIA)[1].tolist() == [85]
    # ...and the redraw timer hands them to the plot item, in minutes.
    qtbot.waitUntil(lambda: len(w.trends.drawn_data(Vital.HR)[1]) == len(hr))
    drawn_x, drawn_y = w.trends.drawn_data(Vital.HR)
    assert np.allclose(drawn_x, np.array([5, 10, 15, 20, 25]) / 60)
    assert drawn_y.tolist() == hr


def test_a_silence_is_drawn_as_a_gap(live: Harness, qtbot: QtBot) -> None:
    w, rec, clock = live.window, live.recording, live.clock
    rec.deliver([Reading(Vital.HR, 70)])
    clock.advance(120)  # longer than any sending interval: the line must not bridge it
    rec.deliver([Reading(Vital.HR, 71)])
    qtbot.waitUntil(lambda: len(w.trends.drawn_data(Vital.HR)[1]) == 3)
    assert np.isnan(w.trends.drawn_data(Vital.HR)[1][1])
    assert w.trends.curve_data(Vital.HR)[1].tolist() == [70, 71]


def test_a_stale_value_is_greyed_and_marked(live: Harness, qtbot: QtBot) -> None:
    w, rec, clock = live.window, live.recording, live.clock
    rec.deliver([Reading(Vital.HR, 72), *nibp(120, 80, 93)])
    hr = w.tiles[Vital.HR]
    qtbot.waitUntil(lambda: hr.state is TileState.VALID)
    clock.advance(14)
    qtbot.waitUntil(lambda: hr.status_text == "14 s ago")
    assert hr.state is TileState.VALID
    clock.advance(9)  # 23 s > 15 s
    qtbot.waitUntil(lambda: hr.state is TileState.STALE)
    assert hr.status_text == "⚠ STALE 23 s"
    assert hr.value_colour() == theme.GREYED != theme.colour(Vital.HR)
    assert hr.value_text == "72"  # kept for orientation, but greyed and marked
    nibp_tile = w.tiles[Vital.NIBP_SYS]
    assert nibp_tile.state is TileState.VALID  # NIBP is stale only after 20 min
    clock.advance(20 * 60)
    qtbot.waitUntil(lambda: nibp_tile.state is TileState.STALE)
    assert "⚠ STALE" in nibp_tile.status_text
    assert nibp_tile.value_colour() == theme.GREYED
    # A fresh value makes it current again.
    rec.deliver([Reading(Vital.HR, 80)])
    qtbot.waitUntil(lambda: hr.state is TileState.VALID and hr.value_text == "80")
    assert hr.value_colour() == theme.colour(Vital.HR)


def test_an_artifact_is_never_shown_as_valid(live: Harness, qtbot: QtBot) -> None:
    w, rec, clock = live.window, live.recording, live.clock
    rec.deliver([Reading(Vital.HR, 72)])
    clock.advance(5)
    rec.deliver([Reading(Vital.HR, 400)])  # above the possible range: the recorder marks it
    hr = w.tiles[Vital.HR]
    qtbot.waitUntil(lambda: hr.state is TileState.MARKED)
    assert hr.value_text == "400?"
    assert "? ARTIFACT" in hr.status_text
    assert hr.value_colour() == theme.GREYED
    assert w.trends.curve_data(Vital.HR)[1].tolist() == [72]
    assert w.trends.artifact_data(Vital.HR)[1].tolist() == [400]
    rec.deliver([Reading(Vital.SPO2, 96, quality=Quality.QUESTIONABLE)])
    qtbot.waitUntil(lambda: "QUESTIONABLE" in w.tiles[Vital.SPO2].status_text)
    assert w.tiles[Vital.SPO2].state is TileState.MARKED


def test_an_invalid_parameter_shows_no_number(live: Harness, qtbot: QtBot) -> None:
    w, rec, clock = live.window, live.recording, live.clock
    spo2 = w.tiles[Vital.SPO2]
    rec.deliver([Reading(Vital.SPO2, 97)])
    qtbot.waitUntil(lambda: spo2.value_text == "97")
    rec.deliver([DeviceEvent(DeviceEventKind.PARAMETER_STATUS, "invalid", vital=Vital.SPO2)])
    qtbot.waitUntil(lambda: spo2.state is TileState.INVALID)
    assert not re.search(r"\d", spo2.value_text)
    assert spo2.value is None
    assert spo2.status_text == "⊘ NO VALUE — invalid"
    clock.advance(30)  # no stale marker either: there is no value to go stale
    rec.deliver([DeviceEvent(DeviceEventKind.PARAMETER_STATUS, "valid", vital=Vital.SPO2)])
    qtbot.waitUntil(lambda: spo2.state is TileState.WAITING)
    assert not re.search(r"\d", spo2.value_text)  # the old 97 does not come back
    rec.deliver([Reading(Vital.SPO2, 95)])
    qtbot.waitUntil(lambda: spo2.value_text == "95")
    assert w.tiles[Vital.HR].state is TileState.WAITING  # other tiles untouched


def test_nibp_shows_when_it_was_measured(live: Harness, qtbot: QtBot) -> None:
    w, rec, clock = live.window, live.recording, live.clock
    clock.advance(125)
    measured = local_hms(clock.now())
    rec.deliver(nibp(118, 76, 90))
    tile = w.tiles[Vital.NIBP_SYS]
    qtbot.waitUntil(lambda: tile.value_text == "118/76")
    assert tile.status_text == f"measured {measured}, 0 s ago"
    clock.advance(180)
    qtbot.waitUntil(lambda: tile.status_text == f"measured {measured}, 3 min ago")
    assert tile.values == {Vital.NIBP_SYS: 118, Vital.NIBP_DIA: 76, Vital.NIBP_MEAN: 90}


@pytest.mark.parametrize("state", list(LinkState))
def test_device_status_shows_each_link_state(live: Harness, qtbot: QtBot,
                                             state: LinkState) -> None:
    status = live.window.device_status
    other = LinkState.CONNECTING if state is not LinkState.CONNECTING else LinkState.CONNECTED
    live.recording.set_state(other, "")
    qtbot.waitUntil(lambda: status.state is other)
    live.recording.set_state(state, "detail for the tooltip")
    qtbot.waitUntil(lambda: status.state is state)
    text, colour = LINK_LOOK[state]
    assert status.text() == text
    assert not text[0].isalnum()  # a symbol as well as the word
    assert status.colour() == colour
    assert status.toolTip() == "detail for the tooltip"


def test_a_factory_error_shows_in_the_banner(harness: Harness, qtbot: QtBot) -> None:
    w = harness.window

    def broken(*args: object, **kwargs: object) -> None:
        raise DeviceConnectionError("cannot open /dev/ttyUSB9: no such device")

    w._start_recording = broken
    assert not w.connect_to("datex-s5", "/dev/ttyUSB9", 19200)
    assert "cannot open /dev/ttyUSB9" in w.error_text()
    assert w.error_banner.isVisible()
    assert w.recording is None
    assert w.picker.connect_button.text() == "▶ Connect"


def test_store_errors_from_the_writer_thread_show_and_clear(live: Harness, qtbot: QtBot) -> None:
    w, rec = live.window, live.recording
    run_in_thread(rec.on_store_error, StoreError("database is locked"))
    qtbot.waitUntil(lambda: "database is locked" in w.error_text())
    run_in_thread(rec.on_store_recovered)
    qtbot.waitUntil(lambda: w.error_text() == "")
    assert not w.error_banner.isVisible()


def test_stop_and_close_stop_the_recording(live: Harness, qtbot: QtBot) -> None:
    w, rec = live.window, live.recording
    assert rec.started and w.picker.connect_button.text() == "■ Stop"
    w.picker.connect_button.click()
    assert rec.stopped and w.recording is None
    assert w.device_status.state is LinkState.STOPPED
    w.picker.connect_button.click()  # connect again: a new session, a clean screen
    assert len(live.recordings) == 2
    live.recording.deliver([Reading(Vital.HR, 66)])
    qtbot.waitUntil(lambda: w.tiles[Vital.HR].value_text == "66")
    w.close()
    assert live.recording.stopped
    assert not w._timer.isActive()


def test_numerics_are_big_enough_to_read_across_the_room(live: Harness, qtbot: QtBot) -> None:
    w = live.window
    live.recording.deliver([Reading(Vital.HR, 188), *nibp(188, 118, 141)])
    qtbot.waitUntil(lambda: w.tiles[Vital.HR].value_text == "188")
    sizes = {v: t.value_label.font().pixelSize() for v, t in w.tiles.items()}
    assert min(sizes.values()) >= 48, sizes
    w.resize(1920, 1080)
    qtbot.waitUntil(lambda: w.tiles[Vital.HR].value_label.font().pixelSize() > sizes[Vital.HR])
    for tile in w.tiles.values():  # the text fits its box
        metrics = tile.value_label.fontMetrics()
        assert metrics.horizontalAdvance(tile.value_text) <= tile.value_label.width()


def test_an_oximeter_alone_says_which_tiles_it_cannot_fill(harness: Harness,
                                                           qtbot: QtBot) -> None:
    window = harness.window
    assert window.connect_to("nonin", "/dev/ttyUSB0", 9600)
    tiles = window.tiles
    for vital in (Vital.HR, Vital.NIBP_SYS):
        assert tiles[vital].state is TileState.WAITING
        assert tiles[vital].status_label.text() == "not sent by this monitor"
    for vital in (Vital.PR, Vital.SPO2):
        assert tiles[vital].status_label.text() == "waiting for first value"
    harness.recordings[-1].deliver([Reading(Vital.PR, 71), Reading(Vital.SPO2, 97)])
    qtbot.waitUntil(lambda: tiles[Vital.PR].value_label.text() == "71")
    assert tiles[Vital.HR].status_label.text() == "not sent by this monitor"
    window.stop_recording()
    # A monitor that sends everything: every tile waits for its value again.
    assert window.connect_to("datex-s5", "/dev/ttyUSB0", 19200)
    assert {t.status_label.text() for t in tiles.values()} == {"waiting for first value"}
