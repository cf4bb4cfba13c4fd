"""Alarms in the window, fed as in production: recorder -> alarm monitor -> feed -> widgets."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import Harness
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from infusion_monitor.ui import qt_theme as theme
from infusion_monitor.ui.qt_alarm_bar import SECONDARY_TEXT
from infusion_monitor.ui.qt_audio import NO_DEVICE_TEXT
from infusion_monitor.ui.qt_main_window import BANNER
from infusion_monitor.vitals import Reading, Vital


def nibp(sys_: float, dia: float, mean: float) -> list[Reading]:
    return [Reading(Vital.NIBP_SYS, sys_), Reading(Vital.NIBP_DIA, dia),
            Reading(Vital.NIBP_MEAN, mean)]


def desaturate(h: Harness, qtbot: QtBot, value: float = 85, seconds: int = 12) -> None:
    """SpO2 ``value`` once a second for ``seconds`` (longer than the 10-s severe delay)."""
    for _ in range(seconds + 1):
        h.recording.deliver([Reading(Vital.SPO2, value), Reading(Vital.HR, 80)])
        h.clock.advance(1)
    h.recording.tick()


@pytest.fixture
def anna(live: Harness) -> Harness:
    live.window.user = "anna"
    return live


def test_a_severe_desaturation_flashes_bar_and_tile_and_latches(anna: Harness,
                                                               qtbot: QtBot) -> None:
    w = anna.window
    desaturate(anna, qtbot)
    qtbot.waitUntil(lambda: w.alarm_bar.text.startswith("*** SpO2 85 < 88"))
    assert w.alarm_bar.flash_hz == 2.0
    spo2 = w.tiles[Vital.SPO2]
    assert spo2.alarm_priority == "high" and spo2.alarm_flash_ms == 250
    assert w.tiles[Vital.HR].alarm_priority is None
    # The attending flag: any high physiological alarm.
    assert w.alarm_bar.attending_label.text().startswith("⚑ Notify attending — SpO2")
    # Back to normal: a latched high alarm stays until acknowledged.
    for _ in range(3):
        anna.recording.deliver([Reading(Vital.SPO2, 97)])
        anna.clock.advance(1)
    anna.recording.tick()
    qtbot.waitUntil(lambda: "ended — acknowledge to clear" in w.alarm_bar.text)
    qtbot.keyClick(w, Qt.Key.Key_F2)
    qtbot.waitUntil(lambda: w.alarm_bar.top is None)
    assert spo2.alarm_priority is None
    w.toggle_alarm_log()
    assert w.alarm_log.text_at(0, "Condition") == "SpO2 low, severe"
    assert w.alarm_log.text_at(0, "Acknowledged").startswith("anna ")


def test_f2_acknowledges_as_the_user_and_f3_pauses_audio(anna: Harness, qtbot: QtBot) -> None:
    w = anna.window
    anna.recording.deliver(nibp(184, 112, 136))
    qtbot.waitUntil(lambda: w.alarm_bar.top is not None)
    assert w.alarm_bar.text.startswith("** ") and "≥" in w.alarm_bar.text
    assert w.alarm_bar.more.text() == "+1 more"  # SBP and DBP
    nibp_tile = w.tiles[Vital.NIBP_SYS]
    assert nibp_tile.alarm_priority == "medium" and nibp_tile.alarm_flash_ms == 1000
    assert w.alarm_bar.flash_hz == 0.5
    assert w.alarm_sound.played == ["medium"]

    qtbot.keyClick(w, Qt.Key.Key_F2)
    qtbot.waitUntil(lambda: "(ack anna)" in w.alarm_bar.text)
    assert all(a.acknowledged_by == "anna" for a in w.alarm_bar.alarms)
    assert w.alarm_bar.flash_hz == 0 and nibp_tile.alarm_flash_ms == 0  # steady now
    assert w.alarm_sound.current is None

    qtbot.keyClick(w, Qt.Key.Key_F3)
    qtbot.waitUntil(lambda: w.alarm_bar.audio_label.text() == "❚❚ Audio paused 2:00")
    anna.clock.advance(17)
    qtbot.waitUntil(lambda: w.alarm_bar.audio_label.text() == "❚❚ Audio paused 1:43")
    anna.clock.advance(103)
    qtbot.waitUntil(lambda: w.alarm_bar.audio_label.text() == NO_DEVICE_TEXT)


@pytest.mark.parametrize("minutes", [1, 2, 3])
def test_pause_length_is_chosen_and_always_ends(anna: Harness, qtbot: QtBot,
                                                minutes: int) -> None:
    w = anna.window
    w.alarm_bar.pause_minutes.setCurrentIndex(minutes - 1)
    qtbot.keyClick(w, Qt.Key.Key_F3)
    qtbot.waitUntil(lambda: w.alarm_bar.audio_label.text() == f"❚❚ Audio paused {minutes}:00")
    anna.clock.advance(minutes * 60 - 1)
    qtbot.waitUntil(lambda: w.alarm_bar.audio_label.text() == "❚❚ Audio paused 0:01")
    anna.clock.advance(1)
    qtbot.waitUntil(lambda: w.alarm_bar.audio_label.text() == NO_DEVICE_TEXT)
    assert not w.alarm_sound.paused


def test_the_attending_flag_needs_an_attending(anna: Harness, qtbot: QtBot) -> None:
    w = anna.window
    anna.recording.deliver(nibp(184, 100, 128))  # SBP >= 180: medium, notify attending
    qtbot.waitUntil(lambda: not w.alarm_bar.attending_label.isHidden())
    assert w.alarm_bar.attending_label.text().startswith("⚑ Notify attending — NIBP sys 184 ≥ 180")
    qtbot.keyClick(w, Qt.Key.Key_F2)  # acknowledging the alarm leaves the flag up
    qtbot.waitUntil(lambda: "(ack anna)" in w.alarm_bar.text)
    assert not w.alarm_bar.attending_label.isHidden()
    qtbot.mouseClick(w.alarm_bar.attending_button, Qt.MouseButton.LeftButton)
    assert "only an attending" in w.alarm_bar.message.text()
    assert w.alarm_bar.message.isVisible()
    assert not w.alarm_bar.attending_label.isHidden()
    w.user, w.user_role = "dr lee", "attending"
    qtbot.mouseClick(w.alarm_bar.attending_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: w.alarm_bar.attending_label.isHidden())
    assert w.alarm_bar.message.text() == ""


def test_alarm_log_and_trend_bands(anna: Harness, qtbot: QtBot) -> None:
    w = anna.window
    anna.recording.deliver(nibp(184, 100, 128))
    qtbot.waitUntil(lambda: (None, "medium") in {(end, p) for _, end, p in w.trends.bands})
    assert not w.alarm_log.isVisible() and w.trends.isVisible()
    qtbot.mouseClick(w.alarm_bar.log_button, Qt.MouseButton.LeftButton)
    assert w.alarm_log.isVisible() and not w.trends.isVisible()
    assert w.alarm_bar.log_button.text() == "Trends"
    assert w.alarm_log.table.rowCount() == 2  # SBP high and the attending flag
    row = next(i for i in range(w.alarm_log.table.rowCount())
               if w.alarm_log.text_at(i, "Condition") == "SBP high")
    assert w.alarm_log.text_at(row, "Worst / limit") == "NIBP sys 184 ≥ 180"
    assert w.alarm_log.text_at(row, "Priority") == "** medium"
    assert w.alarm_log.text_at(row, "End") == "active"
    # A response note, typed into the log.
    w.alarm_log.select(w.alarm_log.rows[row].key)
    qtbot.keyClicks(w.alarm_log.note, "repeated NIBP: 176/104")
    qtbot.keyClick(w.alarm_log.note, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: "repeated NIBP: 176/104" in [
        w.alarm_log.text_at(i, "Response") for i in range(w.alarm_log.table.rowCount())])
    # The next NIBP is normal: the medium alarm ends by itself; its band closes.
    anna.clock.advance(300)
    anna.recording.deliver(nibp(150, 90, 110))
    qtbot.waitUntil(lambda: w.alarm_bar.top is None)
    qtbot.waitUntil(lambda: all(end is not None for _, end, _ in w.trends.bands))
    qtbot.mouseClick(w.alarm_bar.log_button, Qt.MouseButton.LeftButton)
    assert w.trends.isVisible()


def test_window_and_bar_say_this_is_a_secondary_alarm_display(harness: Harness) -> None:
    w = harness.window
    assert "primary" in BANNER
    assert SECONDARY_TEXT in w.alarm_bar.secondary.text()
    assert w.alarm_bar.secondary.isVisible()
    assert w.alarm_bar.audio_label.text() == NO_DEVICE_TEXT  # no sound server here
    assert w.alarm_bar.audio_label.isVisible()


def test_screenshot_with_an_active_high_alarm(anna: Harness, qtbot: QtBot,
                                              shots_dir: Path) -> None:
    w = anna.window
    anna.recording.set_state("connected", "receiving from /dev/ttyUSB0")
    anna.recording.deliver(nibp(202, 121, 148))
    desaturate(anna, qtbot)
    qtbot.waitUntil(lambda: w.alarm_bar.text.startswith("*** "))
    qtbot.waitUntil(lambda: w.alarm_bar.flash_on and w.tiles[Vital.SPO2].alarm_lit)
    image = w.grab().toImage()
    assert (image.width(), image.height()) == (1366, 768)
    image.save(str(shots_dir / "alarm-high-1366x768.png"))
    bar = w.alarm_bar.grab().toImage()
    assert bar.pixelColor(3, 3).name() == theme.PRIORITY_COLOURS["high"]
    qtbot.waitUntil(lambda: not w.alarm_bar.flash_on)
    w.grab().save(str(shots_dir / "alarm-high-dark-phase-1366x768.png"))
    w.toggle_alarm_log()
    qtbot.waitUntil(lambda: w.alarm_log.isVisible())
    w.grab().save(str(shots_dir / "alarm-log-1366x768.png"))


def test_there_is_no_permanent_mute(anna: Harness, qtbot: QtBot) -> None:
    w = anna.window
    assert [w.alarm_bar.pause_minutes.itemData(i)
            for i in range(w.alarm_bar.pause_minutes.count())] == [1, 2, 3]
    assert not w.alarms.pause(60)
    assert "1, 2 or 3 minutes" in w.alarm_bar.message.text()
    assert w.alarm_bar.audio_label.text() == NO_DEVICE_TEXT


def test_a_new_high_alarm_ends_the_pause(anna: Harness, qtbot: QtBot) -> None:
    w = anna.window
    anna.recording.deliver(nibp(184, 100, 128))
    qtbot.keyClick(w, Qt.Key.Key_F3)
    qtbot.waitUntil(lambda: w.alarm_bar.audio_label.text().startswith("❚❚ Audio paused"))
    anna.recording.deliver(nibp(205, 100, 135))
    qtbot.waitUntil(lambda: w.alarm_bar.audio_label.text() == NO_DEVICE_TEXT)
    assert w.alarm_sound.current == "high"
