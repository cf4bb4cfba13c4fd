import time
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from infusion_monitor.clock import ManualClock, ScaledClock, from_us, iso_z, to_us


def test_manual_clock_moves_only_when_told():
    c = ManualClock(datetime(2026, 3, 1, tzinfo=UTC))
    assert c.monotonic() == 0
    c.advance(90.5)
    assert c.monotonic() == 90.5
    assert c.now() == datetime(2026, 3, 1, 0, 1, 30, 500000, tzinfo=UTC)


def test_scaled_clock_runs_faster_than_real_time():
    c = ScaledClock(speed=100)
    t0 = c.monotonic()
    time.sleep(0.05)
    elapsed = c.monotonic() - t0
    assert 4.0 <= elapsed < 50
    assert c.now() >= c.origin + timedelta(seconds=4)


def test_scaled_clock_rejects_nonpositive_speed():
    with pytest.raises(ValueError):
        ScaledClock(speed=0)


@given(st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1),
                    timezones=st.just(UTC)))
def test_microsecond_round_trip(t):
    assert from_us(to_us(t)) == t


def test_naive_times_are_refused():
    with pytest.raises(ValueError):
        to_us(datetime(2026, 1, 1))


def test_iso_z_is_utc_with_z():
    t = datetime(2021, 7, 3, 5, 14, 19, tzinfo=timezone(timedelta(hours=2)))
    assert iso_z(t) == "2021-07-03T03:14:19Z"
    assert iso_z(t.replace(microsecond=250000)) == "2021-07-03T03:14:19.250Z"
