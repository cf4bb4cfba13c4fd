"""Done-when 3: for any sequence of readings, alarms follow the delay rule exactly.

The reference below restates the documented semantics (session/alarms.py) in the simplest way
it can be said: a valid value holds until the next valid one, at most HOLD_S; a breach run ends
at the first valid value inside the limit or when the held value goes stale; a run longer than
the delay raises one alarm at onset + delay. Artifacts are ignored by both.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from infusion_monitor.session.alarms import HOLD_S, AlarmEngine
from infusion_monitor.session.thresholds import DEFAULT_CONDITIONS, AlarmCondition, Kind
from infusion_monitor.vitals import Quality, Reading, Vital

T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
RANGES = {Vital.SPO2: (78, 100), Vital.HR: (30, 140), Vital.RR: (4, 40)}
Sample = tuple[float, float, bool]  # time, value, valid


def conditions_of(vital: Vital) -> list[AlarmCondition]:
    return [c for c in DEFAULT_CONDITIONS
            if c.parameter == vital.value and c.kind is Kind.CONTINUOUS]


@st.composite
def streams(draw, vital: Vital | None = None) -> tuple[Vital, list[Sample]]:
    vital = vital or draw(st.sampled_from(list(RANGES)))
    lo, hi = RANGES[vital]
    steps = draw(st.lists(st.tuples(
        st.sampled_from([0.5, 1, 2, 3, 5, 5, 5, 7.5, 9, 10, 10.5, 12, 25]),  # gaps, some > hold
        st.integers(lo, hi),
        st.booleans() | st.just(True),  # mostly valid, some artifacts
    ), min_size=1, max_size=80))
    t, out = 0.0, []
    for gap, value, valid in steps:
        t += gap
        out.append((t, float(value), valid))
    return vital, out


def feed(vital: Vital, samples: list[Sample]) -> list:
    """Readings in time order, the engine ticked every whole second in between (as live)."""
    engine = AlarmEngine(origin=T0)
    changes = []
    second = 0
    for t, value, valid in samples:
        while second < t:
            changes += engine.tick(second)
            second += 1
        quality = Quality.OK if valid else Quality.ARTIFACT
        changes += engine.on_events([Reading(vital, value, quality,
                                             t_received=T0 + timedelta(seconds=t))])
    end = samples[-1][0] + HOLD_S + 60
    while second <= end:
        changes += engine.tick(second)
        second += 1
    return [c for c in changes if c.kind == "raised" and c.priority != "technical"
            and c.condition != "notify_attending"]


def expected(cond: AlarmCondition, samples: list[Sample]) -> list[float]:
    """Alarm start times by the documented rule."""
    starts: list[float] = []
    onset = last = None

    def close(end: float) -> None:
        if onset is not None and end - onset > cond.delay_s:
            starts.append(onset + cond.delay_s)

    for t, value, valid in samples:
        if not valid:
            continue
        if onset is not None and t > last + HOLD_S:
            close(last + HOLD_S)
            onset = None
        if cond.breached(value):
            if onset is None:
                onset = t
            last = t
        elif onset is not None:
            close(t)
            onset = None
    if onset is not None:
        close(last + HOLD_S)
    return starts


@settings(max_examples=300, deadline=None)
@given(streams())
def test_each_breach_longer_than_its_delay_raises_exactly_one_alarm_at_onset_plus_delay(s):
    vital, samples = s
    raised = feed(vital, samples)
    for cond in conditions_of(vital):
        got = [c.t for c in raised if c.condition == cond.name]
        want = expected(cond, samples)
        assert len(got) == len(want), (cond.name, got, want)
        assert all(abs(g - w) <= 1.0 for g, w in zip(got, want, strict=True)), (got, want)
    assert {c.condition for c in raised} <= {c.name for c in conditions_of(vital)}


@settings(max_examples=300, deadline=None)
@given(streams())
def test_no_alarm_for_a_value_inside_its_limits(s):
    """Every valid value from an alarm's onset to its start breaches that alarm's limit."""
    vital, samples = s
    by_name = {c.name: c for c in conditions_of(vital)}
    for change in feed(vital, samples):
        cond = by_name[change.condition]
        onset = change.t - cond.delay_s
        window = [v for t, v, valid in samples if valid and onset <= t <= change.t]
        assert window and all(cond.breached(v) for v in window), (cond.name, window)


@settings(max_examples=200, deadline=None)
@given(streams(Vital.SPO2), st.integers(92, 100))
def test_values_all_inside_the_limits_never_alarm(s, floor):
    _, samples = s
    inside = [(t, max(v, floor), valid) for t, v, valid in samples]
    assert feed(Vital.SPO2, inside) == []


@settings(max_examples=200, deadline=None)
@given(streams(Vital.HR))
def test_artifacts_never_raise_a_physiological_alarm(s):
    _, samples = s
    only_artifacts = [(t, v, False) for t, v, _ in samples]
    assert feed(Vital.HR, only_artifacts) == []
