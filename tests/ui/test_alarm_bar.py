"""The alarm bar, tile flashing and the alarm log table, on their own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from infusion_monitor.clock import ManualClock
from infusion_monitor.ui import qt_theme as theme
from infusion_monitor.ui.qt_alarm_bar import NO_ALARMS_TEXT, SECONDARY_TEXT, AlarmBar, AlarmView
from infusion_monitor.ui.qt_alarm_log import AlarmLogRow, AlarmLogView
from infusion_monitor.ui.qt_numeric import NibpTile, NumericTile
from infusion_monitor.vitals import Vital

T0 = datetime(2026, 1, 1, 9, 0, tzinfo=UTC)


def view(key: str, priority: str, text: str, minute: float = 0, **kw: object) -> AlarmView:
    return AlarmView(key, priority, text, T0 + timedelta(minutes=minute), **kw)  # type: ignore[arg-type]


@pytest.fixture
def bar(qtbot: QtBot) -> AlarmBar:
    widget = AlarmBar()
    qtbot.addWidget(widget)
    return widget


def test_quiet_bar_says_no_alarms_and_that_it_is_secondary(bar: AlarmBar) -> None:
    bar.set_alarms([], T0)
    assert bar.text == NO_ALARMS_TEXT
    assert bar.flash_hz == 0
    assert SECONDARY_TEXT in bar.secondary.text()
    assert not bar.ack_button.isEnabled()


@pytest.mark.parametrize(("priority", "symbol", "hz"), [
    ("high", "***", 2.0), ("medium", "**", 0.5), ("low", "*", 0.0),
])
def test_priority_shows_by_symbol_colour_and_flash_rate(
    bar: AlarmBar, qtbot: QtBot, priority: str, symbol: str, hz: float
) -> None:
    bar.set_alarms([view("a", priority, "SpO2 87 < 88")], T0 + timedelta(seconds=42))
    assert bar.text.startswith(f"{symbol} SpO2 87 < 88 · since ")
    assert bar.text.endswith(", 42 s")
    assert bar.flash_hz == hz
    assert bar.background() == theme.PRIORITY_COLOURS[priority]
    if hz:  # it goes dark and comes back: a real flash
        qtbot.waitUntil(lambda: bar.background() == theme.PANEL, timeout=3000)
        qtbot.waitUntil(lambda: bar.background() != theme.PANEL, timeout=3000)
    assert 1.4 <= hz <= 2.8 if priority == "high" else True
    assert 0.4 <= hz <= 0.8 if priority == "medium" else True


def test_most_urgent_first_and_a_count_of_the_others(bar: AlarmBar) -> None:
    bar.set_alarms([
        view("m", "medium", "SpO2 90 < 92", 1),
        view("h", "high", "SBP 202 ≥ 200", 2),
        view("l", "low", "NIBP overdue", 3),
    ], T0 + timedelta(minutes=3))
    assert bar.text.startswith("*** SBP 202 ≥ 200")
    assert bar.more.text() == "+2 more"
    assert [a.key for a in bar.alarms] == ["h", "m", "l"]


def test_technical_alarms_are_cyan_and_acknowledged_ones_stop_flashing(bar: AlarmBar) -> None:
    bar.set_alarms([view("t", "medium", "Monitor link lost", technical=True)], T0)
    assert bar.text.startswith("** TECHNICAL: Monitor link lost")
    assert bar.background() == theme.PRIORITY_COLOURS["technical"]
    bar.set_alarms([view("h", "high", "SpO2 85 < 88", acknowledged_by="anna",
                         acknowledged_at=T0)], T0)
    assert bar.flash_hz == 0 and "(ack anna)" in bar.text
    assert bar.background() == theme.PANEL  # steady, drawn in its colour on the dark ground
    assert not bar.ack_button.isEnabled()


def test_buttons_emit_requests_with_the_chosen_pause(bar: AlarmBar, qtbot: QtBot) -> None:
    bar.set_alarms([view("h", "high", "SpO2 85 < 88")], T0)
    with qtbot.waitSignal(bar.acknowledge_requested):
        qtbot.mouseClick(bar.ack_button, Qt.MouseButton.LeftButton)
    for minutes in (1, 3, 2):
        bar.pause_minutes.setCurrentIndex(minutes - 1)
        assert bar.pause_button.text() == f"Pause audio {minutes} min (F3)"
        with qtbot.waitSignal(bar.pause_requested) as blocker:
            qtbot.mouseClick(bar.pause_button, Qt.MouseButton.LeftButton)
        assert blocker.args == [minutes]


def test_attending_flag_shows_with_its_reason(bar: AlarmBar) -> None:
    bar.set_attending_flag("SBP 184 ≥ 180 at 09:36")
    assert bar.attending_label.text() == "⚑ Notify attending — SBP 184 ≥ 180 at 09:36"
    assert not bar.attending_label.isHidden() and not bar.attending_button.isHidden()
    bar.set_attending_flag("")
    assert bar.attending_label.isHidden()


@pytest.mark.parametrize("tile_kind", ["numeric", "nibp"])
def test_tiles_flash_at_the_priority_rate(qtbot: QtBot, tile_kind: str) -> None:
    clock = ManualClock(T0)
    tile = NumericTile(Vital.SPO2, clock) if tile_kind == "numeric" else NibpTile(clock)
    qtbot.addWidget(tile)
    assert tile.alarm_priority is None and tile.alarm_flash_ms == 0
    tile.set_alarm("high")
    assert tile.alarm_flash_ms == 250 and tile.alarm_lit
    qtbot.waitUntil(lambda: not tile.alarm_lit, timeout=2000)
    tile.set_alarm("medium")
    assert tile.alarm_flash_ms == 1000
    tile.set_alarm("low")
    assert tile.alarm_flash_ms == 0 and tile.alarm_lit  # steady
    tile.set_alarm("high", acknowledged=True)
    assert tile.alarm_flash_ms == 0 and tile.alarm_lit
    tile.set_alarm(None)
    assert not tile.alarm_lit and tile.alarm_flash_ms == 0


def test_a_lit_tile_is_framed_in_the_priority_colour(qtbot: QtBot) -> None:
    tile = NumericTile(Vital.SPO2, ManualClock(T0))
    qtbot.addWidget(tile)
    tile.resize(300, 200)
    tile.set_alarm("high", acknowledged=True)
    image = tile.grab().toImage()
    assert image.pixelColor(4, 100).name() == theme.PRIORITY_COLOURS["high"]
    tile.set_alarm(None)
    assert tile.grab().toImage().pixelColor(4, 100).name() != theme.PRIORITY_COLOURS["high"]


def test_alarm_log_rows_and_a_response_note(qtbot: QtBot) -> None:
    log = AlarmLogView()
    qtbot.addWidget(log)
    log.set_rows([
        AlarmLogRow("a", T0, T0 + timedelta(seconds=40), "SpO2 low", "medium", "SpO2 89 < 92"),
        AlarmLogRow("b", T0 + timedelta(minutes=10), None, "SBP high, severe", "high",
                    "SBP 202 ≥ 200", latched=True, acknowledged_by="anna",
                    acknowledged_at=T0 + timedelta(minutes=11), responses=("called attending",)),
    ])
    assert log.table.rowCount() == 2
    assert log.text_at(0, "Condition") == "SBP high, severe"  # newest first
    assert log.text_at(0, "End") == "active"
    assert log.text_at(0, "Priority") == "*** high"
    assert log.text_at(0, "Latched") == "yes"
    assert log.text_at(0, "Acknowledged").startswith("anna ")
    assert log.text_at(0, "Response") == "called attending"
    assert log.text_at(1, "Worst / limit") == "SpO2 89 < 92"
    # No selection: the note is refused with a visible reason.
    log.note.setText("repeated NIBP: 176/104")
    log.add_button.click()
    assert log.feedback.text() == "Select an alarm in the table first."
    log.select("a")
    with qtbot.waitSignal(log.response_added) as blocker:
        qtbot.keyClick(log.note, Qt.Key.Key_Return)
    assert blocker.args == ["a", "repeated NIBP: 176/104"]
    assert log.note.text() == ""
