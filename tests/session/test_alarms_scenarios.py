"""Done-when 1: the alarm engine against the simulator's scenarios, in simulated time.

Real Datex S/5 frames (every 5 s, as the monitor sends them) are decoded by the app's codec,
stamped by the recorder on a manual clock (receipt time = simulated time) and fed to the engine,
which is ticked every simulated second. Phases follow the simulator's timeline (baseline from 0,
infusion from 300 s, observation from 2700 s). Each test asserts the exact alarm log.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from infusion_monitor.clock import ManualClock
from infusion_monitor.devices.base import DeviceEvent, DeviceEventKind
from infusion_monitor.devices.datex_s5 import DatexS5Codec
from infusion_monitor.session.alarm_monitor import to_record
from infusion_monitor.session.alarm_types import AlarmChange
from infusion_monitor.session.alarms import AlarmEngine
from infusion_monitor.session.phases import Phase
from infusion_monitor.session.recorder import Recorder
from infusion_monitor.store.alarm_log import fold
from simulators.datex import DatexS5Stream
from simulators.patient import BASELINE_END, INFUSION_END, PatientModel, get_scenario

START = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
SEED = 0
Action = Callable[[AlarmEngine, float], list[AlarmChange]]


@dataclass(frozen=True)
class Logged:
    """One alarm of the log, in simulated seconds (None: not applicable)."""

    condition: str
    parameter: str | None
    priority: str
    start: float
    end: float | None
    latched: bool = False
    escalated: bool = False
    acknowledged_by: str | None = None
    acknowledged_at: float | None = None


def run(name: str, duration: int, actions: dict[int, Action] | None = None):
    """Replay a scenario; returns the engine and every change, in order."""
    actions = actions or {}
    model = PatientModel(name, SEED)
    stream = DatexS5Stream(model, int(START.timestamp()))
    codec = DatexS5Codec()
    clock = ManualClock(START)
    recorder = Recorder(1, clock=clock)
    engine = AlarmEngine(origin=START)
    changes: list[AlarmChange] = []
    recorder.subscribe(lambda events: changes.extend(engine.on_events(events)))
    plugged, resumed = True, False
    for s in range(duration + 1):
        clock.advance(s - clock.monotonic())
        phase = {0: Phase.BASELINE, BASELINE_END: Phase.INFUSION,
                 INFUSION_END: Phase.OBSERVATION}.get(s)
        if phase is not None:
            changes += engine.set_phase(phase, s)
        if model.is_unplugged(s):
            if plugged:  # the pty vanishes: the link reports it at once (devices/link.py)
                recorder.handle([DeviceEvent(DeviceEventKind.LINK_DOWN, "ttySIM0 lost")])
                plugged = False
        elif not plugged:
            # Reopened in the first second back; the start request makes the S/5 answer
            # at its next 5-s slot, and the link reports DATA_RESUMED with that first frame.
            recorder.handle([DeviceEvent(DeviceEventKind.LINK_UP, "opened ttySIM0")])
            codec.connection_made()
            plugged = resumed = True
        elif s % 5 == 0:
            events = codec.receive_data(stream.frame_at(s).data)
            if resumed:
                events = [DeviceEvent(DeviceEventKind.DATA_RESUMED, "data again"), *events]
                resumed = False
            recorder.handle(events)
        changes += engine.tick(s)
        if s in actions:
            changes += actions[s](engine, s)
    return engine, changes


def log_of(changes: list[AlarmChange]) -> list[Logged]:
    def sec(t: datetime | None) -> float | None:
        return None if t is None else (t - START).total_seconds()

    return [
        Logged(a.condition, a.parameter, a.priority, sec(a.start), sec(a.end), a.latched,
               a.escalated, a.acknowledged_by, sec(a.acknowledged_at))
        for a in fold(to_record(c) for c in changes)
    ]


def ack(condition: str, by: str = "nurse RN") -> Action:
    def act(engine: AlarmEngine, now: float) -> list[AlarmChange]:
        uid = next(a.uid for a in engine.history() if a.condition == condition)
        return engine.acknowledge(uid, by=by, now=now)

    return act


def ack_flag(by: str = "Dr Attending") -> Action:
    def act(engine: AlarmEngine, now: float) -> list[AlarmChange]:
        return engine.acknowledge_attending(by=by, role="attending", now=now)

    return act


def frames(start: int, end: int) -> list[int]:
    return list(range(start - start % 5 + (5 if start % 5 else 0), end, 5))


def test_timelines_are_what_these_tests_assume():
    """The simulator's own timelines are the source of truth; fail loudly if they move."""
    spans = {name: [(e.t_start, e.t_end, e.kind) for e in get_scenario(name).timeline]
             for name in ("hypertensive", "desaturation", "artifact", "unplug")}
    assert spans["hypertensive"] == [(2190, 2490, "medium"), (2490, 2790, "high")]
    assert spans["desaturation"] == [(1200, 1240, "medium"), (1800, 1830, "high"),
                                     (2100, 2108, "below-delay")]
    assert spans["artifact"] == [(900, 920, "artifact"), (1200, 1220, "probe-off"),
                                 (1500, 1520, "artifact"), (1590, 1890, "artifact"),
                                 (2000, 2020, "probe-off")]
    assert spans["unplug"] == [(900, 960, "unplug")]


