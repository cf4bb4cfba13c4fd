"""The pleth: a sweep fed through the real recorder and bridge, and the strip in review."""

from __future__ import annotations

import math
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
from conftest import Harness, run_in_thread
from PySide6.QtCore import QObject, Qt, Slot
from pytestqt.qtbot import QtBot

from infusion_monitor.clock import ManualClock, to_us
from infusion_monitor.devices.base import WaveformBlock
from infusion_monitor.export.record import load_session_record
from infusion_monitor.store import Database
from infusion_monitor.ui import qt_theme as theme
from infusion_monitor.ui.qt_bridge import LiveFeed
from infusion_monitor.ui.qt_pleth import NO_SIGNAL
from infusion_monitor.ui.qt_review import ReviewWindow
from infusion_monitor.vitals import Quality, Reading, Vital

RATE = 75.0
N = 25


def samples_of(i: int) -> tuple[int, ...]:
    """Block ``i`` of a 0-255 pleth: every sample distinct enough to catch a misplaced one."""
    k = np.arange(i * N, (i + 1) * N)
    return tuple(int(v) for v in 128 + np.rint(100 * np.sin(2 * math.pi * k / 61)) + k % 7)


def block(i: int, quality: Quality = Quality.OK) -> WaveformBlock:
    return WaveformBlock("pleth", RATE, samples_of(i), quality=quality)


def all_samples(n_blocks: int) -> np.ndarray:
    return np.concatenate([samples_of(i) for i in range(n_blocks)]).astype(float)


def caught_up(harness: Harness, qtbot: QtBot, total: int) -> None:
    """Wait for ``total`` samples to arrive, move the clock on and let the sweep reveal them."""
    sweep = harness.window.pleth
    qtbot.waitUntil(lambda: sweep.received == total)
    harness.clock.advance(1.0)  # < the 2 s staleness; > the ~0.7 s a burst needs to reveal
    qtbot.waitUntil(lambda: sweep.revealed == total)


class Collector(QObject):
    def __init__(self) -> None:
        super().__init__()
        self.got: list[tuple[str, list[object], str]] = []

    @Slot(object)
    def values(self, events: list[object]) -> None:
        self.got.append(("events", events, threading.current_thread().name))

    @Slot(object)
    def waves(self, blocks: list[object]) -> None:
        self.got.append(("waveforms", blocks, threading.current_thread().name))


def test_bridge_hands_blocks_apart_on_the_gui_thread(qtbot: QtBot) -> None:
    feed, collector = LiveFeed(), Collector()
    feed.events.connect(collector.values)
    feed.waveforms.connect(collector.waves)
    spo2, b = Reading(Vital.SPO2, 97), block(0)
    run_in_thread(feed.push_events, [spo2, b])
    run_in_thread(feed.push_events, [b])
    qtbot.waitUntil(lambda: len(collector.got) == 3)
    main = threading.main_thread().name
    assert collector.got == [("events", [spo2], main), ("waveforms", [b], main),
                             ("waveforms", [b], main)]


def test_sweep_position_is_the_samples_received(live: Harness, qtbot: QtBot,
                                                shots_dir: Path) -> None:
    sweep, rec = live.window.pleth, live.recording
    rec.deliver([Reading(Vital.SPO2, 97), block(0), block(1)])  # as a Nonin packet batch
    for i in range(2, 7):
        rec.deliver([block(i)])
    caught_up(live, qtbot, 7 * N)
    assert sweep.capacity == 375 and sweep.position == 7 * N
    x, valid, marked = sweep.drawn_data()
    assert np.allclose(x, np.arange(375) / RATE)
    assert valid[: 7 * N].tolist() == all_samples(7).tolist()
    assert np.isnan(valid[7 * N:]).all()  # the erase gap, and nothing drawn yet beyond it
    assert np.isnan(marked).all()
    assert live.window.tiles[Vital.SPO2].value_text == "97"  # values still reach the tile

    # Between blocks the sweep moves at the device's rate and never past what was received.
    rec.deliver([block(7)])
    qtbot.waitUntil(lambda: sweep.received == 8 * N)
    live.clock.advance(0.2)
    qtbot.waitUntil(lambda: sweep.revealed == 7 * N + 15)  # 0.2 s x 75/s
    live.clock.advance(0.5)
    qtbot.waitUntil(lambda: sweep.revealed == 8 * N)
    qtbot.wait(120)  # a few more frames: no new samples, so nothing moves
    assert sweep.revealed == sweep.received == 8 * N

    # Round the window: new samples overwrite the old ones behind the erase gap.
    for i in range(8, 19):
        rec.deliver([block(i)])
    caught_up(live, qtbot, 19 * N)
    pos, gap = 19 * N - 375, sweep.erase
    assert sweep.position == pos == 100
    _, valid, _ = sweep.drawn_data()
    sent = all_samples(19)
    assert valid[:pos].tolist() == sent[375:].tolist()
    assert np.isnan(valid[pos: pos + gap]).all()
    assert valid[pos + gap:].tolist() == sent[pos + gap: 375].tolist()
    live.window.grab().save(str(shots_dir / "live-pleth-1366x768.png"))


