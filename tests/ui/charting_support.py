"""Shared set-up for the charting widget tests: a real SQLite chart under a ManualClock."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select

from infusion_monitor.clock import ManualClock
from infusion_monitor.session.lifecycle import SessionChart
from infusion_monitor.store import Database
from infusion_monitor.store.models_clinical import (
    AlarmEventRow,
    CadssFormRow,
    CheckInRow,
    MinuteEntryRow,
    NoteRow,
    PhaseMarkerRow,
)
from infusion_monitor.vitals import Reading, Vital

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
TABLES = (CheckInRow, PhaseMarkerRow, MinuteEntryRow, NoteRow, CadssFormRow, AlarmEventRow)
NURSE = "N. Ightingale"
CHECK_IN = {
    "patient_id": "MRN-0042", "patient_name": "Ada Example", "birth_date": "1980-05-17",
    "weight_kg": 72.5, "dose_mg_per_kg": 0.5, "planned_minutes": 40,
    "attending": "Dr Who", "nurse": NURSE,
}


def counts(db: Database) -> dict[str, int]:
    """Rows in every charting table: a refused action must leave these unchanged."""
    with db.engine.connect() as conn:
        return {t.__tablename__: conn.execute(select(func.count()).select_from(t)).scalar_one()
                for t in TABLES}


def vitals(chart: SessionChart, clock: ManualClock, seconds: int, *, hr: float = 80,
           spo2: float = 98) -> None:
    """One HR and SpO2 value per second (stamped, then the clock moves on)."""
    for _ in range(seconds):
        t = clock.now()
        chart.observe([Reading(Vital.HR, hr, t_received=t),
                       Reading(Vital.SPO2, spo2, t_received=t)])
        clock.advance(1)


def nibp(chart: SessionChart, clock: ManualClock, sys_: float, dia: float) -> None:
    t = clock.now()
    chart.observe([Reading(Vital.NIBP_SYS, sys_, t_received=t),
                   Reading(Vital.NIBP_DIA, dia, t_received=t),
                   Reading(Vital.NIBP_MEAN, round((sys_ + 2 * dia) / 3), t_received=t)])


def to_baseline(chart: SessionChart) -> None:
    chart.check_in(**CHECK_IN, by="admin")
    chart.start_baseline(NURSE)


def to_infusion(chart: SessionChart, clock: ManualClock, sys_: float = 120,
                dia: float = 80) -> None:
    """Checked in, baseline taken, infusion started at ``clock.now()``."""
    to_baseline(chart)
    nibp(chart, clock, sys_, dia)
    vitals(chart, clock, 60)
    chart.start_infusion(NURSE)


def open_chart(db: Database, clock: ManualClock) -> SessionChart:
    """A new session's chart, started at the clock's time."""
    sid = db.repository.create_session(source="gui", protocol="datex-s5", started=clock.now())
    return SessionChart.open(db, sid, clock)
