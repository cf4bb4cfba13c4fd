"""The README's least-privilege PostgreSQL setup, run as written: an owner role migrates, the
app's role gets exactly the README's GRANTs, and every command the chairs use works under it,
while rewriting or deleting what was recorded is refused by the server itself."""

from __future__ import annotations

import io
import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from argon2 import PasswordHasher
from sqlalchemy import create_engine, make_url

from infusion_monitor.cli import main
from infusion_monitor.session import accounts
from tests.pgdb import pg_server

pytestmark = pytest.mark.postgres

README = Path(__file__).resolve().parents[2] / "README.md"
FIXTURE = Path(__file__).parent.parent / "fixtures" / "datex-s5" / "AS3Rawoutput1.raw"
ADMIN_PW, NURSE_PW = "boss-pass-word-1", "nurse-pass-word-1"


def readme_grants() -> str:
    """The one ```sql block of the README's PostgreSQL section."""
    blocks = re.findall(r"```sql\n(.*?)```", README.read_text(), re.S)
    assert len(blocks) == 1, "expected one sql block in the README"
    return blocks[0]


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(accounts, "HASHER",
                        PasswordHasher(time_cost=1, memory_cost=256, parallelism=1))


@pytest.fixture
def roles() -> Iterator[tuple[str, str]]:
    """(owner URL, app URL): a new database owned by a new owner role, and a new app role that
    has only the README's grants."""
    server = make_url(pg_server())
    tag = uuid.uuid4().hex[:10]
    owner, app, name = f"im_owner_{tag}", f"im_app_{tag}", f"im_roles_{tag}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE ROLE "{owner}" LOGIN')
        conn.exec_driver_sql(f'CREATE ROLE "{app}" LOGIN')
        conn.exec_driver_sql(f'CREATE DATABASE "{name}" OWNER "{owner}"')
    owner_url = server.set(username=owner, password=None, database=name)
    app_url = server.set(username=app, password=None, database=name)
    try:
        yield (owner_url.render_as_string(hide_password=False),
               app_url.render_as_string(hide_password=False))
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{app}"')
            conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{owner}"')
        admin.dispose()


def libpq(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str,
        stdin: str = "") -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_the_app_works_under_the_readme_grants_and_cannot_rewrite_the_record(
        roles: tuple[str, str], monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    owner_url, app_url = roles
    assert run(monkeypatch, capsys, "db", "upgrade", "--db", owner_url)[0] == 0
    app = make_url(app_url).username
    name = make_url(app_url).database
    grants = (readme_grants().replace("infusion_app", f'"{app}"')
              .replace("DATABASE infusion ", f'DATABASE "{name}" '))
    with psycopg.connect(libpq(owner_url), autocommit=True) as conn:
        conn.execute(grants)

    def app_cli(*args: str, stdin: str = "") -> tuple[int, str, str]:
        return run(monkeypatch, capsys, "--db", app_url, *args, stdin=stdin)

    # accounts: add (INSERT), disable (SELECT ... FOR UPDATE, UPDATE), reset a password
    assert app_cli("users", "add", "boss", "--role", "admin", "--name", "B. Oss",
                   "--password-stdin", stdin=f"{ADMIN_PW}\n")[0] == 0
    for user, role, pw in (("nurse1", "nurse", "first-pass-word"),
                           ("boss2", "admin", "other-pass-word"),
                           ("sup", "supervisor", "sup-pass-word-1")):
        code, _, err = app_cli("users", "add", user, "--role", role, "--name", user.title(),
                               "--as", "boss", "--password-stdin",
                               stdin=f"{ADMIN_PW}\n{pw}\n")
        assert code == 0, err
    code, _, err = app_cli("users", "disable", "boss2", "--as", "boss", "--password-stdin",
                           stdin=f"{ADMIN_PW}\n")
    assert code == 0, err
    code, _, err = app_cli("users", "reset-password", "nurse1", "--as", "boss",
                           "--password-stdin", stdin=f"{ADMIN_PW}\n{NURSE_PW}\n")
    assert code == 0, err
    # charting: import a capture (INSERTs, then the session's end: UPDATE), list, export
    nurse = ("--as", "nurse1", "--password-stdin")
    code, out, err = app_cli("import", "--protocol", "datex-s5", str(FIXTURE), "--patient",
                             "MRN-7", *nurse, stdin=f"{NURSE_PW}\n")
    assert code == 0, err
    sid = int(out.strip())
    code, out, err = app_cli("sessions", "--json", *nurse, stdin=f"{NURSE_PW}\n")
    assert code == 0, err
    [row] = json.loads(out)
    assert (row["id"], row["readings"], row["ended_utc"] is not None) == (sid, 123, True)
    code, out, err = app_cli("export", str(sid), "--format", "csv", *nurse,
                             stdin=f"{NURSE_PW}\n")
    assert code == 0 and out.count("\n") == 124, err
    code, out, err = app_cli("audit", "verify", "--as", "sup", "--password-stdin",
                             stdin="sup-pass-word-1\n")
    assert code == 0 and "audit trail intact" in out, out + err

    # what the app's role may not do, refused by the server
    refused = [
        "UPDATE readings SET value = 0",
        "DELETE FROM readings",
        "UPDATE sessions SET patient_id = 'someone else'",
        "DELETE FROM sessions",
        "UPDATE audit_log SET actor = 'nobody'",
        "DELETE FROM audit_log",
        "UPDATE users SET role = 'admin'",
        "DELETE FROM users",
        "CREATE TABLE mine (id int)",
        "DROP TABLE readings",
    ]
    with psycopg.connect(libpq(app_url), autocommit=True) as conn:
        for sql in refused:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(sql)
        assert conn.execute("SELECT count(*) FROM readings").fetchone() == (123,)