def test_typical_session_raises_nothing():
    _, changes = run("typical", 4500)
    assert changes == []


def test_hypertensive_nibp_alarms_at_once_severe_latch_and_escalate():
    # The nurse acknowledges everything at 2600 (after one escalation at 2550); the attending
    # acknowledges the flag at 2700. NIBP is discrete: no delay, so start == display time.
    _, changes = run("hypertensive", 2900, {
        2600: lambda e, now: e.acknowledge_all(by="nurse RN", now=now),
        2700: ack_flag(),
    })
    assert log_of(changes) == [
        Logged("dbp_high", "nibp_dia", "medium", 2190, 2790,
               acknowledged_by="nurse RN", acknowledged_at=2600),
        Logged("notify_attending", "nibp_sys", "high", 2190, 2700,
               acknowledged_by="Dr Attending", acknowledged_at=2700),
        Logged("sbp_high", "nibp_sys", "medium", 2190, 2790,
               acknowledged_by="nurse RN", acknowledged_at=2600),
        Logged("dbp_high_severe", "nibp_dia", "high", 2490, 2790, latched=True, escalated=True,
               acknowledged_by="nurse RN", acknowledged_at=2600),
        Logged("sbp_high_severe", "nibp_sys", "high", 2490, 2790, latched=True, escalated=True,
               acknowledged_by="nurse RN", acknowledged_at=2600),
    ]
    escalations = [c for c in changes if c.kind == "escalated"]
    assert sorted((c.condition, c.t) for c in escalations) == [
        ("dbp_high_severe", 2550), ("sbp_high_severe", 2550)]
    worst = {a.condition: a.worst_value for a in fold(to_record(c) for c in changes)}
    assert worst == {"sbp_high": 202, "dbp_high": 121, "sbp_high_severe": 202,
                     "dbp_high_severe": 121, "notify_attending": None}


def test_hypertensive_severe_alarm_stays_until_acknowledged():
    engine, _ = run("hypertensive", 2900)
    shown = engine.active()  # conditions ended at 2790; the latched ones wait for a nurse
    assert [(a.condition, a.active, a.latched) for a in shown] == [
        ("sbp_high_severe", False, True), ("dbp_high_severe", False, True)]
    assert all(a.escalations == 6 for a in shown)  # 2550, 2610, ..., 2850
    assert engine.flag() is not None


