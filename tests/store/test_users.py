"""The ``users`` table: accounts, the last admin, and every change in the clinic's audit chain,
so an account edited outside the app (role raised, hash replaced, re-enabled, added, deleted)
is found by ``audit verify``. Both engines."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from infusion_monitor.errors import ConfigError
from infusion_monitor.store import Database
from infusion_monitor.store.audit import AuditLog
from infusion_monitor.store.users import UserStore

T = 1_780_000_000_000_000
HASH = "$argon2id$v=19$m=256,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"


@pytest.fixture
def users(db: Database) -> UserStore:
    store = UserStore(db.engine)
    store.add(username="boss", display_name="B. Oss", role="admin", password_hash=HASH,
              by="root", t_us=T, first=True)
    store.add(username="r.nurse", display_name="R. Nurse", role="nurse", password_hash=HASH,
              by="B. Oss", t_us=T + 1)
    return store


def sql(db: Database, statement: str) -> None:
    with db.engine.begin() as conn:
        conn.execute(text(statement))


def problems(db: Database) -> list[str]:
    return [str(p) for p in AuditLog(db.engine).verify().problems]


def test_accounts_are_added_listed_and_audited(db: Database, users: UserStore) -> None:
    assert users.any()
    assert [(a.username, a.display_name, a.role, a.disabled) for a in users.list()] == [
        ("boss", "B. Oss", "admin", False), ("r.nurse", "R. Nurse", "nurse", False)]
    entries = AuditLog(db.engine).entries()
    assert [(e.chain, e.actor, e.action, e.what) for e in entries] == [
        ("clinic", "root", "user_add", "account boss added (admin)"),
        ("clinic", "B. Oss", "user_add", "account r.nurse added (nurse)")]
    assert all(HASH not in e.detail_json and e.row_digest for e in entries)
    assert problems(db) == []


def test_the_first_account_only_while_there_is_none(users: UserStore) -> None:
    with pytest.raises(ConfigError, match="already has accounts"):
        users.add(username="x", display_name="X", role="admin", password_hash=HASH, by="root",
                  t_us=T, first=True)


def test_the_role_is_one_of_four(db: Database, users: UserStore) -> None:
    with pytest.raises(IntegrityError, match=r"(?i)check|ck_users_role"):
        sql(db, "INSERT INTO users (username, display_name, role, password_hash, disabled, "
                f"created_us, created_by, password_changed_us) VALUES ('x', 'X', 'root', "
                f"'{HASH}', false, 1, 'x', 1)")


def test_the_last_enabled_admin_cannot_be_disabled(db: Database, users: UserStore) -> None:
    with pytest.raises(ConfigError, match="last enabled admin"):
        users.set_disabled("boss", True, by="B. Oss", t_us=T + 2)
    users.add(username="boss2", display_name="B. Oss II", role="admin", password_hash=HASH,
              by="B. Oss", t_us=T + 3)
    users.set_disabled("boss", True, by="B. Oss II", t_us=T + 4)
    with pytest.raises(ConfigError, match="'boss2' is the last enabled admin"):
        users.set_disabled("boss2", True, by="B. Oss II", t_us=T + 5)
    with pytest.raises(ConfigError, match="already disabled"):
        users.set_disabled("boss", True, by="B. Oss II", t_us=T + 6)
    users.set_disabled("boss", False, by="B. Oss II", t_us=T + 7)
    assert not users.get("boss").disabled  # type: ignore[union-attr]
    with pytest.raises(ConfigError, match="no account 'ghost'"):
        users.set_disabled("ghost", True, by="B. Oss", t_us=T + 8)
    assert problems(db) == []


def test_only_the_latest_entry_of_an_account_is_checked_against_it(
        db: Database, users: UserStore) -> None:
    users.set_password_hash("r.nurse", HASH.replace("aGFzaG", "bmV3aG"), by="B. Oss",
                            t_us=T + 2)
    users.set_disabled("r.nurse", True, by="B. Oss", t_us=T + 3)
    assert problems(db) == []
    assert [e.action for e in AuditLog(db.engine).entries()] == [
        "user_add", "user_add", "password_reset", "user_disable"]
    assert users.get("r.nurse").password_changed_at.timestamp() * 1e6 == T + 2  # type: ignore


@pytest.mark.parametrize(("statement", "found"), [
    ("UPDATE users SET role = 'admin' WHERE username = 'r.nurse'",
     "row digest mismatch: users id 2 changed since recorded"),
    (f"UPDATE users SET password_hash = '{HASH.replace('aGFzaG', 'ZXZpbG')}' "
     "WHERE username = 'r.nurse'", "row digest mismatch: users id 2 changed since recorded"),
    ("UPDATE users SET display_name = 'Someone' WHERE username = 'boss'",
     "row digest mismatch: users id 1 changed since recorded"),
    ("DELETE FROM users WHERE username = 'r.nurse'", "row missing: users id 2 deleted"),
    ("INSERT INTO users (username, display_name, role, password_hash, disabled, created_us, "
     f"created_by, password_changed_us) VALUES ('evil', 'E', 'admin', '{HASH}', false, 1, "
     "'x', 1)", "row not in the audit trail: users id 3 (added outside the app)"),
])
def test_an_account_changed_outside_the_app_is_found(db: Database, users: UserStore,
                                                     statement: str, found: str) -> None:
    users.set_disabled("r.nurse", True, by="B. Oss", t_us=T + 2)
    sql(db, statement)
    assert len(problems(db)) == 1 and found in problems(db)[0]


def test_an_account_re_enabled_outside_the_app_is_found(db: Database, users: UserStore) -> None:
    users.set_disabled("r.nurse", True, by="B. Oss", t_us=T + 2)
    sql(db, "UPDATE users SET disabled = false WHERE username = 'r.nurse'")
    (problem,) = problems(db)
    assert "seq 3" in problem and "users id 2 changed" in problem
