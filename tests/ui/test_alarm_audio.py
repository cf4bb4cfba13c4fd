"""Alarm sound: what sounds and repeats, the pause countdown, and the no-device state."""

from __future__ import annotations

import sys

import pytest
from PySide6.QtCore import QObject
from pytestqt.qtbot import QtBot

from infusion_monitor.clock import ManualClock
from infusion_monitor.ui.qt_audio import NO_DEVICE_TEXT, AlarmSound, format_countdown


class FakePlayer:
    def __init__(self, parent: QObject) -> None:
        self.played: list[str] = []
        self.stops = 0

    def play(self, priority: str) -> None:
        self.played.append(priority)

    def stop(self) -> None:
        self.stops += 1


def sound_with_device(clock: ManualClock) -> tuple[AlarmSound, FakePlayer]:
    players: list[FakePlayer] = []

    def make(parent: QObject) -> FakePlayer:
        players.append(FakePlayer(parent))
        return players[-1]

    sound = AlarmSound(outputs=lambda: ["Speakers"], make_player=make)
    return sound, players[0]


def test_without_an_output_nothing_can_sound_and_it_says_so(qtbot: QtBot,
                                                           clock: ManualClock) -> None:
    sound = AlarmSound(outputs=list)
    assert not sound.available
    assert sound.device_text() == NO_DEVICE_TEXT
    sound.update([("a", "high")])  # the logic still runs: the bar shows what would sound
    assert sound.played == ["high"]
    sound.close()


def test_the_real_backend_reports_no_device_here(qtbot: QtBot, clock: ManualClock) -> None:
    """Tests and CI have no sound server: Qt lists no outputs, and the state is plain."""
    sound = AlarmSound()
    assert sound.devices == [] and not sound.available
    sound.close()


def test_a_machine_where_qtmultimedia_cannot_load_has_no_device_not_a_crash(
        qtbot: QtBot, clock: ManualClock, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """Without libpulse (a bare desktop install) importing QtMultimedia raises ImportError;
    the window must still open and say there is no audio device."""
    monkeypatch.setitem(sys.modules, "PySide6.QtMultimedia", None)  # import -> ImportError
    sound = AlarmSound()
    assert not sound.available and sound.device_text() == NO_DEVICE_TEXT
    assert "QtMultimedia cannot load" in caplog.text
    sound.close()


def test_the_most_urgent_unacknowledged_alarm_sounds_and_repeats(qtbot: QtBot,
                                                                clock: ManualClock) -> None:
    sound, player = sound_with_device(clock)
    sound.update([("m", "medium")])
    assert player.played == ["medium"] and sound.repeat_interval_ms == 25_000
    sound.update([("m", "medium"), ("h", "high")])
    assert player.played == ["medium", "high"] and sound.repeat_interval_ms == 10_000
    sound.update([("m", "medium"), ("h", "high")])  # nothing new: no extra burst
    assert player.played == ["medium", "high"]
    sound._repeat.timeout.emit()  # the 10-s repeat
    assert player.played == ["medium", "high", "high"]
    sound.update([("m", "medium")])  # high acknowledged: medium takes over
    assert player.played[-1] == "medium" and sound.repeat_interval_ms == 25_000
    sound.update([])
    assert sound.current is None and sound.repeat_interval_ms is None
    sound.close()


def test_low_sounds_once_and_technical_uses_the_medium_pattern(qtbot: QtBot,
                                                              clock: ManualClock) -> None:
    sound, player = sound_with_device(clock)
    sound.update([("l", "low")])
    assert player.played == ["low"] and sound.repeat_interval_ms is None
    sound.update([("l", "low")])
    assert player.played == ["low"]
    sound.update([("l", "low"), ("t", "technical")])
    assert player.played == ["low", "medium"]
    sound.close()


def test_tones_stop_while_the_engine_pauses_audio_and_resume_after(
    qtbot: QtBot, clock: ManualClock
) -> None:
    sound, player = sound_with_device(clock)
    sound.update([("m", "medium")])
    sound.set_pause_remaining(120)
    assert sound.paused and sound.current is None
    assert sound.pause_text() == "❚❚ Audio paused 2:00"
    sound.set_pause_remaining(103)
    assert sound.pause_text() == "❚❚ Audio paused 1:43"
    sound._repeat.timeout.emit()
    sound.update([("m", "medium"), ("l", "low")])
    assert player.played == ["medium"]  # silent while paused
    sound.set_pause_remaining(0)
    assert not sound.paused and sound.pause_text() == ""
    assert player.played == ["medium", "medium"]  # sounds again at once
    sound.close()


def test_countdown_format() -> None:
    assert format_countdown(103) == "1:43"
    assert format_countdown(0.2) == "0:01"
    assert format_countdown(120) == "2:00"
