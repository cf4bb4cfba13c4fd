"""The patient model: deterministic, realistic for a typical session, and each scenario's events
happen exactly when its documented timeline says."""

from __future__ import annotations

import statistics

import pytest

from simulators.patient import (
    BASE_DIA,
    BASE_SYS,
    BASELINE_END,
    DEFAULT_DURATION,
    NIBP_TAKES,
    SCENARIOS,
    PatientModel,
    Sample,
    mean_pressure,
    nibp_starts,
)

SECONDS = range(0, DEFAULT_DURATION)


def within_limits(s: Sample) -> bool:
    """No physiological threshold of clinical.md is crossed (artifacts count as crossings)."""
    ok = (
        s.hr is not None and 50 <= s.hr <= 110
        and s.pr is not None and 50 <= s.pr <= 110
        and s.spo2 is not None and 94 <= s.spo2 <= 100
    )
    if s.nibp is not None:
        ok = ok and 90 <= s.nibp.sys < 180 and s.nibp.dia < 110 and s.nibp.sys > s.nibp.dia
    return ok


def covered(scenario: str, t: int) -> bool:
    return any(e.t_start <= t < e.t_end for e in SCENARIOS[scenario].timeline)


def test_same_seed_same_session_other_seed_differs() -> None:
    for name in SCENARIOS:
        a = [PatientModel(name, 7).sample(t) for t in range(0, DEFAULT_DURATION, 5)]
        b = [PatientModel(name, 7).sample(t) for t in range(0, DEFAULT_DURATION, 5)]
        c = [PatientModel(name, 8).sample(t) for t in range(0, DEFAULT_DURATION, 5)]
        assert a == b
        assert a != c


def test_sample_depends_only_on_whole_seconds() -> None:
    m = PatientModel("typical", 1)
    assert m.sample(1234.9) == m.sample(1234)
    assert [m.sample(t) for t in (50, 10, 30)] == [m.sample(t) for t in (50, 10, 30)]


@pytest.mark.parametrize("seed", range(10))
def test_typical_stays_within_limits(seed: int) -> None:
    m = PatientModel("typical", seed)
    for t in SECONDS:
        s = m.sample(t)
        assert within_limits(s), s
        assert s.spo2 is not None and 97 <= s.spo2 <= 99
        assert s.pr is not None and s.hr is not None and abs(s.pr - s.hr) <= 1


@pytest.mark.parametrize("seed", range(10))
def test_typical_bp_peaks_at_30_to_40_min(seed: int) -> None:
    m = PatientModel("typical", seed)
    results = [m.nibp_result(start) for start in nibp_starts(DEFAULT_DURATION)]
    peak = max(results, key=lambda r: r.sys)
    shown_after_infusion_start = peak.started + NIBP_TAKES - BASELINE_END
    assert 30 * 60 <= shown_after_infusion_start <= 40 * 60
    assert abs(peak.sys - BASE_SYS - 16) <= 3
    assert abs(max(r.dia for r in results) - BASE_DIA - 11) <= 3
    baseline = results[0]
    assert abs(baseline.sys - 122) <= 2 and abs(baseline.dia - 78) <= 2
    last = results[-1]  # back toward baseline by the end of observation
    assert abs(last.sys - BASE_SYS) <= 4 and abs(last.dia - BASE_DIA) <= 4


def test_typical_hr_rises_about_4() -> None:
    m = PatientModel("typical", 3)
    hrs = [m.sample(t).hr for t in SECONDS]
    base = statistics.mean(h for h in hrs[0:300] if h is not None)
    peak = statistics.mean(h for h in hrs[2300:2500] if h is not None)
    assert abs(peak - base - 4) <= 1.5


def test_nibp_schedule_and_measuring_flag() -> None:
    m = PatientModel("typical", 0)
    assert nibp_starts(DEFAULT_DURATION)[:3] == [60, 360, 660]
    assert m.sample(59).nibp is None and not m.sample(59).nibp_measuring
    assert m.sample(60).nibp is None and m.sample(60).nibp_measuring
    assert m.sample(90).nibp == m.nibp_result(60) and not m.sample(90).nibp_measuring
    s = m.sample(365)  # measuring again: the previous result stays displayed
    assert s.nibp_measuring and s.nibp == m.nibp_result(60)
    assert m.sample(390).nibp == m.nibp_result(360)
    for start in nibp_starts(DEFAULT_DURATION):
        r = m.nibp_result(start)
        assert r.mean == mean_pressure(r.sys, r.dia)


