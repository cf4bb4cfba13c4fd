"""Sign-off (issue 5): a supervisor's attestation locks the record; later changes are addenda.

Every refusal is checked to write nothing in any table, sign-offs included.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from infusion_monitor.clock import ManualClock
from infusion_monitor.errors import ChartingError
from infusion_monitor.session.lifecycle import SessionChart
from infusion_monitor.session.locking import LockState
from infusion_monitor.session.signoff import lock_state, sign_off
from infusion_monitor.store import Database
from infusion_monitor.store.models_clinical import (
    AlarmEventRow,
    CadssFormRow,
    CheckInRow,
    MinuteEntryRow,
    NoteRow,
    PhaseMarkerRow,
    SignOffRow,
)
from infusion_monitor.store.signoff import SignOffStore
from infusion_monitor.vitals import Reading, Vital

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TABLES = (CheckInRow, PhaseMarkerRow, MinuteEntryRow, NoteRow, CadssFormRow, AlarmEventRow,
          SignOffRow)
NURSE = "nurse.n"
CHECK_IN = {
    "patient_id": "MRN-0042", "patient_name": "Ada Example", "birth_date": "1980-05-17",
    "weight_kg": 72.5, "dose_mg_per_kg": 0.5, "planned_minutes": 40,
    "attending": "Dr Who", "nurse": "N. Ightingale", "by": NURSE,
}
SUPERVISOR = {"signed_by": "sup.s", "printed_name": "Dr S. Upervisor", "role": "supervisor"}
CADSS = {1: 0, 2: 0, 6: 0, 7: 0, 15: 0, 22: 0}
LOCKED = r"This session was signed off by Dr S\. Upervisor on 2026-03-02 \d\d:\d\d UTC: " \
         r"changes are addenda — amend an entry with a reason"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


def counts(db: Database) -> dict[str, int]:
    with db.engine.connect() as conn:
        return {t.__tablename__: conn.execute(select(func.count()).select_from(t)).scalar_one()
                for t in TABLES}


def refused(db: Database, call, match: str) -> ChartingError:
    before = counts(db)
    with pytest.raises(ChartingError, match=match) as info:
        call()
    assert counts(db) == before
    return info.value


def vitals(chart: SessionChart, clock: ManualClock, seconds: int) -> None:
    for _ in range(seconds):
        t = clock.now()
        chart.observe([Reading(Vital.HR, 80, t_received=t), Reading(Vital.SPO2, 98, t_received=t)])
        clock.advance(1)


def charted_session(db: Database, clock: ManualClock) -> SessionChart:
    """Checked in, infused for 5 minutes (minutes 0-2 charted), observed, discharged."""
    sid = db.repository.create_session(source="gui", protocol="datex-s5", started=T0)
    chart = SessionChart.open(db, sid, clock)
    chart.check_in(**CHECK_IN)
    chart.start_baseline(NURSE)
    t = clock.now()
    chart.observe([Reading(Vital.NIBP_SYS, 120, t_received=t),
                   Reading(Vital.NIBP_DIA, 80, t_received=t),
                   Reading(Vital.NIBP_MEAN, 93, t_received=t)])
    vitals(chart, clock, 60)
    chart.start_infusion(NURSE)
    vitals(chart, clock, 5 * 60)
    for minute in range(3):
        chart.chart_minute(minute, 1, 0, 0, NURSE)
    chart.add_note("calm", NURSE)
    chart.record_cadss("baseline", CADSS, NURSE)
    chart.end_infusion(NURSE)
    vitals(chart, clock, 60)
    chart.discharge(NURSE, reason="attending reviewed")
    return chart


@pytest.fixture
def finished(db: Database, clock: ManualClock) -> SessionChart:
    """A discharged session whose recording has stopped: ready to sign."""
    chart = charted_session(db, clock)
    db.repository.end_session(chart.session_id, clock.now())
    clock.advance(60)
    return chart


def sign(db: Database, chart: SessionChart, clock: ManualClock, **kw: object):
    args = {**SUPERVISOR, "meaning": "reviewed"} | kw
    return sign_off(db, chart.session_id, clock=clock, **args)  # type: ignore[arg-type]


# -- the store ----------------------------------------------------------------------------------
def test_store_adds_and_lists_sign_offs(db: Database, finished: SessionChart) -> None:
    store = SignOffStore(db.engine)
    assert store.list(finished.session_id) == []
    first = store.add(finished.session_id, "sup.s", "  Dr S. Upervisor ", "Supervisor",
                      "reviewed", None, T0)
    second = store.add(finished.session_id, "sup.s", "Dr S. Upervisor", "supervisor",
                       "reviewed_with_findings", "minute 2 late", T0.replace(hour=11))
    assert first.printed_name == "Dr S. Upervisor" and first.role == "supervisor"
    assert first.meaning_label == "Reviewed" and first.signed_at == T0
    assert second.meaning_label == "Reviewed with findings" and second.comment == "minute 2 late"
    assert store.list(finished.session_id) == [first, second]


@pytest.mark.parametrize(("kw", "match"), [
    ({"role": "nurse"}, "only a supervisor can sign off"),
    ({"role": "attending"}, "only a supervisor can sign off"),
    ({"meaning": "approved"}, "meaning of the signature must be one of reviewed, "),
    ({"meaning": "reviewed_with_findings"}, "needs a comment stating the findings"),
    ({"meaning": "reviewed_with_findings", "comment": "  "}, "needs a comment"),
    ({"printed_name": ""}, "printed name is required"),
    ({"printed_name": "x" * 257}, "printed name must be at most 256 characters"),
    ({"printed_name": "Dr\x07 Bell"}, "printed name contains a control character"),
])
def test_store_refuses_an_incomplete_signature(db: Database, finished: SessionChart,
                                               kw: dict[str, object], match: str) -> None:
    args = {**SUPERVISOR, "meaning": "reviewed", "comment": None} | kw
    store = SignOffStore(db.engine)
    refused(db, lambda: store.add(finished.session_id, at=T0, **args), match)  # type: ignore


# -- signing ------------------------------------------------------------------------------------
def test_an_open_session_cannot_be_signed(db: Database, clock: ManualClock) -> None:
    chart = charted_session(db, clock)
    # Discharged, but the recording still runs.
    refused(db, lambda: sign(db, chart, clock), "still recording: stop the recording")
    sid = db.repository.create_session(source="gui", protocol="datex-s5", started=T0)
    db.repository.end_session(sid, clock.now())
    blank = SessionChart.open(db, sid, clock)
    refused(db, lambda: sign(db, blank, clock), r"still open \(not checked in\): discharge")
    blank.check_in(**CHECK_IN)
    refused(db, lambda: sign(db, blank, clock), r"still open \(in Check-in\): discharge")


def test_sign_off_checks_the_signer_and_returns_the_sign_off(
        db: Database, finished: SessionChart, clock: ManualClock) -> None:
    refused(db, lambda: sign(db, finished, clock, role="nurse"), "only a supervisor")
    refused(db, lambda: sign(db, finished, clock, meaning="reviewed_with_findings"),
            "needs a comment")
    s = sign(db, finished, clock, meaning="reviewed_with_findings", comment="NIBP gap at 09:10")
    assert (s.printed_name, s.meaning, s.comment) == ("Dr S. Upervisor", "reviewed_with_findings",
                                                      "NIBP gap at 09:10")
    assert s.signed_at == clock.now()
    assert SignOffStore(db.engine).list(finished.session_id) == [s]


# -- locking ------------------------------------------------------------------------------------
def test_a_signed_session_refuses_every_new_entry_and_writes_nothing(
        db: Database, finished: SessionChart, clock: ManualClock) -> None:
    sign(db, finished, clock)  # signed elsewhere: this chart object learns it on its next write
    clock.advance(60)
    chart = finished
    assert 3 <= chart.minute_rows()[-1].vitals.minute  # minutes 3.. exist and are uncharted
    refused(db, lambda: chart.chart_minute(3, 0, 0, 0, NURSE), LOCKED)
    refused(db, lambda: chart.add_note("late thought", NURSE), LOCKED)
    refused(db, lambda: chart.record_cadss("discharge", CADSS, NURSE), LOCKED)
    refused(db, lambda: chart.close(NURSE), LOCKED)
    refused(db, lambda: chart.check_in(**CHECK_IN), LOCKED)
    marker = chart.marker(chart.state)  # type: ignore[arg-type]
    assert marker is not None
    refused(db, lambda: chart.undo_phase(marker.id, NURSE, "oops"), LOCKED)
    reopened = SessionChart.open(db, chart.session_id, clock)
    refused(db, lambda: reopened.chart_minute(4, 0, 0, 0, NURSE), LOCKED)
    assert reopened.lock_state() is LockState.SIGNED and reopened.addenda() == []


def test_amendments_after_sign_off_are_addenda_and_a_second_sign_off_covers_them(
        db: Database, finished: SessionChart, clock: ManualClock) -> None:
    chart = finished
    sid = chart.session_id
    assert lock_state(db, sid) is LockState.UNSIGNED and chart.lock_state() is LockState.UNSIGNED
    first = sign(db, chart, clock)
    chart.reload()
    assert chart.signoffs() == [first] and chart.lock_state() is LockState.SIGNED
    assert lock_state(db, sid) is LockState.SIGNED

    clock.advance(120)
    entry = next(r.entry for r in chart.minute_rows() if r.vitals.minute == 1)
    assert entry is not None
    chart.amend_minute(entry.id, 2, 0, 0, NURSE, "charted on the wrong row")
    clock.advance(1)
    note = chart.notes()[0][-1]
    chart.amend_note(note.id, "calm, eyes closed", NURSE, "more precise")
    clock.advance(1)
    chart.amend_cadss(chart.cadss_forms()[0][-1].id, {**CADSS, 1: 1}, NURSE, "item 1 misread")
    clock.advance(1)
    chart.amend_check_in(by=NURSE, reason="weight re-measured", weight_kg=73.0)
    clock.advance(1)
    chart.add_addendum_note("patient phoned: well at home", NURSE, "follow-up call")
    addenda = chart.addenda()
    assert [a.kind for a in addenda] == ["minute entry", "note", "CADSS-6 form", "check-in",
                                         "note"]
    assert all(not a.signed and a.entered_by == NURSE for a in addenda)
    assert addenda[-1].reason == "follow-up call"
    assert chart.lock_state() is LockState.SIGNED_WITH_UNSIGNED_ADDENDA
    assert lock_state(db, sid) is LockState.SIGNED_WITH_UNSIGNED_ADDENDA
    # The amended rows are still there in full, each with its earlier version.
    assert len(chart.check_in_history()) == 2 and len(chart.notes()[0]) == 2

    clock.advance(60)
    second = sign(db, chart, clock, meaning="reviewed_with_findings",
                  comment="minute 1 corrected after review")
    chart.reload()
    assert chart.signoffs() == [first, second]
    assert all(a.signed for a in chart.addenda()) and len(chart.addenda()) == 5
    assert lock_state(db, sid) is LockState.SIGNED
    # Still locked after the second sign-off; a later addendum is unsigned again.
    refused(db, lambda: chart.add_note("x", NURSE), r"signed off by Dr S\. Upervisor")
    clock.advance(1)
    chart.add_addendum_note("one more", NURSE, "late result")
    assert lock_state(db, sid) is LockState.SIGNED_WITH_UNSIGNED_ADDENDA


def test_an_addendum_note_needs_a_signed_session_and_a_reason(
        db: Database, finished: SessionChart, clock: ManualClock) -> None:
    refused(db, lambda: finished.add_addendum_note("text", NURSE, "why"),
            "not signed off, so there is nothing to add an addendum to")
    sign(db, finished, clock)
    clock.advance(1)
    refused(db, lambda: finished.add_addendum_note("text", NURSE, " "), "reason is required")
    refused(db, lambda: finished.add_addendum_note("", NURSE, "why"), "addendum is required")
