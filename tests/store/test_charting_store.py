"""Charting rows go in and come back exactly on SQLite and PostgreSQL, and are never UPDATEd."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event

from infusion_monitor.clock import ManualClock
from infusion_monitor.session.lifecycle import SessionChart
from infusion_monitor.session.phases import Phase
from infusion_monitor.store import Database
from infusion_monitor.store.charting import ChartStore, chains, latest, versions
from infusion_monitor.vitals import Reading, Vital

T0 = datetime(2026, 3, 14, 9, 26, 53, 589793, tzinfo=UTC)
CHARTING_TABLES = ("checkins", "phase_markers", "minute_entries", "notes", "cadss_forms",
                   "alarm_events")


@pytest.fixture
def store(db: Database) -> ChartStore:
    return ChartStore(db.engine)


def new_session(db: Database) -> int:
    return db.repository.create_session(source="gui", protocol="datex-s5", started=T0)


def test_rows_round_trip_exactly(db: Database, store: ChartStore) -> None:
    sid = new_session(db)
    ci, marker = store.add_check_in(
        sid, patient_id="MRN-1", patient_name="Zoë Ñandú", birth_date=date(1970, 1, 2),
        weight_kg=70.25, dose_mg_per_kg=0.5, planned_minutes=40, attending="Dr A", nurse="N B",
        entered=T0, by="n.b", with_marker=True)
    assert store.check_ins(sid) == [ci] and store.markers(sid) == [marker]
    assert marker is not None and marker.phase is Phase.CHECK_IN and marker.t == T0
    m = store.add_marker(sid, phase=Phase.INFUSION, t=T0, detail={"baseline": {"hr": 71.5}},
                         entered=T0, by="n.b")
    assert store.markers(sid)[-1] == m and m.detail == {"baseline": {"hr": 71.5}}
    e1 = store.add_minute_entry(sid, minute=3, dissociation=2, rass=-5, distress=None,
                                entered=T0 + timedelta(microseconds=1), by="n.b")
    e2 = store.add_minute_entry(sid, minute=3, dissociation=1, rass=-5, distress=0,
                                entered=T0, by="n.c", amends_id=e1.id, reason="typo")
    assert store.minute_entries(sid) == [e1, e2]
    note = store.add_note(sid, t=T0, minute=None, text="line 1\nline 2 – ü", entered=T0, by="x")
    assert store.notes(sid) == [note]
    form = store.add_cadss(sid, timepoint="40min", items={1: 1, 2: 2, 6: 3, 7: 4, 15: 0, 22: 1},
                           t=T0, entered=T0, by="x")
    assert store.cadss_forms(sid) == [form] and form.total == 11
    assert store.minute_entries(new_session(db)) == []  # per session


def test_version_chains(db: Database, store: ChartStore) -> None:
    sid = new_session(db)
    add = store.add_minute_entry
    a = add(sid, minute=0, dissociation=0, rass=0, distress=0, entered=T0, by="n")
    b = add(sid, minute=1, dissociation=0, rass=0, distress=0, entered=T0, by="n")
    a2 = add(sid, minute=0, dissociation=1, rass=0, distress=0, entered=T0, by="n",
             amends_id=a.id, reason="r")
    a3 = add(sid, minute=0, dissociation=2, rass=0, distress=0, entered=T0, by="n",
             amends_id=a2.id, reason="r")
    rows = store.minute_entries(sid)
    assert chains(rows) == [(a, a2, a3), (b,)]
    assert latest(rows) == [a3, b]
    assert versions(rows, a2.id) == (a, a2, a3) and versions(rows, 999) == ()


def test_a_whole_session_never_updates_or_deletes_charting_rows(db: Database) -> None:
    statements: list[str] = []

    def spy(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", spy)
    try:
        clock = ManualClock(T0)
        chart = SessionChart.open(db, new_session(db), clock)
        chart.check_in(patient_id="MRN-2", patient_name="P", birth_date="1990-01-01",
                       weight_kg=80, dose_mg_per_kg=0.5, planned_minutes=40, attending="A",
                       nurse="N", by="n")
        chart.amend_check_in(by="n", reason="weighed", weight_kg=81)
        chart.start_baseline("n")

        def second(hr: float = 75) -> None:
            t = clock.now()
            chart.observe([Reading(Vital.HR, hr, t_received=t),
                           Reading(Vital.SPO2, 98, t_received=t)])
            clock.advance(1)

        chart.observe([Reading(v, x, t_received=clock.now()) for v, x in
                       ((Vital.NIBP_SYS, 120), (Vital.NIBP_DIA, 80), (Vital.NIBP_MEAN, 93))])
        for _ in range(60):
            second()
        chart.record_cadss("baseline", dict.fromkeys((1, 2, 6, 7, 15, 22), 0), "n")
        chart.start_infusion("n")
        for _ in range(4 * 60):
            second()
        entry = chart.chart_minute(4, 1, -1, 0, "n")
        chart.amend_minute(entry.id, 1, 0, 0, "n", "rescored")
        note = chart.add_note("calm", "n")
        chart.amend_note(note.id, "calm, eyes closed", "n", "more precise")
        marker = chart.end_infusion("n")
        chart.undo_phase(marker.id, "n", "too early")
        chart.end_infusion("n")
        chart.observe([Reading(v, x, t_received=clock.now()) for v, x in
                       ((Vital.NIBP_SYS, 125), (Vital.NIBP_DIA, 82), (Vital.NIBP_MEAN, 96))])
        for _ in range(60):
            second()
        chart.chart_minute(5, 0, 0, 0, "n")
        chart.discharge("n")
        chart.close("s")
    finally:
        event.remove(db.engine, "before_cursor_execute", spy)
    pattern = re.compile(r"^\s*(UPDATE|DELETE)\b.*\b(" + "|".join(CHARTING_TABLES) + r")\b",
                         re.IGNORECASE | re.DOTALL)
    assert [s for s in statements if pattern.search(s)] == []
    assert sum(s.lstrip().upper().startswith("INSERT") for s in statements) >= 12
