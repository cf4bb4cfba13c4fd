"""Many realistic sessions for the session browser's tests and benchmark, copied in bulk.

One fully simulated session (the template: readings, device events, markers, minute entries,
notes, CADSS, alarm events) is copied ``n`` times with ``INSERT ... SELECT``, each copy shifted
in time (ten sessions a day, going back from the template's day) and given its own check-in
(patient, nurse, attending from small pools). Copies differ: every third has only its low
(charting) alarms, every fourth has its minute entries only up to minute 20, every second is
signed off. Readings are copied into only the first ``with_readings`` copies: 10,000 sessions of
~2,700 readings would be 27 M rows, while the browser never reads a reading.

Ids are kept relational: a copied row's id (and ``amends_id``) is the template's plus
``i * STRIDE``, so amendment chains stay within their own session.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, Table, insert, select, text

from infusion_monitor.store.models import DeviceEventRow, ReadingRow, SessionRow
from infusion_monitor.store.models_clinical import (
    AlarmEventRow,
    CadssFormRow,
    CheckInRow,
    MinuteEntryRow,
    NoteRow,
    PhaseMarkerRow,
    SignOffRow,
)

STRIDE = 100_000  # > the rows of any table in one template session
DAY_US = 86_400_000_000
SLOT_US = 80 * 60_000_000  # sessions of a day start 80 minutes apart
PER_DAY = 10
FIRST = ("Ada", "Ben", "Cleo", "Dev", "Eva", "Femi", "Gus", "Hana", "Ivo", "Jun", "Kai", "Lena",
         "Milo", "Nia", "Omar", "Pia", "Quin", "Rosa", "Sam", "Tess")
LAST = ("Example", "Okafor", "Lindqvist", "Moreau", "Tanaka", "Silva", "Novak", "Haddad",
        "Kowalski", "Nguyen", "O'Brien", "Rossi", "Schmidt", "Patel", "Garcia", "Ivanova",
        "Mensah", "Larsen", "Costa", "Weber")
NURSES = tuple(f"{n} (RN)" for n in ("R. Nurse", "K. Adeyemi", "L. Berg", "M. Chen", "P. Dubois",
                                      "S. Evans", "T. Fischer", "V. Gomez", "W. Hall",
                                      "Y. Ito", "Z. Jones", "A. Kim"))
ATTENDINGS = ("Dr A. Tending", "Dr B. Osei", "Dr C. Varga", "Dr D. Lund", "Dr E. Park")
PATIENTS = 2_500


def patient(i: int) -> tuple[str, str]:
    """The ``i``-th copy's patient: (id, name); about four sessions per patient."""
    k = i % PATIENTS
    return f"MRN-{10000 + k}", f"{FIRST[k % len(FIRST)]} {LAST[(k // len(FIRST)) % len(LAST)]}"


# table -> extra WHERE over the template row ``t`` and the copy number ``n.i``
_CHILDREN: tuple[tuple[Any, str], ...] = (
    (PhaseMarkerRow, ""),
    (MinuteEntryRow, "AND (n.i % 4 != 0 OR t.minute < 20)"),
    (NoteRow, ""),
    (CadssFormRow, ""),
    (DeviceEventRow, ""),
    (AlarmEventRow, "AND (n.i % 3 != 0 OR t.condition = 'charting_overdue')"),
)
_TIMES = {"t_us", "t_device_us", "entered_us"}


def _copy_sql(table: Table, template: int, base: int, where: str, shift: str) -> str:
    cols = [c.name for c in table.columns]
    exprs = []
    for c in cols:
        if c in ("id", "amends_id"):
            exprs.append(f"t.{c} + n.i * {STRIDE}")
        elif c == "session_id":
            exprs.append(f"{base} + n.i")
        elif c in _TIMES:
            exprs.append(f"t.{c} + {shift}")
        else:
            exprs.append(f"t.{c}")
    return (f"INSERT INTO {table.name} ({', '.join(cols)}) SELECT {', '.join(exprs)} "
            f"FROM {table.name} t JOIN seed_n n ON 1 = 1 WHERE t.session_id = {template} {where}")


def seed_copies(engine: Engine, template: int, n: int, *, with_readings: int = 3) -> list[int]:
    """Add ``n`` copies of session ``template``; returns their ids (newest first in time)."""
    with engine.begin() as conn:
        tmpl = conn.execute(select(SessionRow).where(SessionRow.id == template)).one()
        base = conn.execute(select(SessionRow.id).order_by(SessionRow.id.desc())).first()[0]
        days = (n + PER_DAY - 1) // PER_DAY
        # Copy i (1..n) starts on day (i-1) // PER_DAY before the template's, at its slot.
        shift = (f"((n.i - 1) / {PER_DAY} - {days}) * {DAY_US} "
                 f"+ ((n.i - 1) % {PER_DAY}) * {SLOT_US}")

        def shifted(i: int) -> int:
            return ((i - 1) // PER_DAY - days) * DAY_US + ((i - 1) % PER_DAY) * SLOT_US

        duration = (tmpl.ended_us or tmpl.started_us) - tmpl.started_us
        conn.execute(insert(SessionRow), [
            {"id": base + i, "uid": f"seed-{base + i}", "workstation_id": f"bay-{i % 4 + 1}",
             "patient_id": patient(i)[0], "source": tmpl.source, "protocol": tmpl.protocol,
             "port": tmpl.port, "started_us": tmpl.started_us + shifted(i),
             "ended_us": tmpl.started_us + shifted(i) + duration, "note": None}
            for i in range(1, n + 1)
        ])
        conn.execute(insert(CheckInRow), [
            {"id": i * STRIDE + 1, "session_id": base + i, "patient_id": patient(i)[0],
             "patient_name": patient(i)[1], "birth_date": f"{1950 + i % 50}-0{1 + i % 9}-1{i % 9}",
             "weight_kg": 55.0 + i % 40, "dose_mg_per_kg": 0.5, "planned_minutes": 40,
             "attending": ATTENDINGS[i % len(ATTENDINGS)], "nurse": NURSES[i % len(NURSES)],
             "entered_us": tmpl.started_us + shifted(i), "entered_by": NURSES[i % len(NURSES)],
             "amends_id": None, "reason": None}
            for i in range(1, n + 1)
        ])
        conn.execute(text("CREATE TEMPORARY TABLE seed_n (i INTEGER PRIMARY KEY)"))
        conn.execute(text("INSERT INTO seed_n (i) VALUES (:i)"),
                     [{"i": i} for i in range(1, n + 1)])
        for model, where in _CHILDREN:
            conn.execute(text(_copy_sql(model.__table__, template, base, where, shift)))
        conn.execute(text(_copy_sql(ReadingRow.__table__, template, base,
                                    f"AND n.i <= {with_readings}", shift)))
        conn.execute(insert(SignOffRow), [
            {"id": i * STRIDE + 1, "session_id": base + i, "signed_by": "supervisor",
             "printed_name": "Dr S. Upervisor", "role": "supervisor", "meaning": "reviewed",
             "comment": None, "signed_us": tmpl.started_us + shifted(i) + duration + DAY_US}
            for i in range(2, n + 1, 2)
        ])
        conn.execute(text("DROP TABLE seed_n"))
    return [base + i for i in range(1, n + 1)]
