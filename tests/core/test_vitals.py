from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from infusion_monitor.vitals import (
    NIBP,
    SPECS,
    Quality,
    Reading,
    Vital,
    is_possible,
    mark_artifacts,
    unit_of,
)

T = datetime(2026, 1, 1, tzinfo=UTC)


def test_vocabulary_names_units_and_codes_match_the_design():
    assert [v.value for v in Vital] == [
        "hr", "pr", "spo2", "nibp_sys", "nibp_dia", "nibp_mean", "rr", "pi", "pvi",
    ]
    assert unit_of(Vital.HR) == "/min"
    assert unit_of(Vital.SPO2) == "%"
    assert {unit_of(v) for v in NIBP} == {"mmHg"}
    assert {SPECS[v].ucum for v in NIBP} == {"mm[Hg]"}
    assert SPECS[Vital.SPO2].mdc_code == 150456
    assert SPECS[Vital.NIBP_SYS].loinc == "8480-6"
    # NOM_PULS_OXIM_PERF_REL = 19376 in partition 2 (SCADA): 2 * 65536 + 19376.
    assert SPECS[Vital.PI].mdc_code == 2 * 65536 + 19376
    assert SPECS[Vital.PVI].mdc_code == 0  # Masimo's own index: exported under a local code


@pytest.mark.parametrize(
    ("vital", "value", "possible"),
    [
        (Vital.SPO2, 100, True), (Vital.SPO2, 100.5, False),
        (Vital.HR, 300, True), (Vital.HR, 301, False),
        (Vital.HR, 15, True), (Vital.HR, 14, False),
        (Vital.PR, float("nan"), False),
    ],
)
def test_possible_ranges_follow_clinical_md(vital, value, possible):
    assert is_possible(vital, value) is possible


def _nibp(sys_, dia, mean, q=Quality.OK):
    return [Reading(v, x, q, T) for v, x in zip(NIBP, (sys_, dia, mean), strict=True)]


def test_nibp_with_sys_not_above_dia_is_an_artifact_as_a_whole():
    out = mark_artifacts(_nibp(80, 80, 80))
    assert {r.quality for r in out} == {Quality.ARTIFACT}


def test_nibp_with_mean_outside_dia_sys_is_an_artifact():
    out = mark_artifacts(_nibp(120, 80, 130))
    assert {r.quality for r in out} == {Quality.ARTIFACT}


def test_plausible_nibp_stays_ok():
    assert {r.quality for r in mark_artifacts(_nibp(138, 88, 105))} == {Quality.OK}


def test_device_quality_is_never_upgraded():
    r = Reading(Vital.HR, 500, Quality.DEMO, T)
    assert mark_artifacts([r]) == [r]


@given(
    st.sampled_from([Vital.HR, Vital.PR, Vital.SPO2, Vital.RR]),
    st.floats(allow_nan=True, allow_infinity=True),
)
def test_a_value_is_ok_exactly_when_it_is_possible(vital, value):
    (out,) = mark_artifacts([Reading(vital, value, Quality.OK, T)])
    assert out.value == value or value != value  # the value itself is never changed
    assert (out.quality is Quality.OK) == is_possible(vital, value)


@given(st.floats(10, 350), st.floats(5, 300), st.floats(5, 320))
def test_nibp_triple_is_judged_together(sys_, dia, mean):
    out = mark_artifacts(_nibp(sys_, dia, mean))
    qualities = {r.quality for r in out}
    assert len(qualities) == 1
    plausible = sys_ > dia and dia <= mean <= sys_
    assert (qualities == {Quality.OK}) == plausible
