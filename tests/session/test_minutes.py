"""Per-minute summaries equal plain statistics over the same window; every minute has one row."""

from __future__ import annotations

import math
import statistics
import time
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from infusion_monitor.session.minutes import (
    MinuteAggregator,
    MinuteRow,
    join_minutes,
    minute_vitals,
    unassessed_streak,
)
from infusion_monitor.store.charting import MinuteEntry, Note
from infusion_monitor.vitals import Quality, Reading, Vital

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SCALAR = (Vital.HR, Vital.PR, Vital.SPO2, Vital.RR)

readings_st = st.lists(
    st.builds(
        lambda ms, vital, value, quality: Reading(
            vital, value, quality, t_received=T0 + timedelta(milliseconds=ms)),
        st.integers(-120_000, 600_000), st.sampled_from(SCALAR),
        st.integers(0, 300).map(float), st.sampled_from(list(Quality)),
    ),
    max_size=300,
)


def ok_values(readings: list[Reading], vital: Vital, lo: datetime, hi: datetime) -> list[float]:
    return [r.value for r in readings
            if r.vital is vital and r.quality is Quality.OK and lo <= r.time < hi]


@settings(max_examples=150, deadline=None)
@given(readings=readings_st, end_ms=st.integers(1, 600_000))
def test_summaries_equal_statistics_over_the_same_window(readings: list[Reading],
                                                         end_ms: int) -> None:
    end = T0 + timedelta(milliseconds=end_ms)
    rows = minute_vitals(readings, T0, end)
    assert [r.minute for r in rows] == list(range(math.ceil(end_ms / 60_000)))
    for row in rows:
        lo, hi = row.start, min(row.end, end)
        assert row.start == T0 + timedelta(minutes=row.minute)
        assert row.complete == (row.end <= end)
        hr = ok_values(readings, Vital.HR, lo, hi) or ok_values(readings, Vital.PR, lo, hi)
        spo2 = ok_values(readings, Vital.SPO2, lo, hi)
        rr = ok_values(readings, Vital.RR, lo, hi)
        assert row.hr_median == (statistics.median(hr) if hr else None)
        assert row.spo2_min == (min(spo2) if spo2 else None)
        assert row.spo2_median == (statistics.median(spo2) if spo2 else None)
        assert row.rr_median == (statistics.median(rr) if rr else None)
        assert row.n_artifacts == sum(
            1 for r in readings if r.quality is not Quality.OK and lo <= r.time < hi)


@settings(max_examples=60, deadline=None)
@given(readings=readings_st, cuts=st.lists(st.integers(1, 600_000), min_size=1, max_size=5))
def test_incremental_equals_one_shot(readings: list[Reading], cuts: list[int]) -> None:
    readings = sorted(readings, key=lambda r: r.time)
    agg = MinuteAggregator(T0)
    done = 0
    for cut in sorted(cuts):
        now = T0 + timedelta(milliseconds=cut)
        upto = [r for r in readings[done:] if r.time < now]
        agg.add(upto)
        done += len(upto)
        assert agg.vitals(now) == minute_vitals(readings[:done], T0, now)


def nibp(t: datetime, sys_: float, dia: float, q: Quality = Quality.OK) -> list[Reading]:
    return [Reading(Vital.NIBP_SYS, sys_, q, t_received=t),
            Reading(Vital.NIBP_DIA, dia, q, t_received=t),
            Reading(Vital.NIBP_MEAN, (sys_ + 2 * dia) / 3, q, t_received=t)]


def test_latest_nibp_carries_forward_with_its_age_and_skips_artifacts() -> None:
    before = T0 - timedelta(minutes=3)  # the baseline NIBP, before infusion start
    data = nibp(before, 120, 80) + nibp(T0 + timedelta(seconds=150), 300, 310, Quality.ARTIFACT)
    data += nibp(T0 + timedelta(seconds=190), 135, 85)
    rows = minute_vitals(data, T0, T0 + timedelta(seconds=200))
    assert [(r.nibp.sys, r.nibp_age_s) for r in rows] == [
        (120, 240.0), (120, 300.0), (120, 360.0), (135, 10.0)]  # last: age at now, not end
    assert rows[2].n_artifacts == 3 and rows[0].nibp.mean == 280 / 3


def test_hr_falls_back_to_pulse_rate() -> None:
    data = [Reading(Vital.PR, 70, t_received=T0), Reading(Vital.PR, 74, t_received=T0)]
    data += [Reading(Vital.HR, 90, t_received=T0 + timedelta(seconds=70))]
    rows = minute_vitals(data, T0, T0 + timedelta(minutes=2))
    assert [(r.hr_median, r.hr_source) for r in rows] == [(72, Vital.PR), (90, Vital.HR)]


def entry(id_: int, minute: int, amends: int | None = None, rass: int | None = 0) -> MinuteEntry:
    return MinuteEntry(id_, 1, minute, 0, rass, 0, T0 + timedelta(minutes=minute, seconds=id_),
                       "nurse.n", amends, "why" if amends else None)


def test_join_keeps_the_newest_version_and_its_history_and_says_not_assessed() -> None:
    vit = minute_vitals([], T0, T0 + timedelta(minutes=4))
    entries = [entry(1, 0), entry(2, 2), entry(3, 0, amends=1, rass=-1), entry(4, 0, amends=3)]
    notes = [Note(9, 1, T0 + timedelta(seconds=61), 1, "calm", T0, "n")]
    rows = join_minutes(vit, entries, notes)
    assert len(rows) == 4
    assert rows[0].entry == entries[3] and rows[0].history == (entries[0], entries[2])
    assert [r.status for r in rows] == ["assessed", "not assessed", "assessed", "not assessed"]
    assert rows[1].rass_text == "not assessed" and rows[1].notes == ((notes[0],),)


def test_unassessed_streak_counts_finished_minutes_only() -> None:
    vit = minute_vitals([], T0, T0 + timedelta(minutes=6))
    rows = join_minutes(vit, [entry(1, 1)], [])
    assert unassessed_streak(rows, 5) == 3  # 2, 3, 4 (5 is in progress)
    assert unassessed_streak(rows, 2) == 0
    assert unassessed_streak(rows, 1) == 0  # charting the minute in progress ends it
    assert unassessed_streak(join_minutes(vit, [], []), 1) == 1
    assert unassessed_streak(join_minutes(vit, [entry(1, 5)], []), 5) == 0
    assert unassessed_streak(join_minutes(vit, [], []), 0) == 0
    assert isinstance(rows[0], MinuteRow)


def test_two_hour_session_refreshes_cheaply() -> None:
    """Two hours at 1 Hz (HR, PR, SpO2, RR), refreshed every minute: well under a second."""
    agg = MinuteAggregator(T0)
    t_start = time.perf_counter()
    for minute in range(120):
        batch = []
        for s in range(60):
            t = T0 + timedelta(minutes=minute, seconds=s)
            batch += [Reading(v, 80, t_received=t) for v in SCALAR]
        agg.add(batch)
        rows = agg.vitals(T0 + timedelta(minutes=minute + 1))
    elapsed = time.perf_counter() - t_start
    assert len(rows) == 120 and rows[-1].hr_median == 80
    assert elapsed < 2.0, elapsed
