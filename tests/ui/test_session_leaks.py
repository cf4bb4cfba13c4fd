"""A day of back-to-back sessions in one window: nothing a session made may outlive it.

The soak benchmark (benchmarks/soak.py) found one ``LiveFeed`` left in the window per recording;
these tests count what the window holds after each Connect/Stop, as a nurse's day repeats it.
"""

from __future__ import annotations

from collections import Counter

from conftest import Harness
from PySide6.QtCore import QObject, QTimer
from pytestqt.qtbot import QtBot

from infusion_monitor.ui.qt_bridge import LiveFeed
from infusion_monitor.vitals import Reading, Vital

CYCLES = 5


def one_session(harness: Harness, qtbot: QtBot, hr: int) -> None:
    """Connect with the connection bar, receive a value, press Stop, let Qt finish up."""
    window = harness.window
    window.picker.set_selection("datex-s5", "/dev/ttyUSB0", 19200)
    window.picker.connect_button.click()
    assert window.recording is harness.recording
    harness.recording.deliver([Reading(Vital.HR, hr)])
    qtbot.waitUntil(lambda: window.tiles[Vital.HR].value_text == str(hr))
    window.picker.connect_button.click()  # ■ Stop
    assert window.recording is None and harness.recording.stopped
    qtbot.wait(50)  # the event loop runs (deferred deletions included), as between patients


def census(harness: Harness) -> Counter[str]:
    return Counter(type(o).__name__ for o in harness.window.findChildren(QObject))


def test_each_recording_leaves_no_feed_behind(harness: Harness, qtbot: QtBot) -> None:
    for n in range(CYCLES):
        one_session(harness, qtbot, 60 + n)
        assert harness.window.findChildren(LiveFeed) == [], f"after session {n + 1}"
    assert len(harness.recordings) == CYCLES


def test_the_window_holds_as_many_qobjects_and_timers_after_each_session(
        harness: Harness, qtbot: QtBot) -> None:
    counts, timers = [], []
    for n in range(CYCLES):
        one_session(harness, qtbot, 70 + n)
        counts.append(census(harness))
        timers.append(sum(t.isActive() for t in harness.window.findChildren(QTimer)))
    # The first session may build widgets once (lazily); after it, nothing may accumulate.
    for n, count in enumerate(counts[2:], start=3):
        assert count == counts[1], f"session {n} vs 2: +{count - counts[1]}, -{counts[1] - count}"
    assert timers[1:] == [timers[1]] * (CYCLES - 1)
