"""The audit trail: every kind of write adds exactly its entry, in the same transaction, and
chains never fork (also with two workstations appending at once)."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from hashlib import sha256

import pytest
from sqlalchemy import func, select, text

from infusion_monitor.devices.base import DeviceEvent, DeviceEventKind, WaveformBlock
from infusion_monitor.errors import StoreError
from infusion_monitor.session.phases import Phase
from infusion_monitor.store import Database, StoreWriter, audit, open_database
from infusion_monitor.store.alarm_log import AlarmEventRecord, AlarmLog, LimitChangeRecord
from infusion_monitor.store.audit import AuditEntry, AuditLog
from infusion_monitor.store.audit_canon import GENESIS, canonical_row, entry_hash, row_digest
from infusion_monitor.store.charting import ChartStore
from infusion_monitor.store.models_clinical import AuditEntryRow, NoteRow
from infusion_monitor.store.signoff import SignOffStore
from infusion_monitor.vitals import Reading, Vital

T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
NURSE = "R. Nurse"


@pytest.fixture
def sid(db: Database) -> int:
    return db.repository.create_session(source="gui", protocol="datex-s5", started=T0,
                                        by="ws-user")


def new_entries(db: Database, write: Callable[[], object]) -> list[AuditEntry]:
    """The entries ``write`` added (every chain), in id order."""
    before = {e.id for e in AuditLog(db.engine).entries()}
    write()
    return sorted((e for e in AuditLog(db.engine).entries() if e.id not in before),
                  key=lambda e: e.id)


def summary(entries: list[AuditEntry]) -> list[tuple[object, ...]]:
    return [(e.action, e.actor, e.entity, e.reason, e.what) for e in entries]


def audit_count(db: Database) -> int:
    with db.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(AuditEntryRow)).scalar_one()


# -- every kind of write ----------------------------------------------------------------------
def test_session_create_and_end_are_recorded(db: Database) -> None:
    sid_box: list[int] = []
    created = new_entries(db, lambda: sid_box.append(db.repository.create_session(
        source="record", protocol="nonin", started=T0, by="ws-user")))
    sid = sid_box[0]
    assert summary(created) == [("create", "ws-user", "sessions", None, "session created")]
    assert created[0].entity_id == sid and created[0].session_id == sid
    uid = db.repository.get_session(sid).uid
    assert created[0].chain == f"session:{uid}" and created[0].seq == 1
    ended = new_entries(db, lambda: db.repository.end_session(sid, T0 + timedelta(hours=1),
                                                              by="ws-user"))
    assert summary(ended) == [("end", "ws-user", "sessions", None, "session ended")]
    assert ended[0].t == T0 + timedelta(hours=1) and ended[0].seq == 2


def test_charting_writes_are_recorded_with_who_when_why(db: Database, sid: int) -> None:
    store = ChartStore(db.engine)
    at = T0 + timedelta(minutes=3)
    check_in = dict(patient_id="MRN-1", patient_name="Ada Example", birth_date=date(1980, 5, 17),
                    weight_kg=72.5, dose_mg_per_kg=0.5, planned_minutes=40, attending="Dr A",
                    nurse=NURSE)
    first: list[object] = []
    got = new_entries(db, lambda: first.append(store.add_check_in(
        sid, **check_in, entered=at, by=NURSE, with_marker=True)))
    assert summary(got) == [("create", NURSE, "checkins", None, "checked in"),
                            ("create", NURSE, "phase_markers", None, "phase: Check-in")]
    ci, marker = first[0]  # type: ignore[misc]
    assert [e.entity_id for e in got] == [ci.id, marker.id]
    assert all(e.t == at and e.row_digest for e in got)

    cases: list[tuple[Callable[[], object], tuple[object, ...]]] = [
        (lambda: store.add_check_in(sid, **{**check_in, "weight_kg": 75.0}, entered=at, by=NURSE,
                                    amends_id=ci.id, reason="weighed again"),
         ("amend", NURSE, "checkins", "weighed again", "check-in amended")),
        (lambda: store.add_minute_entry(sid, minute=3, dissociation=2, rass=-1, distress=0,
                                        entered=at, by=NURSE),
         ("create", NURSE, "minute_entries", None, "minute 3 charted")),
        (lambda: store.add_note(sid, t=at, minute=3, text="feels floaty", entered=at, by=NURSE),
         ("create", NURSE, "notes", None, "note added")),
        (lambda: store.add_cadss(sid, timepoint="baseline", items=dict.fromkeys(
            (1, 2, 6, 7, 15, 22), 1), t=at, entered=at, by=NURSE),
         ("create", NURSE, "cadss_forms", None, "CADSS-6 baseline recorded")),
    ]
    for write, expected in cases:
        row: list[object] = []
        got = new_entries(db, lambda w=write, r=row: r.append(w()))
        assert summary(got) == [expected]
        written = row[0][0] if isinstance(row[0], tuple) else row[0]  # add_check_in: a pair
        assert got[0].entity_id == written.id  # type: ignore[attr-defined]

    entry = store.minute_entries(sid)[0]
    got = new_entries(db, lambda: store.add_minute_entry(
        sid, minute=3, dissociation=3, rass=-1, distress=0, entered=at, by="C. Nurse",
        amends_id=entry.id, reason="charted on the wrong row"))
    assert summary(got) == [("amend", "C. Nurse", "minute_entries", "charted on the wrong row",
                             "minute 3 amended")]
    assert got[0].detail == {"minute": 3, "dissociation": 3, "rass": -1, "distress": 0,
                             "amends": entry.id}
    note = store.notes(sid)[0]
    got = new_entries(db, lambda: store.add_note(sid, t=at, minute=3, text="feels heavy",
                                                 entered=at, by=NURSE, amends_id=note.id,
                                                 reason="wrong word"))
    assert summary(got) == [("amend", NURSE, "notes", "wrong word", "note amended")]
    baseline = store.add_marker(sid, phase=Phase.BASELINE, t=at, entered=at, by=NURSE)
    got = new_entries(db, lambda: store.add_marker(
        sid, phase=Phase.BASELINE, t=at, voided=True, entered=at, by=NURSE,
        amends_id=baseline.id, reason="pressed too early"))
    assert summary(got) == [("amend", NURSE, "phase_markers", "pressed too early",
                             "phase undone: Baseline")]


def test_sign_off_and_limit_changes_are_recorded(db: Database, sid: int) -> None:
    got = new_entries(db, lambda: SignOffStore(db.engine).add(
        sid, "sup1", "Dr S. Upervisor", "supervisor", "reviewed_with_findings",
        "BP not repeated at 40 min", T0 + timedelta(hours=2)))
    assert summary(got) == [("sign_off", "sup1", "signoffs", "BP not repeated at 40 min",
                             "signed off (reviewed_with_findings)")]
    log = AlarmLog(db.engine)
    got = new_entries(db, lambda: log.append_limit_changes([
        LimitChangeRecord("hr_low", 50.0, 45.0, T0, "Dr A", "on beta blockers", sid),
        LimitChangeRecord("spo2_low", 92.0, 90.0, T0, "clinic settings", "settings file", None),
    ]))
    assert summary(got) == [
        ("limit_change", "Dr A", "limit_changes", "on beta blockers", "limit hr_low: 50 → 45"),
        ("limit_change", "clinic settings", "limit_changes", "settings file",
         "limit spo2_low: 92 → 90")]
    assert got[0].chain.startswith("session:") and got[0].session_id == sid
    assert got[1].chain == "clinic" and got[1].session_id is None


def test_alarm_acts_get_their_own_entries_and_engine_rows_a_batch_entry(
        db: Database, sid: int) -> None:
    def rec(event: str, by: str | None = None, detail: str = "") -> AlarmEventRecord:
        return AlarmEventRecord("u-1", event, "spo2_low_severe", "spo2", "high", T0, 87.0, 88.0,
                                True, by, detail)

    got = new_entries(db, lambda: AlarmLog(db.engine).append(sid, [
        rec("raised"), rec("acknowledged", NURSE),
        rec("response", NURSE, "repositioned the probe"), rec("ended"),
    ]))
    assert summary(got) == [
        ("acknowledge", NURSE, "alarm_events", None, "alarm acknowledged"),
        ("respond", NURSE, "alarm_events", None, "alarm response"),
        ("record", "system", "alarm_events", None, "device data recorded: 2 alarm events"),
    ]
    assert got[0].why == "spo2_low_severe" and got[1].why == "repositioned the probe"
    assert [e.seq for e in got] == [2, 3, 4]


def test_a_writer_batch_is_covered_by_one_entry_per_session(db: Database, sid: int) -> None:
    other = db.repository.create_session(source="gui", protocol="nonin", started=T0, by="ws")
    writer = StoreWriter(db.repository, flush_interval=30)  # everything in one batch
    for s in (sid, other):
        for i in range(3):
            writer.submit(s, Reading(Vital.HR, 70.0 + i, t_received=T0 + timedelta(seconds=i)))
        writer.submit(s, DeviceEvent(DeviceEventKind.LINK_UP, t_received=T0))
        writer.submit(s, WaveformBlock("pleth", 75.0, (1, 2, 3), t_received=T0))
    writer.submit(sid, AlarmEventRecord("u-2", "acknowledged", "hr_high", "hr", "medium", T0,
                                        by=NURSE))
    got = new_entries(db, lambda: (writer.flush(timeout=10), writer.close()))
    assert summary(got) == [
        ("acknowledge", NURSE, "alarm_events", None, "alarm acknowledged"),
        ("record", "system", "device_events+readings+waveform_blocks", None,
         "device data recorded: 1 device events, 3 readings, 1 waveform blocks"),
        ("record", "system", "device_events+readings+waveform_blocks", None,
         "device data recorded: 1 device events, 3 readings, 1 waveform blocks"),
    ]
    assert [e.session_id for e in got] == [sid, sid, other]
    with db.engine.connect() as conn:
        ids = conn.execute(text("SELECT id FROM readings WHERE session_id = :s ORDER BY id"),
                           {"s": sid}).scalars().all()
    assert got[1].detail["rows"]["readings"] == [[ids[0], ids[-1]]]
    assert AuditLog(db.engine).verify().ok


def test_exports_and_logins_are_recorded(db: Database, sid: int) -> None:
    log = AuditLog(db.engine)
    got = new_entries(db, lambda: log.record_event(
        "export", actor="ws-user", session_id=sid, detail={"format": "pdf", "file": "/x.pdf"}))
    assert summary(got) == [("export", "ws-user", "sessions", None, "exported pdf")]
    assert got[0].entity_id == sid and got[0].row_digest is None
    got = new_entries(db, lambda: log.record_event("login", actor="nurse1"))
    assert summary(got) == [("login", "nurse1", "clinic", None, "logged in")]
    assert got[0].chain == "clinic" and got[0].session_id is None
    with pytest.raises(StoreError, match="no session 999"):
        log.record_event("export", actor="x", session_id=999)


# -- one transaction --------------------------------------------------------------------------
def test_a_failed_clinical_write_leaves_no_entry(db: Database, sid: int) -> None:
    before = audit_count(db)
    with pytest.raises(StoreError):  # amends a row that does not exist: the FK refuses it
        ChartStore(db.engine).add_minute_entry(sid, minute=1, dissociation=1, rass=0,
                                               distress=0, entered=T0, by=NURSE,
                                               amends_id=12345, reason="x")
    with pytest.raises(StoreError):
        db.repository.end_session(999, T0)
    assert audit_count(db) == before


def test_a_failed_audit_append_leaves_no_clinical_row(
        db: Database, sid: int, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_a: object, **_k: object) -> str:
        raise OSError("disk full")  # anything going wrong after the clinical INSERT

    monkeypatch.setattr(audit, "entry_hash", broken)
    with pytest.raises(OSError):
        ChartStore(db.engine).add_note(sid, t=T0, minute=None, text="x", entered=T0, by=NURSE)
    with pytest.raises(OSError):
        db.repository.insert_readings(sid, [Reading(Vital.HR, 70.0, t_received=T0)])
    with db.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(NoteRow)).scalar_one() == 0
        assert conn.execute(text("SELECT count(*) FROM readings")).scalar_one() == 0


# -- the chain --------------------------------------------------------------------------------
def test_each_entry_links_to_the_one_before(db: Database, sid: int) -> None:
    store = ChartStore(db.engine)
    for minute in range(3):
        store.add_minute_entry(sid, minute=minute, dissociation=1, rass=0, distress=0,
                               entered=T0, by=NURSE)
    entries = AuditLog(db.engine).entries(sid)
    assert [e.seq for e in entries] == [1, 2, 3, 4]
    assert entries[0].prev_hash == GENESIS
    for prev, e in itertools.pairwise(entries):
        assert e.prev_hash == prev.hash
    for e in entries:
        assert e.hash == entry_hash(
            prev_hash=e.prev_hash, chain=e.chain, seq=e.seq, session_id=e.session_id,
            t_us=e.t_us, actor=e.actor, action=e.action, entity=e.entity,
            entity_id=e.entity_id, reason=e.reason, detail=e.detail_json,
            row_digest=e.row_digest)
    other = db.repository.create_session(source="gui", protocol="p", started=T0, by="ws")
    (first,) = AuditLog(db.engine).entries(other)
    assert first.seq == 1 and first.prev_hash == GENESIS and first.chain != entries[0].chain


def test_the_canonical_encoding_is_frozen() -> None:
    """Stored hashes depend on these exact values: a change here breaks every database."""
    row = {"id": 7, "session_id": 3, "vital": "hr", "value": -0.0, "unit": "/min",
           "quality": "ok", "t_us": 1_777_626_000_000_000, "t_device_us": None}
    assert canonical_row("readings", row) == [7, 3, "hr", "0000000000000000", "/min", "ok",
                                              1_777_626_000_000_000, None]
    # What SQLite reads back for a boolean and a float column encodes as what was inserted.
    marker = {"id": 1, "session_id": 3, "phase": "baseline", "t_us": 5, "detail": "{}",
              "voided": 1, "entered_us": 5, "entered_by": "é", "amends_id": None,
              "reason": None}
    assert canonical_row("phase_markers", marker) == canonical_row(
        "phase_markers", {**marker, "voided": True})
    # The documented preimages, byte for byte, and their hashes.
    rows_text = '[["readings",[[7,3,"hr","0000000000000000","/min","ok",1777626000000000,null]]]]'
    assert row_digest({"readings": [canonical_row("readings", row)]}) == sha256(
        rows_text.encode()).hexdigest() == (
        "89f1f3524447ebd90a02cedc4b2422ee9ecd8e04354af1570a5c225256e41553")
    entry_text = (f'["infusion-monitor-audit-v1","{GENESIS}","session:x",1,3,5,"é","create",'
                  '"sessions",3,null,"{}",null]')
    assert entry_hash(prev_hash=GENESIS, chain="session:x", seq=1, session_id=3, t_us=5,
                      actor="é", action="create", entity="sessions", entity_id=3,
                      reason=None, detail="{}", row_digest=None) == sha256(
        entry_text.encode("utf-8")).hexdigest() == (
        "8b1beaeb9dc77d3a00b2e511bb2507926296c97915fe266227d4d497b295e7ef")


# -- several workstations ---------------------------------------------------------------------
def test_two_workstations_appending_to_one_chain_never_fork(db_url: str, db: Database,
                                                            sid: int) -> None:
    """Two engines (as two workstations would have) chart into one session at once."""
    n = 15
    barrier = threading.Barrier(2, timeout=60)
    errors: list[BaseException] = []
    stations = {who: open_database(db_url) for who in ("ws-1", "ws-2")}

    def chart(who: str) -> None:
        engine = stations[who].engine
        try:
            barrier.wait()
            for i in range(n):
                ChartStore(engine).add_note(sid, t=T0, minute=i, text=f"{who} {i}", entered=T0,
                                            by=who)
                AuditLog(engine).record_event("export", actor=who, session_id=sid)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=chart, args=(w,)) for w in stations]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    finally:
        for station in stations.values():
            station.close()
    assert errors == []
    entries = AuditLog(db.engine).entries(sid)
    assert len(entries) == 1 + 2 * 2 * n
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
    assert all(e.prev_hash == p.hash for p, e in itertools.pairwise(entries))
    assert AuditLog(db.engine).verify(sid).ok


def test_a_second_writer_waits_for_the_first_then_links_to_its_entry(pg_url: str) -> None:
    """PostgreSQL: both read the same head; the second one's insert waits on the first's
    uncommitted (chain, seq), then re-reads the head and takes the next place."""
    first, second = open_database(pg_url), open_database(pg_url)
    try:
        sid = first.repository.create_session(source="gui", protocol="p", started=T0, by="w")
        done: list[AuditEntry] = []
        with first.engine.begin() as conn:
            audit.append(conn, session_id=sid, t_us=1, actor="ws-1", action="login",
                         entity="clinic")
            worker = threading.Thread(target=lambda: done.append(
                AuditLog(second.engine).record_event("login", actor="ws-2", session_id=sid)))
            worker.start()
            deadline = time.monotonic() + 20
            while not _waiting_on_a_lock(first) and time.monotonic() < deadline:
                time.sleep(0.02)
            assert _waiting_on_a_lock(first), "the second insert never waited"
            assert not done
        worker.join(20)
        entries = AuditLog(first.engine).entries(sid)
        assert [(e.seq, e.actor) for e in entries] == [(1, "w"), (2, "ws-1"), (3, "ws-2")]
        assert entries[2].prev_hash == entries[1].hash and done[0].seq == 3
        assert AuditLog(first.engine).verify(sid).ok
    finally:
        first.close()
        second.close()


def _waiting_on_a_lock(database: Database) -> bool:
    with database.engine.connect() as conn:
        return bool(conn.execute(text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock'")).scalar_one())