def test_mean_pressure_rounds_half_up() -> None:
    assert mean_pressure(120, 80) == 93  # 93.33
    assert mean_pressure(121, 80) == 94  # 93.67
    assert mean_pressure(202, 121) == 148  # 148.0


@pytest.mark.parametrize("name", list(SCENARIOS))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_outside_its_timeline_every_scenario_is_typical(name: str, seed: int) -> None:
    m = PatientModel(name, seed)
    for t in SECONDS:
        if not covered(name, t):
            assert within_limits(m.sample(t)), (t, m.sample(t))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_desaturation_breaches_exactly_on_timeline(seed: int) -> None:
    m = PatientModel("desaturation", seed)
    kinds = {(e.t_start, e.t_end): e.kind for e in SCENARIOS["desaturation"].timeline}
    assert kinds == {(1200, 1240): "medium", (1800, 1830): "high", (2100, 2108): "below-delay"}
    for t in SECONDS:
        spo2 = m.sample(t).spo2
        assert spo2 is not None
        below92 = 1200 <= t < 1240 or 1800 <= t < 1830 or 2100 <= t < 2108
        assert (spo2 < 92) == below92, t
        assert (spo2 < 88) == (1800 <= t < 1830), t


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_hypertensive_breaches_exactly_on_timeline(seed: int) -> None:
    m = PatientModel("hypertensive", seed)
    events = SCENARIOS["hypertensive"].timeline
    assert [(e.t_start, e.t_end, e.kind) for e in events] == [
        (2190, 2490, "medium"), (2490, 2790, "high"),
    ]
    for t in SECONDS:
        nibp = m.sample(t).nibp
        sys_, dia = (0, 0) if nibp is None else (nibp.sys, nibp.dia)
        assert (sys_ >= 180) == (dia >= 110) == (2190 <= t < 2790), t
        assert (sys_ >= 200) == (dia >= 120) == (2490 <= t < 2790), t
    assert (m.sample(2190).nibp.sys, m.sample(2190).nibp.dia) == (184, 112)  # type: ignore[union-attr]
    assert (m.sample(2490).nibp.sys, m.sample(2490).nibp.dia) == (202, 121)  # type: ignore[union-attr]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_artifact_values_exactly_on_timeline(seed: int) -> None:
    m = PatientModel("artifact", seed)
    assert all(e.kind in {"artifact", "probe-off"} for e in SCENARIOS["artifact"].timeline)
    for t in SECONDS:
        s = m.sample(t)
        assert (s.hr == 320) == (900 <= t < 920), t
        assert (s.hr == 10) == (1500 <= t < 1520), t
        probe_off = 1200 <= t < 1220 or 2000 <= t < 2020
        assert (s.spo2 is None) == probe_off == (s.pr is None), t
        bad_nibp = s.nibp is not None and s.nibp.sys <= s.nibp.dia
        assert bad_nibp == (1590 <= t < 1890), t
        # Every value that is not an artifact stays inside the limits.
        if s.hr is not None and 15 <= s.hr <= 300:
            assert 50 <= s.hr <= 110
        if s.spo2 is not None:
            assert s.spo2 >= 94
        if s.nibp is not None and not bad_nibp:
            assert s.nibp.sys < 180 and s.nibp.dia < 110


def test_unplug_scenario_pulls_the_cable_at_900_for_60_s() -> None:
    m = PatientModel("unplug", 0)
    assert [t for t in SECONDS if m.is_unplugged(t)] == list(range(900, 960))
    assert not any(PatientModel(n, 0).is_unplugged(t) for n in SCENARIOS if n != "unplug"
                   for t in range(0, DEFAULT_DURATION, 10))


def test_unknown_scenario_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="typical"):
        PatientModel("nope")