def test_artifact_blocks_are_drawn_grey_and_dashed(live: Harness, qtbot: QtBot) -> None:
    sweep, rec = live.window.pleth, live.recording
    rec.deliver([block(0), block(1, Quality.ARTIFACT), block(2)])
    caught_up(live, qtbot, 3 * N)
    _, valid, marked = sweep.drawn_data()
    sent = all_samples(3)
    assert marked[N: 2 * N].tolist() == sent[N: 2 * N].tolist()
    assert np.isnan(valid[N: 2 * N]).all()
    assert np.isnan(marked[:N]).all() and np.isnan(marked[2 * N:]).all()
    assert valid[:N].tolist() == sent[:N].tolist()
    pen = sweep.marked_pen()
    assert pen.style() == Qt.PenStyle.DashLine and pen.color().name() == theme.GREYED
    assert sweep.status_label.text() == ""  # the newest block is clean again
    rec.deliver([block(3, Quality.ARTIFACT)])
    qtbot.waitUntil(lambda: sweep.status_label.text() == "? artifact")


def test_a_stale_pleth_says_so_instead_of_freezing(live: Harness, qtbot: QtBot) -> None:
    w, sweep, rec = live.window, live.window.pleth, live.recording
    for i in range(4):
        rec.deliver([block(i)])
    caught_up(live, qtbot, 4 * N)
    assert sweep.message_text == "" and not sweep.message.isVisible()
    live.clock.advance(1.5)  # 1.5 s + the 1 s above: 2.5 s since the last block
    qtbot.waitUntil(lambda: sweep.stale)
    assert sweep.message_text == NO_SIGNAL and sweep.message.isVisible()
    assert not sweep.plot.isVisible()
    _, valid, _ = sweep.drawn_data()
    assert np.isnan(valid).all()  # the old trace is gone, not frozen
    w.grab()  # paints without error (and without Qt warnings)
    rec.deliver([block(4)])
    qtbot.waitUntil(lambda: not sweep.stale)
    assert sweep.plot.isVisible() and not sweep.message.isVisible()
    live.clock.advance(1.0)
    qtbot.waitUntil(lambda: sweep.revealed == 5 * N)
    _, valid, _ = sweep.drawn_data()
    assert valid[4 * N: 5 * N].tolist() == list(samples_of(4))


def test_hidden_while_the_device_sends_no_waveform(live: Harness, qtbot: QtBot) -> None:
    w, rec = live.window, live.recording
    rec.deliver([Reading(Vital.SPO2, 98), Reading(Vital.HR, 70)])  # what a Datex sends
    qtbot.waitUntil(lambda: w.tiles[Vital.HR].value_text == "70")
    live.clock.advance(3)
    qtbot.wait(150)
    assert w.pleth.isHidden()
    rec.deliver([WaveformBlock("resp", 25.0, (1, 2, 3))])  # another wave: not a pleth
    qtbot.wait(50)
    assert w.pleth.isHidden()
    rec.deliver([block(0)])
    qtbot.waitUntil(lambda: w.pleth.isVisible())
    # Below the SpO2 tile, in the numerics column.
    spo2 = w.tiles[Vital.SPO2]
    assert w.pleth.geometry().top() >= spo2.geometry().bottom()
    assert abs(w.pleth.geometry().left() - spo2.geometry().left()) <= 2
    w.picker.connect_button.click()  # stop
    w.picker.connect_button.click()  # a new recording starts hidden again
    assert len(live.recordings) == 2 and w.pleth.isHidden()
    w.close()
    assert not w.pleth._timer.isActive()


