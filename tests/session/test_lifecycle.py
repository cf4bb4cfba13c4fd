"""A charted session end to end on a real SQLite file; every refusal writes nothing."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from infusion_monitor.clock import ManualClock
from infusion_monitor.errors import ChartingError
from infusion_monitor.session.lifecycle import SessionChart
from infusion_monitor.session.phases import Phase
from infusion_monitor.store import Database
from infusion_monitor.store.models_clinical import (
    AlarmEventRow,
    CadssFormRow,
    CheckInRow,
    MinuteEntryRow,
    NoteRow,
    PhaseMarkerRow,
)
from infusion_monitor.vitals import Quality, Reading, Vital

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TABLES = (CheckInRow, PhaseMarkerRow, MinuteEntryRow, NoteRow, CadssFormRow, AlarmEventRow)
CHECK_IN = {
    "patient_id": "MRN-0042", "patient_name": "Ada Example", "birth_date": "1980-05-17",
    "weight_kg": 72.5, "dose_mg_per_kg": 0.5, "planned_minutes": 40,
    "attending": "Dr Who", "nurse": "N. Ightingale", "by": "nurse.n",
}


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def chart(db: Database, clock: ManualClock) -> SessionChart:
    sid = db.repository.create_session(source="gui", protocol="datex-s5", started=T0)
    return SessionChart.open(db, sid, clock)


def counts(db: Database) -> dict[str, int]:
    with db.engine.connect() as conn:
        return {t.__tablename__: conn.execute(select(func.count()).select_from(t)).scalar_one()
                for t in TABLES}


def vitals(chart: SessionChart, clock: ManualClock, seconds: int, *, hr: float = 80,
           spo2: float = 98, rr: float | None = None) -> None:
    """One HR and SpO2 value per second (stamped, then the clock moves on)."""
    for _ in range(seconds):
        t = clock.now()
        batch = [Reading(Vital.HR, hr, t_received=t), Reading(Vital.SPO2, spo2, t_received=t)]
        if rr is not None:
            batch.append(Reading(Vital.RR, rr, t_received=t))
        chart.observe(batch)
        clock.advance(1)


def nibp(chart: SessionChart, clock: ManualClock, sys_: float, dia: float,
         quality: Quality = Quality.OK) -> None:
    t = clock.now()
    chart.observe([Reading(Vital.NIBP_SYS, sys_, quality, t_received=t),
                   Reading(Vital.NIBP_DIA, dia, quality, t_received=t),
                   Reading(Vital.NIBP_MEAN, round((sys_ + 2 * dia) / 3), quality, t_received=t)])


def to_infusion(chart: SessionChart, clock: ManualClock, sys_: float = 120,
                dia: float = 80) -> None:
    chart.check_in(**CHECK_IN)
    chart.start_baseline("nurse.n")
    nibp(chart, clock, sys_, dia)
    vitals(chart, clock, 60)
    chart.start_infusion("nurse.n")


def refused(db: Database, call, match: str) -> ChartingError:
    """The call raises ChartingError matching ``match`` and writes no row anywhere."""
    before = counts(db)
    with pytest.raises(ChartingError, match=match) as info:
        call()
    assert counts(db) == before
    return info.value


# -- the whole session --------------------------------------------------------------------------
def test_full_session_from_check_in_to_close(db: Database, chart: SessionChart,
                                             clock: ManualClock) -> None:
    assert chart.state is None and chart.minute_rows() == []
    entry = chart.check_in(**CHECK_IN)
    assert entry.birth_date == date(1980, 5, 17) and chart.state is Phase.CHECK_IN
    chart.start_baseline("nurse.n")
    nibp(chart, clock, 122, 78)
    vitals(chart, clock, 60, hr=76)
    assert chart.assess_baseline().ready
    assert chart.start_infusion("nurse.n") is None  # BP 122/78: no advisory
    start = clock.now()
    base = chart.baseline()
    assert base is not None and base.nibp is not None
    assert (base.nibp.sys, base.nibp.dia, base.hr, base.spo2) == (122, 78, 76, 98)

    for minute in range(45):
        vitals(chart, clock, 30, hr=84)
        if minute % 5 == 0:
            nibp(chart, clock, 130, 84)
        vitals(chart, clock, 30, hr=84)
        chart.chart_minute(minute, 1 if minute < 40 else 0, -1 if minute < 40 else 0, 0,
                           "nurse.n")
    chart.add_note("eyes closed, calm", "nurse.n", phrase="reassured")
    chart.end_infusion("nurse.n")
    vitals(chart, clock, 60, hr=80)
    nibp(chart, clock, 124, 80)
    chart.chart_minute(45, 0, 0, 0, "nurse.n")
    check = chart.discharge("nurse.n")
    assert check.all_met, [i.text for i in check.unmet]
    chart.close("supervisor.s")
    assert chart.state is Phase.CLOSED
    assert [m.phase for m in chart.markers()] == list(Phase)

    rows = chart.minute_rows()
    assert [r.minute for r in rows] == list(range(46))
    assert all(r.assessed for r in rows)
    assert rows[0].vitals.start == start
    rems = chart.rems_summary()
    assert rems.bp_before_dosing == base.nibp
    assert rems.bp_about_40_min is not None and rems.bp_about_40_min.sys == 130
    assert rems.bp_about_40_min.t == start + timedelta(minutes=40, seconds=30)
    assert rems.bp_at_end is not None and (rems.bp_at_end.sys, rems.bp_at_end.dia) == (124, 80)
    assert rems.dissociation and not rems.sedation and not rems.respiratory_depression
    assert rems.lowest_rass == -1 and rems.highest_dissociation == 1
    assert rems.monitored_minutes == 46
    assert rems.vitals_acceptable_before_dosing and rems.vitals_acceptable_before_completion

    # Reopened from the database, the chart reads the same.
    db.repository.insert_readings(chart.session_id, chart.readings())
    again = SessionChart.open(db, chart.session_id, clock)
    assert again.state is Phase.CLOSED
    assert [r.entry for r in again.minute_rows()] == [r.entry for r in rows]
    assert again.rems_summary() == rems


def test_baseline_bp_above_140_90_is_a_low_advisory_not_a_refusal(
        chart: SessionChart, clock: ManualClock) -> None:
    chart.check_in(**CHECK_IN)
    chart.start_baseline("nurse.n")
    nibp(chart, clock, 150, 88)
    vitals(chart, clock, 60)
    advisory = chart.start_infusion("nurse.n")
    assert advisory is not None and advisory.priority == "low"
    assert "150/88" in advisory.message and "attending" in advisory.message
    assert chart.state is Phase.INFUSION
    assert chart.marker(Phase.INFUSION).detail["baseline"]["bp_high"] is True
    assert chart.rems_summary().vitals_acceptable_before_dosing is False


# -- refusals write nothing ---------------------------------------------------------------------
def test_infusion_start_without_baseline_nibp_is_refused(db: Database, chart: SessionChart,
                                                         clock: ManualClock) -> None:
    chart.check_in(**CHECK_IN)
    chart.start_baseline("nurse.n")
    vitals(chart, clock, 60)
    refused(db, lambda: chart.start_infusion("nurse.n"), "no baseline NIBP: take a blood")
    nibp(chart, clock, 400, 80, Quality.ARTIFACT)  # an artifact is no baseline either
    refused(db, lambda: chart.start_infusion("nurse.n"), "no baseline NIBP")
    assert chart.state is Phase.BASELINE


def test_infusion_start_needs_stable_spo2_and_hr(db: Database, chart: SessionChart,
                                                 clock: ManualClock) -> None:
    chart.check_in(**CHECK_IN)
    chart.start_baseline("nurse.n")
    nibp(chart, clock, 120, 80)
    vitals(chart, clock, 2)
    refused(db, lambda: chart.start_infusion("nurse.n"), "SpO2/HR not stable yet")
    vitals(chart, clock, 30, hr=80)
    vitals(chart, clock, 10, hr=110)  # HR jumped by 30: not stable
    refused(db, lambda: chart.start_infusion("nurse.n"), "not stable")
    clock.advance(60)
    vitals(chart, clock, 5, hr=110)
    assert chart.start_infusion("nurse.n") is None


@pytest.mark.parametrize(("minute", "scores", "match"), [
    (0, (5, 0, 0), r"Dissociation must be between 0 and 4; got 5"),
    (0, (0, 7, 0), r"RASS must be between −5 and \+4; got 7"),
    (0, (0, -6, 0), r"RASS must be between −5 and \+4; got -6"),
    (0, (0, 0, 3), r"Distress must be between 0 and 2; got 3"),
    (0, (None, None, None), r"enter at least one score"),
    (0, (1.5, 0, 0), r"Dissociation must be a whole number"),
    (9, (0, 0, 0), r"minute 9 is outside the chart: chart minutes 0–2"),
    (-1, (0, 0, 0), r"minute -1 is outside the chart"),
])
def test_bad_scores_are_refused(db: Database, chart: SessionChart, clock: ManualClock,
                                minute: int, scores: tuple, match: str) -> None:
    to_infusion(chart, clock)
    vitals(chart, clock, 150)
    refused(db, lambda: chart.chart_minute(minute, *scores, by="nurse.n"), match)


def test_discharge_with_unmet_criteria_needs_a_reason(db: Database, chart: SessionChart,
                                                      clock: ManualClock) -> None:
    to_infusion(chart, clock, 120, 80)
    vitals(chart, clock, 60)
    chart.chart_minute(0, 2, -2, 1, "nurse.n")
    chart.end_infusion("nurse.n")
    nibp(chart, clock, 150, 85)
    vitals(chart, clock, 60, hr=120, spo2=91)
    err = refused(db, lambda: chart.discharge("nurse.n"), "discharge criteria not met")
    for part in ("BP within ±20 mmHg", "HR within ±20 %", "SpO2 > 92", "RASS 0",
                 "Dissociation 0", "enter a reason"):
        assert part in str(err)
    refused(db, lambda: chart.discharge("nurse.n", reason="   "), "not met")
    check = chart.discharge("nurse.n", reason="attending reviewed; patient escorted home")
    assert {i.name for i in check.unmet} == {"bp", "hr", "spo2", "rass", "dissociation"}
    detail = chart.marker(Phase.DISCHARGED).detail
    assert detail["reason"] == "attending reviewed; patient escorted home"
    assert [i["met"] for i in detail["check"]["items"]] == [False] * 5
    assert chart.rems_summary().vitals_acceptable_before_completion is False


def test_a_note_on_a_closed_session_is_refused(db: Database, chart: SessionChart,
                                               clock: ManualClock) -> None:
    to_infusion(chart, clock)
    vitals(chart, clock, 60)
    chart.chart_minute(0, 0, 0, 0, "nurse.n")
    note = chart.add_note("all well", "nurse.n")
    chart.end_infusion("nurse.n")
    nibp(chart, clock, 120, 80)
    vitals(chart, clock, 60)
    chart.discharge("nurse.n")
    chart.close("nurse.n")
    refused(db, lambda: chart.add_note("late thought", "nurse.n"), "the session is closed")
    refused(db, lambda: chart.chart_minute(1, 0, 0, 0, "nurse.n"), "the session is closed")
    refused(db, lambda: chart.record_cadss("discharge", dict.fromkeys((1, 2, 6, 7, 15, 22), 0),
                                           "nurse.n"), "between check-in and closing")
    # An addendum (amendment with a reason) is still allowed after closing.
    chart.amend_note(note.id, "all well; patient asked for water", "supervisor.s", "completing")


@pytest.mark.parametrize(("field", "value", "match"), [
    ("patient_id", "  ", "patient ID \\(MRN\\) is required"),
    ("patient_name", "x" * 10_001, "patient name must be at most 256 characters; got 10001"),
    ("patient_name", "Ada\x07", "control character \\(U\\+0007\\)"),
    ("birth_date", "2999-01-01", "is in the future"),
    ("birth_date", "17/05/1980", "YYYY-MM-DD"),
    ("weight_kg", 12, "weight must be between 20 and 300 kg; got 12"),
    ("weight_kg", float("nan"), "weight must be a number between 20 and 300 kg"),
    ("dose_mg_per_kg", 2.5, "planned dose must be between 0.05 and 2 mg/kg; got 2.5"),
    ("planned_minutes", 5, "planned duration must be between 10 and 240 min; got 5"),
    ("planned_minutes", 40.5, "planned duration must be a whole number"),
    ("attending", "", "attending clinician is required"),
    ("by", "a\nb", "who contains a control character"),
])
def test_bad_check_in_is_refused(db: Database, chart: SessionChart, field: str, value: object,
                                 match: str) -> None:
    refused(db, lambda: chart.check_in(**(CHECK_IN | {field: value})), match)
    assert chart.state is None


def test_phases_only_in_order(db: Database, chart: SessionChart, clock: ManualClock) -> None:
    refused(db, lambda: chart.start_baseline("nurse.n"), "check the patient in first")
    chart.check_in(**CHECK_IN)
    refused(db, lambda: chart.check_in(**CHECK_IN), "already checked in")
    refused(db, lambda: chart.end_infusion("nurse.n"), "first start the baseline")
    refused(db, lambda: chart.chart_minute(0, 0, 0, 0, "nurse.n"), "has not started")
    chart.start_baseline("nurse.n")
    refused(db, lambda: chart.start_baseline("nurse.n"), "already Baseline")
    refused(db, lambda: chart.discharge("nurse.n"), "first start the infusion")


# -- amendments -----------------------------------------------------------------------------------
def test_amending_a_minute_keeps_the_original(db: Database, chart: SessionChart,
                                              clock: ManualClock) -> None:
    to_infusion(chart, clock)
    vitals(chart, clock, 60)
    first = chart.chart_minute(0, 2, -1, 0, "nurse.a")
    refused(db, lambda: chart.chart_minute(0, 1, 0, 0, "nurse.b"), "already charted .*amend")
    refused(db, lambda: chart.amend_minute(first.id, 1, 0, 0, "nurse.b", ""), "reason")
    refused(db, lambda: chart.amend_minute(first.id, 2, -1, 0, "nurse.b", "same"),
            "nothing to amend")
    clock.advance(5)
    second = chart.amend_minute(first.id, 1, -1, 0, "nurse.b", "scored the wrong patient")
    refused(db, lambda: chart.amend_minute(first.id, 0, 0, 0, "nurse.b", "x"),
            "already amended")
    row = chart.minute_rows()[0]
    assert row.entry == second and row.history == (first,)
    assert (second.amends_id, second.entered_by, second.reason) == (
        first.id, "nurse.b", "scored the wrong patient")
    assert second.entered_at == first.entered_at + timedelta(seconds=5)
    stored = chart.store.minute_entries(chart.session_id)
    assert stored == [first, second]


def test_undo_phase_is_an_amendment(db: Database, chart: SessionChart,
                                    clock: ManualClock) -> None:
    to_infusion(chart, clock)
    vitals(chart, clock, 30)
    ended = chart.end_infusion("nurse.n")  # pressed by accident
    refused(db, lambda: chart.undo_phase(ended.id, "nurse.n", " "), "reason is required")
    infusion = chart.marker(Phase.INFUSION)
    refused(db, lambda: chart.undo_phase(infusion.id, "nurse.n", "x"), "only the latest")
    undo = chart.undo_phase(ended.id, "nurse.n", "pressed by mistake")
    assert chart.state is Phase.INFUSION
    assert undo.voided and undo.amends_id == ended.id and undo.reason == "pressed by mistake"
    drawn = chart.markers()
    assert [(m.phase, m.voided) for m in drawn] == [
        (Phase.CHECK_IN, False), (Phase.BASELINE, False), (Phase.INFUSION, False),
        (Phase.OBSERVATION, True)]
    assert drawn[-1].undo == undo
    vitals(chart, clock, 30)
    chart.chart_minute(0, 0, 0, 0, "nurse.n")
    refused(db, lambda: chart.undo_phase(chart.marker(Phase.INFUSION).id, "n", "x"),
            "minutes are already charted")
    check_in = chart.marker(Phase.CHECK_IN)
    assert check_in is not None


def test_late_entry_is_stamped_and_marked_late(chart: SessionChart, clock: ManualClock) -> None:
    to_infusion(chart, clock)
    vitals(chart, clock, 60 * 4)
    chart.chart_minute(2, 0, 0, 0, "nurse.n")  # during minute 3: the normal rhythm
    chart.chart_minute(0, 1, 0, 0, "nurse.n")  # 3 minutes after it ended
    rows = chart.minute_rows()
    assert rows[0].late and not rows[2].late
    assert rows[0].entry.entered_at == clock.now()


def test_notes_are_pinned_to_their_minute(chart: SessionChart, clock: ManualClock) -> None:
    chart.check_in(**CHECK_IN)
    before = chart.add_note("anxious before start", "nurse.n")
    chart.start_baseline("nurse.n")
    nibp(chart, clock, 120, 80)
    vitals(chart, clock, 60)
    chart.start_infusion("nurse.n")
    start = clock.now()
    vitals(chart, clock, 150)
    at = start + timedelta(seconds=65)
    note = chart.add_note("", "nurse.n", at=at, phrase="nausea: antiemetic given")
    assert before.minute is None and note.minute == 1 and note.t == at
    assert note.text == "nausea: antiemetic given"
    rows = chart.minute_rows()
    assert [len(r.notes) for r in rows] == [0, 1, 0]
    with pytest.raises(ChartingError, match="in the future"):
        chart.add_note("x", "nurse.n", at=clock.now() + timedelta(seconds=1))
    with pytest.raises(ChartingError, match="note is required"):
        chart.add_note("  ", "nurse.n")


# -- the three-minute reminder (raised and recorded by the alarm engine: test_chart_alarms) -----
def test_unassessed_streak_counts_finished_minutes_in_a_row(chart: SessionChart,
                                                              clock: ManualClock) -> None:
    to_infusion(chart, clock)
    streaks = []
    for _ in range(6 * 60):
        vitals(chart, clock, 1)
        streaks.append(chart.unassessed_streak())
    assert streaks[60 - 2] == 0 and streaks[60 - 1] == 1  # minute 0 ends after 60 s
    assert streaks[3 * 60 - 1] == 3 and streaks[-1] == 6
    chart.chart_minute(5, 0, 0, 0, "nurse.n")  # charting the latest minute ends the streak
    assert chart.unassessed_streak() == 0
    vitals(chart, clock, 60)
    assert chart.unassessed_streak() == 1  # minute 6 finished unassessed: a new streak


def test_unassessed_minutes_stay_not_assessed(chart: SessionChart, clock: ManualClock) -> None:
    to_infusion(chart, clock)
    vitals(chart, clock, 180)
    chart.chart_minute(1, None, 0, None, "nurse.n")
    rows = chart.minute_rows()
    # Minute 3 has just begun: it has its row already.
    assert [r.status for r in rows] == ["not assessed", "assessed"] + ["not assessed"] * 2
    assert (rows[0].dissociation_text, rows[0].rass_text) == ("not assessed", "not assessed")
    assert (rows[1].dissociation_text, rows[1].rass_text) == ("not assessed", "0")


def test_cadss_form_with_total_and_amendment(db: Database, chart: SessionChart,
                                             clock: ManualClock) -> None:
    chart.check_in(**CHECK_IN)
    items = {1: 0, 2: 1, 6: 2, 7: 0, 15: 3, 22: 4}
    refused(db, lambda: chart.record_cadss("baseline", items | {22: 5}, "nurse.n"),
            "item 22 must be between 0 and 4; got 5")
    refused(db, lambda: chart.record_cadss("baseline", {1: 0}, "nurse.n"), "missing 2, 6")
    refused(db, lambda: chart.record_cadss("30min", items, "nurse.n"), "time point")
    form = chart.record_cadss("baseline", items, "nurse.n")
    assert form.total == 10
    fixed = chart.amend_cadss(form.id, items | {22: 0}, "nurse.n", "misheard item 22")
    assert fixed.total == 6 and chart.cadss_forms() == [(form, fixed)]


def test_amend_check_in_restates_it(db: Database, chart: SessionChart) -> None:
    first = chart.check_in(**CHECK_IN)
    refused(db, lambda: chart.amend_check_in(by="n", reason="x", weight_kg=500), "weight")
    refused(db, lambda: chart.amend_check_in(by="n", reason="x", shoe_size=9), "shoe_size")
    second = chart.amend_check_in(by="nurse.n", reason="weighed again", weight_kg=74)
    assert chart.check_in_details() == second and second.amends_id == first.id
    assert second.patient_name == first.patient_name and second.weight_kg == 74
    assert chart.check_in_history() == (first, second)


def test_respiratory_depression_and_sedation_in_rems(chart: SessionChart,
                                                     clock: ManualClock) -> None:
    to_infusion(chart, clock)
    vitals(chart, clock, 30)
    vitals(chart, clock, 14, spo2=90)  # 14 s below 92 then recovery: not an episode
    vitals(chart, clock, 30)
    assert not chart.rems_summary().respiratory_depression
    vitals(chart, clock, 16, spo2=89)
    vitals(chart, clock, 10)
    chart.chart_minute(1, 0, -2, 0, "nurse.n")
    rems = chart.rems_summary()
    assert rems.respiratory_depression and "lowest 89" in rems.respiratory_detail
    assert rems.sedation and rems.lowest_rass == -2


def test_rr_below_10_is_respiratory_depression(chart: SessionChart, clock: ManualClock) -> None:
    to_infusion(chart, clock)
    vitals(chart, clock, 30, rr=14)
    assert not chart.rems_summary().respiratory_depression
    vitals(chart, clock, 1, rr=8)
    assert "RR 8 < 10" in chart.rems_summary().respiratory_detail


def test_listeners_see_every_written_row(chart: SessionChart, clock: ManualClock,
                                         caplog: pytest.LogCaptureFixture) -> None:
    seen: list[object] = []
    chart.subscribe(seen.append)
    chart.subscribe(lambda row: 1 / 0)  # a broken listener is logged, the action still stands
    to_infusion(chart, clock)
    vitals(chart, clock, 60 * 3)
    assert chart.unassessed_streak() == 3
    entry = chart.chart_minute(3, 0, 0, 0, "nurse.n")
    assert chart.unassessed_streak() == 0
    assert [type(r).__name__ for r in seen] == [
        "CheckIn", "PhaseMarker", "PhaseMarker", "PhaseMarker", "MinuteEntry"]
    assert seen[-1] == entry and "chart listener" in caplog.text
