"""Screenshots of a mid-session window (kept in $INFUSION_MONITOR_SCREENSHOTS) and pixel probes."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from conftest import Harness
from PySide6.QtGui import QColor, QImage
from pytestqt.qtbot import QtBot

from infusion_monitor.devices.base import DeviceEvent, DeviceEventKind
from infusion_monitor.ui import qt_theme as theme
from infusion_monitor.ui.qt_numeric import TileState
from infusion_monitor.vitals import Quality, Reading, Vital


def play_session(h: Harness, minutes: int) -> None:
    """A plausible ketamine session: HR/BP rise, an artifact, a probe-off, NIBP every 5 min."""
    for t in range(0, minutes * 60, 5):
        h.clock.advance(5)
        effect = math.sin(min(1.0, t / 1500) * math.pi / 2)
        hr = 68 + 18 * effect + 2 * math.sin(t / 40)
        events: list[Reading | DeviceEvent] = [
            Reading(Vital.HR, 305 if t == 600 else hr),  # one artifact at 10 min
            Reading(Vital.PR, hr + 1),
        ]
        if 780 <= t < 840:  # a minute with the SpO2 probe off
            if t == 780:
                events.append(DeviceEvent(DeviceEventKind.PARAMETER_STATUS, "invalid",
                                          vital=Vital.SPO2))
        else:
            if t == 840:
                events.append(DeviceEvent(DeviceEventKind.PARAMETER_STATUS, "valid",
                                          vital=Vital.SPO2))
            spo2 = 88 if t == 1200 else 97 + round(math.sin(t / 90))  # 88: device-doubted
            quality = Quality.QUESTIONABLE if t == 1200 else Quality.OK
            events.append(Reading(Vital.SPO2, spo2, quality=quality))
        if t % 300 == 60:
            sys_, dia = 122 + 25 * effect, 78 + 12 * effect
            events += [Reading(Vital.NIBP_SYS, round(sys_)), Reading(Vital.NIBP_DIA, round(dia)),
                       Reading(Vital.NIBP_MEAN, round(dia + (sys_ - dia) / 3))]
        h.recording.deliver(events)


def count_colour(image: QImage, colour: str, tolerance: int = 40) -> int:
    """Pixels within ``tolerance`` (per channel) of ``colour``; probes, not golden images."""
    target = QColor(colour)
    hits = 0
    for y in range(0, image.height(), 2):
        for x in range(0, image.width(), 2):
            c = image.pixelColor(x, y)
            if (abs(c.red() - target.red()) <= tolerance
                    and abs(c.green() - target.green()) <= tolerance
                    and abs(c.blue() - target.blue()) <= tolerance):
                hits += 1
    return hits


@pytest.mark.parametrize("size", [(1366, 768), (1920, 1080)])
def test_mid_session_screenshot(
    live: Harness, qtbot: QtBot, size: tuple[int, int], shots_dir: Path
) -> None:
    w = live.window
    w.resize(*size)
    live.recording.set_state("connected", "receiving from /dev/ttyUSB0")
    play_session(live, 25)
    qtbot.waitUntil(lambda: len(w.trends.drawn_data(Vital.HR)[1]) >= 299)
    qtbot.waitUntil(lambda: w.tiles[Vital.SPO2].state is TileState.VALID)
    image = w.grab().toImage()
    assert (image.width(), image.height()) == size
    image.save(str(shots_dir / f"live-{size[0]}x{size[1]}.png"))
    hr_tile = w.tiles[Vital.HR].grab().toImage()
    assert count_colour(hr_tile, theme.colour(Vital.HR)) > 200  # the big green number
    # Mostly dark: the background must not glare in a dimmed room.
    assert count_colour(image, theme.BACKGROUND, 24) > 0.3 * image.width() * image.height() / 4


def test_a_stale_tile_loses_its_colour(live: Harness, qtbot: QtBot, shots_dir: Path) -> None:
    w = live.window
    live.recording.deliver([Reading(Vital.HR, 88)])
    tile = w.tiles[Vital.HR]
    qtbot.waitUntil(lambda: tile.state is TileState.VALID)
    valid = count_colour(tile.grab().toImage(), theme.colour(Vital.HR))
    assert valid > 200
    live.clock.advance(60)
    qtbot.waitUntil(lambda: tile.state is TileState.STALE)
    # Only the small "HR" title keeps the vital's colour.
    assert count_colour(tile.grab().toImage(), theme.colour(Vital.HR)) < valid / 10
    w.grab().save(str(shots_dir / "stale-1366x768.png"))
