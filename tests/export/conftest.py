"""A realistic recorded session for the export tests, built through the real core.

The simulator's ``hypertensive`` scenario is encoded as real Datex frames, decoded by the codec,
stamped by the recorder, stored by the writer, charted through ``SessionChart`` and judged by the
alarm monitor, all under a manual clock: a 75-minute session takes a few seconds. It is built
once per engine (a SQLite file, then a scratch PostgreSQL database) and shared read-only.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from infusion_monitor.clock import ManualClock
from infusion_monitor.devices.datex_s5 import DatexS5Codec
from infusion_monitor.errors import ChartingError
from infusion_monitor.session.alarm_monitor import AlarmMonitor
from infusion_monitor.session.chart_alarms import ChartAlarmBridge
from infusion_monitor.session.lifecycle import SessionChart
from infusion_monitor.session.recorder import Recorder
from infusion_monitor.store import Database, StoreWriter, open_database
from simulators.datex import DatexS5Stream
from simulators.patient import PatientModel
from tests.pgdb import ENGINES, database_url

T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
NURSE = "R. Nurse"
ATTENDING = "Dr A. Tending"
CHECK_IN = {
    "patient_id": "MRN-0042", "patient_name": "Ada Example", "birth_date": "1980-05-17",
    "weight_kg": 72.5, "dose_mg_per_kg": 0.5, "planned_minutes": 40,
    "attending": ATTENDING, "nurse": NURSE, "by": NURSE,
}
DURATION_S = 4500  # baseline 0-300, infusion 300-2700, observation 2700-4500


def scores(minute: int) -> tuple[int, int, int] | None:
    """What the nurse charts: every 5th minute and a few more; other minutes stay unassessed."""
    if minute % 5 and minute not in (21, 22):
        return None
    if minute < 10:
        return (1, 0, 0)
    if minute < 35:
        return (2, -1, 1 if minute in (20, 21) else 0)
    return (0, 0, 0)


@dataclass(frozen=True)
class SimulatedSession:
    database: Database
    session_id: int
    nurse: str = NURSE
    attending: str = ATTENDING
    start: datetime = T0
    amended_minute: int = 10
    amend_reason: str = "charted on the wrong row"
    note_text: str = "repeated NIBP: 186/112 <b>&amp;</b> called attending"
    response_text: str = "repeated NIBP: 204/122; attending at the chair"


def build_session(url: str) -> SimulatedSession:
    """The session, stored in the (empty) database at ``url``; its ``database`` stays open."""
    database = open_database(url)
    clock = ManualClock(T0)
    repo = database.repository
    sid = repo.create_session(source="gui", protocol="datex-s5", port="/dev/ttyUSB0", started=T0)
    writer = StoreWriter(repo)
    chart = SessionChart.open(database, sid, clock)
    alarms = AlarmMonitor(sid, clock=clock, sink=writer)  # ticked by hand below
    bridge = ChartAlarmBridge(chart, alarms)
    recorder = Recorder(sid, sink=writer, clock=clock)
    recorder.subscribe(chart.observe)
    recorder.subscribe(alarms.on_events)
    stream = DatexS5Stream(PatientModel("hypertensive", seed=4), int(T0.timestamp()))
    codec = DatexS5Codec()
    session = SimulatedSession(database, sid)

    chart.check_in(**CHECK_IN)
    chart.start_baseline(NURSE)
    for t in range(0, DURATION_S + 1, 5):
        recorder.handle(codec.receive_data(stream.frame_at(t).data))
        alarms.tick()
        bridge.update()
        if t == 120:
            chart.record_cadss("baseline", {1: 0, 2: 0, 6: 0, 7: 0, 15: 0, 22: 0}, NURSE)
        if t == 300:
            chart.start_infusion(NURSE)
        if 300 < t <= 2700 + 1700 and (t - 300) % 60 == 10:  # each minute, just after it ends
            minute = (t - 300) // 60 - 1
            planned = scores(minute)
            if planned is not None:
                chart.chart_minute(minute, *planned, NURSE)
        if t == 1040:
            entry = next(r.entry for r in chart.minute_rows() if r.vitals.minute == 10)
            chart.amend_minute(entry.id, 1, 0, 0, NURSE, session.amend_reason)
        if t == 1020:
            chart.add_note("eyes closed, calm", NURSE, phrase="eyes closed, calm")
        if t == 2200:
            chart.add_note(session.note_text, NURSE)
        if t == 2500:
            chart.record_cadss("40min", {1: 2, 2: 1, 6: 2, 7: 1, 15: 1, 22: 0}, NURSE)
        if t == 2550:
            alarms.acknowledge_all(by=NURSE)
            uid = next(a.uid for a in alarms.history() if a.condition == "sbp_high_severe")
            alarms.add_response(uid, session.response_text, by=NURSE)
        if t == 2600:
            alarms.acknowledge_attending(by=ATTENDING, role="attending")
        if t == 2700:
            chart.end_infusion(NURSE)
        clock.advance(5)
    chart.record_cadss("discharge", {1: 0, 2: 0, 6: 0, 7: 0, 15: 0, 22: 0}, NURSE)
    try:
        chart.discharge(NURSE)
    except ChartingError:
        chart.discharge(NURSE, reason="attending reviewed; BP trending down")
    chart.close(NURSE)
    alarms.stop()
    writer.close()
    repo.end_session(sid, clock.now())
    return session


@pytest.fixture(scope="session", params=ENGINES)
def simulated_session(request: pytest.FixtureRequest,
                      tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatedSession]:
    """A closed 75-minute hypertensive session: charted, amended, alarmed (read-only!)."""
    with database_url(request.param, tmp_path_factory.mktemp("simulated")) as url:
        session = build_session(url)
        yield session
        session.database.close()


SUPERVISOR = "Dr S. Upervisor"
FINDINGS = "minutes 36-39 not assessed; BP trend reviewed"
ADDENDUM = "patient phoned next morning: well at home"


@pytest.fixture
def signed_session(db_url: str) -> Iterator[SimulatedSession]:
    """A fresh copy of the simulated session (not the shared read-only one), signed off with
    findings by a supervisor, then given one addendum note that is not yet signed off."""
    from datetime import timedelta

    from infusion_monitor.session.signoff import sign_off

    session = build_session(db_url)
    clock = ManualClock(T0 + timedelta(hours=2))
    sign_off(session.database, session.session_id, signed_by="sup.s", printed_name=SUPERVISOR,
             role="supervisor", meaning="reviewed_with_findings", comment=FINDINGS, clock=clock)
    clock.advance(3600)
    chart = SessionChart.open(session.database, session.session_id, clock)
    chart.add_addendum_note(ADDENDUM, NURSE, "follow-up call")
    yield session
    session.database.close()