def test_desaturation_delays_severity_and_the_short_dip():
    _, changes = run("desaturation", 2300, {1900: ack("spo2_low_severe")})
    medium = frames(1200, 1240)
    severe = frames(1800, 1830)
    assert log_of(changes) == [
        # SpO2 89–91 from 1200: < 92 for 15 s -> medium at 1215, ends at 1240
        Logged("spo2_low", "spo2", "medium", medium[0] + 15, 1240),
        # SpO2 84–86 from 1800: < 88 for 10 s -> high at 1810 (latched, escalated at 1870,
        # acknowledged at 1900) and the attending flag with it ...
        Logged("notify_attending", "spo2", "high", 1810, None),
        Logged("spo2_low_severe", "spo2", "high", severe[0] + 10, 1830, latched=True,
               escalated=True, acknowledged_by="nurse RN", acknowledged_at=1900),
        # ... and < 92 for 15 s -> logged at 1815 too (shown under the severe one)
        Logged("spo2_low", "spo2", "medium", severe[0] + 15, 1830),
    ]
    # 2100–2108: SpO2 90 in the frames at 2100 and 2105 only, < 15 s: nothing at all
    assert not [c for c in changes if c.t >= 2000]
    model = PatientModel("desaturation", SEED)
    worst = [a.worst_value for a in fold(to_record(c) for c in changes)]
    assert worst == [min(model.sample(t).spo2 for t in medium), None,
                     min(model.sample(t).spo2 for t in severe),
                     min(model.sample(t).spo2 for t in severe)]


def test_desaturation_display_shows_the_severe_alarm_not_both():
    shown: list[list[str]] = []
    run("desaturation", 1820, {
        1816: lambda e, now: shown.append([a.text for a in e.active()]) or [],
    })
    assert len(shown[0]) == 1 and shown[0][0].startswith("SpO2 ") and "< 88" in shown[0][0]


def test_artifact_scenario_raises_no_physiological_alarm():
    _, changes = run("artifact", 2100)
    assert log_of(changes) == [
        # HR 320 (impossible) from 900: no valid HR for 15 s -> technical, medium
        Logged("signal_lost", "hr", "technical", 915, 920),
        # SpO2 invalid (probe off) from 1200
        Logged("signal_lost", "spo2", "technical", 1215, 1220),
        # HR 10 (impossible) from 1500
        Logged("signal_lost", "hr", "technical", 1515, 1520),
        # NIBP 96/98 (sys <= dia) at 1590 is an artifact, not a measurement: the last valid
        # NIBP was at 1290, so a reminder at 1290 + 300 + 120; it ends with the next at 1890
        Logged("nibp_overdue", "nibp_sys", "technical", 1710, 1890),
        Logged("signal_lost", "spo2", "technical", 2015, 2020),
    ]
    assert {c.priority for c in changes} == {"technical"}


def test_unplug_raises_link_lost_ten_seconds_after_the_last_frame():
    _, changes = run("unplug", 1100)
    # Last frame before the cable came out: 895 -> link lost at 905 (high, technical, not
    # latched). Back at 960; the first frame is at 965 and ends it. Its first escalation
    # would have been due at 965 too: the frame at that instant comes first.
    assert log_of(changes) == [Logged("link_lost", None, "technical", 905, 965)]
    raised = next(c for c in changes if c.kind == "raised")
    assert raised.detail.startswith("Monitor link lost") and "ttySIM0 lost" in raised.detail


def test_unplug_for_longer_escalates_the_link_alarm():
    engine = AlarmEngine(origin=START)
    changes = engine.on_events([])
    changes += engine.tick(100)
    assert [(c.kind, c.t) for c in changes] == [("raised", 10), ("escalated", 70)]


@pytest.mark.parametrize("name", ["hypertensive", "desaturation", "artifact", "unplug"])
def test_every_documented_breach_is_matched(name):
    """Cross-check with the simulator's timeline kinds: what should alarm, and how."""
    _, changes = run(name, 3000)
    log = log_of(changes)
    physio = [a for a in log if a.priority != "technical" and a.condition != "notify_attending"]
    for event in get_scenario(name).timeline:
        inside = [a for a in physio if event.t_start <= a.start < event.t_end + 1]
        if event.kind in ("medium", "high"):
            assert event.kind in {a.priority for a in inside}, event
        else:
            assert inside == [], event