def test_readings_after_a_block_still_reach_the_alarms(live: Harness, qtbot: QtBot) -> None:
    rec = live.recording
    rec.deliver([block(0), Reading(Vital.NIBP_SYS, 184), Reading(Vital.NIBP_DIA, 100),
                 Reading(Vital.NIBP_MEAN, 128)])
    assert "sbp_high" in [a.condition for a in rec.alarms.active()]
    qtbot.waitUntil(lambda: live.window.pleth.received == N)


# -- review ----------------------------------------------------------------------------------
T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)


def _recorded(database: Database, n_blocks: int) -> int:
    """A finished 2-minute session with SpO2 readings and a pleth with a gap and an artifact."""
    repo = database.repository
    sid = repo.create_session(source="record", protocol="nonin", started=T0)
    repo.insert_readings(sid, [Reading(Vital.SPO2, 97, t_received=T0 + timedelta(seconds=s))
                               for s in range(120)])
    blocks = [WaveformBlock("pleth", RATE, samples_of(i),
                            quality=Quality.ARTIFACT if i == 190 else Quality.OK,
                            t_received=T0 + timedelta(seconds=i * N / RATE))
              for i in range(n_blocks) if not 150 <= i < 160]  # 3.3 s lost at 50-53.3 s
    repo.insert_waveforms(sid, blocks)
    repo.end_session(sid, T0 + timedelta(seconds=120))
    return sid


def test_review_shows_the_stored_pleth_at_the_cursor(qtbot: QtBot, database: Database,
                                                     shots_dir: Path) -> None:
    sid = _recorded(database, 330)
    record = load_session_record(database, sid, ManualClock())
    window = ReviewWindow(record, ManualClock())
    qtbot.addWidget(window)
    window.resize(1366, 768)
    window.show()
    qtbot.waitExposed(window)
    strip = window.pleth
    assert strip.isVisible()

    window.select_at(1.0)  # the cursor at 60 s: a whole 10 s window of samples, one artifact
    t = T0 + timedelta(minutes=1)
    stored = database.repository.waveforms(sid, t0=t - timedelta(seconds=5),
                                           t1=t + timedelta(seconds=5))
    assert len(strip.shown) == len(stored) == 750
    assert strip.shown.samples.tolist() == stored.samples.tolist()
    assert strip.shown.t_us.tolist() == stored.t_us.tolist()
    x, valid = strip._valid.getOriginalDataset()
    _, marked = strip._marked.getOriginalDataset()
    drawn = np.where(np.isfinite(valid), valid, marked)
    assert drawn.tolist() == stored.samples.astype(float).tolist()
    assert np.allclose(x, (stored.t_us - to_us(t)) / 1e6)
    assert np.isfinite(marked).sum() == N  # block 190 (63.3-63.7 s), dashed grey
    window.grab().save(str(shots_dir / "review-pleth.png"))

    # At 50 s the recording has a gap: the line does not bridge it.
    window.select_at(50 / 60)
    x, valid = strip._valid.getOriginalDataset()
    assert np.isnan(x).sum() == 1
    assert len(strip.shown) == 750 - 250  # 150..160 (3.3 s) missing
    window.close()


def test_review_without_a_pleth_hides_the_strip(qtbot: QtBot, database: Database) -> None:
    repo = database.repository
    sid = repo.create_session(source="record", protocol="datex-s5", started=T0)
    repo.insert_readings(sid, [Reading(Vital.HR, 70, t_received=T0)])
    repo.end_session(sid, T0 + timedelta(seconds=60))
    record = load_session_record(database, sid, ManualClock())
    assert record.waveforms == {}
    window = ReviewWindow(record, ManualClock())
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    assert window.pleth.isHidden()
    window.select_at(0.5)  # nothing to show, nothing breaks
    assert len(window.pleth.shown) == 0
