"""``verify`` finds what was changed behind the app's back, and names the entry it breaks."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine, make_url, text

from infusion_monitor.errors import StoreError
from infusion_monitor.store import Database, StoreWriter, open_database
from infusion_monitor.store import db as db_module
from infusion_monitor.store.audit import AuditEntry, AuditLog
from infusion_monitor.store.audit_canon import entry_hash
from infusion_monitor.store.charting import ChartStore
from infusion_monitor.store.signoff import SignOffStore
from infusion_monitor.vitals import Reading, Vital

T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
NURSE = "R. Nurse"


@dataclass
class Recorded:
    """A small recorded and charted session, and the entries that matter to the tests."""

    db: Database
    sid: int
    other: int  # a second, untouched session
    minute_entry_id: int
    minute_entry: AuditEntry
    reading_ids: list[int]
    batch: AuditEntry  # the writer batch that covers ``reading_ids``

    def sql(self, statement: str, **params: object) -> None:
        with self.db.engine.begin() as conn:
            conn.execute(text(statement), params)

    def verify(self, session_id: int | None = None):
        return AuditLog(self.db.engine).verify(session_id)


@pytest.fixture
def rec(db_url: str) -> Iterator[Recorded]:
    db = open_database(db_url)
    repo = db.repository
    sid = repo.create_session(source="gui", protocol="datex-s5", started=T0, by="ws")
    other = repo.create_session(source="gui", protocol="nonin", started=T0, by="ws")
    writer = StoreWriter(repo, flush_interval=30)
    for i in range(40):
        writer.submit(sid, Reading(Vital.HR, 70.0 + i % 7, t_received=T0 + timedelta(seconds=i)))
    writer.flush(timeout=10)
    writer.submit(other, Reading(Vital.SPO2, 97.0, t_received=T0))
    writer.close()
    store = ChartStore(db.engine)
    entry = store.add_minute_entry(sid, minute=4, dissociation=2, rass=-1, distress=0,
                                   entered=T0 + timedelta(minutes=5), by=NURSE)
    store.add_note(sid, t=T0, minute=4, text="floaty", entered=T0, by=NURSE)
    repo.end_session(sid, T0 + timedelta(hours=1), by="ws")
    SignOffStore(db.engine).add(sid, "sup", "Dr S", "supervisor", "reviewed", None,
                                T0 + timedelta(hours=2))
    entries = AuditLog(db.engine).entries(sid)
    with db.engine.connect() as conn:
        ids = conn.execute(text("SELECT id FROM readings WHERE session_id = :s ORDER BY id"),
                           {"s": sid}).scalars().all()
    recorded = Recorded(
        db, sid, other, entry.id,
        next(e for e in entries if e.entity == "minute_entries"), list(ids),
        next(e for e in entries if e.action == "record"))
    assert recorded.verify().ok, recorded.verify().problems
    yield recorded
    db.close()


def only(result) -> str:
    """The first problem as the CLI prints it; the check that it is the one that matters."""
    assert not result.ok
    return str(result.first)


def test_an_untouched_trail_is_intact(rec: Recorded) -> None:
    result = rec.verify()
    assert result.ok and result.problems == ()
    assert result.chains == 2 and result.entries == len(AuditLog(rec.db.engine).entries())
    assert rec.verify(rec.sid).chains == 1


def test_an_edited_minute_entry_names_its_entry(rec: Recorded) -> None:
    rec.sql("UPDATE minute_entries SET dissociation = 0 WHERE id = :i", i=rec.minute_entry_id)
    e = rec.minute_entry
    assert only(rec.verify()) == (
        f"at entry #{e.id} (chain {e.chain}, seq {e.seq}): row digest mismatch: "
        f"minute_entries id {rec.minute_entry_id} changed since recorded")
    assert rec.verify(rec.other).ok  # another session's check is not disturbed


def test_an_edited_reading_names_the_batch_that_recorded_it(rec: Recorded) -> None:
    rec.sql("UPDATE readings SET value = 140 WHERE id = :i", i=rec.reading_ids[17])
    b = rec.batch
    first, last = rec.reading_ids[0], rec.reading_ids[-1]
    assert only(rec.verify(rec.sid)) == (
        f"at entry #{b.id} (chain {b.chain}, seq {b.seq}): row digest mismatch: "
        f"readings {first}-{last} changed since recorded")


def test_a_reading_moved_to_another_session_is_a_change(rec: Recorded) -> None:
    rec.sql("UPDATE readings SET session_id = :o WHERE id = :i", o=rec.other,
            i=rec.reading_ids[3])
    problems = [str(p) for p in rec.verify().problems]
    assert "row digest mismatch: readings" in problems[0]
    assert any(f"row not in the audit trail: readings id {rec.reading_ids[3]}" in p
               for p in problems)  # and the other session did not record it


def test_an_edited_audit_row_is_a_hash_mismatch(rec: Recorded) -> None:
    e = rec.minute_entry
    rec.sql("UPDATE audit_log SET detail = :d WHERE id = :i", i=e.id,
            d='{"distress":0,"dissociation":0,"minute":4,"rass":-1}')
    assert only(rec.verify()) == (
        f"at entry #{e.id} (chain {e.chain}, seq {e.seq}): hash mismatch (audit row edited)")
    rec.sql("UPDATE audit_log SET actor = 'someone else' WHERE id = :i", i=rec.batch.id)
    assert len(rec.verify().problems) == 2


def test_an_audit_row_edited_and_rehashed_breaks_the_next_link(rec: Recorded) -> None:
    """Someone who knows the encoding re-hashes the row: the next entry still points at the
    old hash, and the edited entry is named."""
    e = rec.minute_entry
    forged = entry_hash(prev_hash=e.prev_hash, chain=e.chain, seq=e.seq,
                        session_id=e.session_id, t_us=e.t_us, actor="C. Nurse",
                        action=e.action, entity=e.entity, entity_id=e.entity_id,
                        reason=e.reason, detail=e.detail_json, row_digest=e.row_digest)
    rec.sql("UPDATE audit_log SET actor = 'C. Nurse', hash = :h WHERE id = :i", h=forged, i=e.id)
    assert only(rec.verify()) == (
        f"at entry #{e.id} (chain {e.chain}, seq {e.seq}): link broken: seq {e.seq + 1} "
        "links to another hash (audit row edited and re-hashed, or replaced)")


def test_a_deleted_audit_row_is_a_sequence_gap(rec: Recorded) -> None:
    e = rec.minute_entry
    rec.sql("DELETE FROM audit_log WHERE id = :i", i=e.id)
    after = next(x for x in AuditLog(rec.db.engine).entries(rec.sid) if x.seq == e.seq + 1)
    problems = [str(p) for p in rec.verify().problems]
    assert problems[0] == (
        f"at entry #{after.id} (chain {e.chain}, seq {e.seq + 1}): sequence gap (audit row "
        f"deleted): seq {e.seq} is missing before this entry")
    # ...and the minute entry it recorded is now in no entry at all.
    assert problems[1] == (f"in chain {e.chain} (session {rec.sid}): row not in the audit "
                           f"trail: minute_entries id {rec.minute_entry_id} (added outside "
                           "the app)")


def test_a_deleted_clinical_row_is_named(rec: Recorded) -> None:
    rec.sql("DELETE FROM minute_entries WHERE id = :i", i=rec.minute_entry_id)
    e = rec.minute_entry
    assert only(rec.verify()) == (
        f"at entry #{e.id} (chain {e.chain}, seq {e.seq}): row missing: minute_entries id "
        f"{rec.minute_entry_id} deleted")
    rec.sql("DELETE FROM readings WHERE id IN (:a, :b)", a=rec.reading_ids[5],
            b=rec.reading_ids[9])
    b = rec.batch
    assert str(rec.verify().problems[0]) == (
        f"at entry #{b.id} (chain {b.chain}, seq {b.seq}): row missing: readings id "
        f"{rec.reading_ids[5]} deleted (and 1 more rows)")


def test_a_row_added_behind_the_apps_back_is_named(rec: Recorded) -> None:
    rec.sql("INSERT INTO notes (session_id, t_us, minute, text, entered_us, entered_by)"
            " VALUES (:s, 1, 4, 'forged', 1, 'R. Nurse')", s=rec.sid)
    with rec.db.engine.connect() as conn:
        forged = conn.execute(text("SELECT max(id) FROM notes")).scalar_one()
    chain = rec.minute_entry.chain
    assert only(rec.verify()) == (
        f"in chain {chain} (session {rec.sid}): row not in the audit trail: notes id {forged} "
        "(added outside the app)")


def test_an_end_time_changed_behind_the_apps_back_is_named(rec: Recorded) -> None:
    rec.sql("UPDATE sessions SET ended_us = ended_us + 60000000 WHERE id = :s", s=rec.sid)
    end = next(e for e in AuditLog(rec.db.engine).entries(rec.sid) if e.action == "end")
    assert only(rec.verify()) == (
        f"at entry #{end.id} (chain {end.chain}, seq {end.seq}): row digest mismatch: end time "
        f"of sessions id {rec.sid} changed since recorded")
    # A session ended without the app (no entry records the end) is named too.
    rec.sql("UPDATE sessions SET ended_us = 1 WHERE id = :s", s=rec.other)
    assert any(str(p).endswith(f"sessions id {rec.other}: end time set outside the app (no "
                               "entry records it)") for p in rec.verify().problems)


def test_a_session_created_behind_the_apps_back_has_no_trail(rec: Recorded) -> None:
    rec.sql("INSERT INTO sessions (uid, workstation_id, source, protocol, started_us)"
            " VALUES ('f0000000-0000-4000-8000-000000000000', 'x', 'gui', 'p', 1)")
    with rec.db.engine.connect() as conn:
        forged = conn.execute(text("SELECT max(id) FROM sessions")).scalar_one()
    assert only(rec.verify()) == (
        "in chain session:f0000000-0000-4000-8000-000000000000 (session "
        f"{forged}): the session has no audit trail (created outside the app, or its entries "
        "were deleted)")


def test_verify_of_an_unknown_session_is_a_store_error(rec: Recorded) -> None:
    with pytest.raises(StoreError, match="no session 999"):
        rec.verify(999)


# -- a database from before the audit trail ---------------------------------------------------
def _database_at(url: str, revision: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url)
    try:
        cfg = db_module._alembic_config()
        with engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    finally:
        engine.dispose()


def test_sessions_from_before_the_audit_trail_are_adopted_at_the_upgrade(db_url: str) -> None:
    _database_at(db_url, "0005")
    engine = create_engine(db_url)
    with engine.begin() as conn:
        for n, ended in ((1, 3_600_000_000), (2, None)):
            conn.execute(text(
                "INSERT INTO sessions (uid, workstation_id, source, protocol, started_us,"
                " ended_us) VALUES (:u, 'chair-3', 'record', 'datex-s5', 0, :e)"),
                {"u": f"00000000-0000-4000-8000-00000000000{n}", "e": ended})
        sid = conn.execute(text("SELECT min(id) FROM sessions")).scalar_one()
        conn.execute(text(
            "INSERT INTO readings (session_id, vital, value, unit, quality, t_us) VALUES"
            " (:s, 'hr', 78.0, '/min', 'ok', 1), (:s, 'spo2', 97.5, '%', 'ok', 2)"), {"s": sid})
        conn.execute(text(
            "INSERT INTO minute_entries (session_id, minute, dissociation, rass, distress,"
            " entered_us, entered_by) VALUES (:s, 0, 1, 0, 0, 5, 'R. Nurse')"), {"s": sid})
        conn.execute(text(
            "INSERT INTO limit_changes (session_id, condition, old_value, new_value, t_us,"
            " by_user, reason) VALUES (NULL, 'hr_high', 110, 120, 1, 'clinic settings', 'f')"))
    engine.dispose()

    with open_database(db_url) as db:  # upgrades: one "adopt" entry per session + the clinic's
        log = AuditLog(db.engine)
        entries = log.entries()
        assert sorted((e.chain, e.seq, e.action, e.actor) for e in entries) == [
            ("clinic", 1, "adopt", "upgrade"),
            ("session:00000000-0000-4000-8000-000000000001", 1, "adopt", "upgrade"),
            ("session:00000000-0000-4000-8000-000000000002", 1, "adopt", "upgrade")]
        adopted = next(e for e in entries if e.session_id == sid)
        assert adopted.reason is not None and "before the audit trail" in adopted.reason
        result = log.verify()
        assert result.ok and result.adopted == 2 and result.entries == 3
        # New writes continue the adopted chains; an ended-later session is fine too.
        ChartStore(db.engine).add_minute_entry(sid, minute=1, dissociation=1, rass=0,
                                               distress=0, entered=T0, by=NURSE)
        db.repository.end_session(sid + 1, T0, by="ws")
        assert log.verify().ok
        # From the upgrade on, the old rows are protected like new ones.
        with db.engine.begin() as conn:
            conn.execute(text("UPDATE readings SET value = 60 WHERE session_id = :s"), {"s": sid})
        first = log.verify().first
        assert first is not None and first.entry_id == adopted.id
        assert "row digest mismatch:" in first.what and "readings" in first.what
