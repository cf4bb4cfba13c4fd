"""``infusion-monitor users ...`` and logging in on the command line (issue 7), both engines.

Done-when: each forbidden action tried through the CLI exits 1 with "infusion-monitor: <clear
message>" and leaves an audit entry; passwords never reach the database, the logs or stderr in
clear text (the last test greps them all).
"""

from __future__ import annotations

import io
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from sqlalchemy import String, Text, create_engine, make_url, select

from infusion_monitor import cli, cli_users
from infusion_monitor.session import accounts
from infusion_monitor.store import open_database
from infusion_monitor.store.audit import AuditEntry, AuditLog
from infusion_monitor.store.models import Base
from infusion_monitor.vitals import Reading, Vital

FIXTURE = Path(__file__).parent / "fixtures" / "datex-s5" / "AS3Rawoutput1.raw"
T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
#: role -> (username, display name, password): the passwords the grep test looks for.
PEOPLE = {
    "admin": ("boss", "B. Oss", "Adm1n-pa55word-!x"),
    "nurse": ("r.nurse", "R. Nurse", "Nur5e-pa55word-#y"),
    "attending": ("dr.a", "Dr A. Ttending", "Att3nd-pa55word-$z"),
    "supervisor": ("sup", "Dr S. Upervisor", "Sup3rv-pa55word-%w"),
}
#: What each role may do of the commands below (session/auth.py's table).
ALLOWED = {
    "nurse": {"sessions", "export", "audit show", "import", "record"},
    "attending": {"sessions", "export", "audit show", "import", "record"},
    "supervisor": {"sessions", "export", "audit show", "audit verify"},
    "admin": {"audit verify", "users list", "users add", "users disable",
              "users reset-password", "defaults set"},
}


@pytest.fixture(autouse=True)
def cheap_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(accounts, "HASHER",
                        PasswordHasher(time_cost=1, memory_cost=256, parallelism=1))


def run(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str,
        stdin: str = "") -> tuple[int, str, str]:
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def url(db_url: str) -> str:
    return db_url


@pytest.fixture
def clinic(url: str, capsys, monkeypatch) -> tuple[str, int]:
    """Four accounts added through the CLI, and one stored session; (url, session id)."""
    with open_database(url) as db:
        sid = db.repository.create_session(source="gui", protocol="datex-s5", started=T0,
                                           by="ws")
        db.repository.insert_readings(sid, [Reading(Vital.HR, 72.0, t_received=T0)])
        db.repository.end_session(sid, T0, by="ws")
    boss, name, password = PEOPLE["admin"]
    assert run(capsys, monkeypatch, "--db", url, "users", "add", boss, "--role", "admin",
               "--name", name, "--password-stdin", stdin=f"{password}\n") == (
        0, "", f"added {boss} ({name}, admin)\n")
    for role in ("nurse", "attending", "supervisor"):
        user, name, secret = PEOPLE[role]
        code, _out, err = run(capsys, monkeypatch, "users", "add", user, "--role", role,
                              "--name", name, "--db", url, "--as", boss, "--password-stdin",
                              stdin=f"{password}\n{secret}\n")
        assert (code, err) == (0, f"added {user} ({name}, {role})\n")
    return url, sid


def entries(url: str) -> list[AuditEntry]:
    with open_database(url) as db:
        return sorted(AuditLog(db.engine).entries(), key=lambda e: e.id)


def command(name: str, sid: int, tmp_path: Path) -> list[str]:
    return {
        "sessions": ["sessions"],
        "export": ["export", str(sid), "--format", "csv", "-o", str(tmp_path / "x.csv")],
        "audit show": ["audit", "show", "--session", str(sid)],
        "audit verify": ["audit", "verify"],
        "import": ["import", "--protocol", "datex-s5", str(FIXTURE)],
        "record": ["record", "--protocol", "datex-s5", "--port", "loop://", "--seconds",
                   "0.3"],
        "users list": ["users", "list"],
        "users add": ["users", "add", "new.one", "--role", "nurse", "--name", "N. One"],
        "users disable": ["users", "disable", "r.nurse"],
        "users reset-password": ["users", "reset-password", "r.nurse"],
        "defaults set": ["defaults", "set", "escalation_s", "45", "--reason", "clinic policy"],
    }[name]


COMMANDS = ("sessions", "export", "audit show", "audit verify", "import", "record",
            "users list", "users add", "users disable", "users reset-password",
            "defaults set")


@pytest.mark.parametrize("role", list(PEOPLE))
def test_each_forbidden_command_exits_1_with_a_message_and_an_entry(
        clinic, role: str, capsys, monkeypatch, tmp_path: Path) -> None:
    url, sid = clinic
    user, name, password = PEOPLE[role]
    for what in COMMANDS:
        if what in ALLOWED[role]:
            continue
        before = len(entries(url))
        code, out, err = run(capsys, monkeypatch, "--db", url, *command(what, sid, tmp_path),
                             "--as", user, "--password-stdin",
                             stdin=f"{password}\nnew-pass-word-1\n")
        assert code == 1, (what, err)
        assert out == "" and err.startswith(f"infusion-monitor: {name} ({role}) may not ")
        assert err.count("\n") == 1 and ": only " in err and err.endswith(" may\n")
        new = entries(url)[before:]
        assert [e.action for e in new] == ["login", "denied"], what
        assert (new[1].actor, new[1].reason) == (name, err.removeprefix(
            "infusion-monitor: ").rstrip("\n"))
        if what in ("export", "audit show"):
            assert new[1].session_id == sid
    assert not (tmp_path / "x.csv").exists()


@pytest.mark.parametrize("role", list(PEOPLE))
def test_each_allowed_command_works(clinic, role: str, capsys, monkeypatch,
                                    tmp_path: Path) -> None:
    url, sid = clinic
    user, name, password = PEOPLE[role]
    for what in sorted(ALLOWED[role]):
        code, _out, err = run(capsys, monkeypatch, "--db", url, *command(what, sid, tmp_path),
                              "--as", user, "--password-stdin",
                              stdin=f"{password}\nnew-pass-word-1\n")
        assert code == 0, (what, err)
        assert "may not" not in err
        if what == "users add":  # the next role adds the same account again: undo
            run(capsys, monkeypatch, "--db", url, "users", "disable", "new.one", "--as", user,
                "--password-stdin", stdin=f"{password}\n")
    if "export" in ALLOWED[role]:
        last = [e for e in entries(url) if e.action == "export"][-1]
        assert last.actor == name  # the logged-in user, not the OS login


def test_not_logged_in_is_refused_and_recorded(clinic, capsys, monkeypatch,
                                               tmp_path: Path) -> None:
    url, sid = clinic
    for what in COMMANDS:
        before = len(entries(url))
        code, out, err = run(capsys, monkeypatch, "--db", url, *command(what, sid, tmp_path))
        assert code == 1 and out == "", what
        assert err.startswith("infusion-monitor: log in first to ")
        assert err.endswith("(this database has user accounts)\n")
        new = entries(url)[before:]
        assert [(e.action, e.actor) for e in new] == [("denied", "(not logged in)")], what


def test_a_wrong_password_is_refused_and_recorded(clinic, capsys, monkeypatch) -> None:
    url, _sid = clinic
    for user in ("r.nurse", "nobody"):
        code, out, err = run(capsys, monkeypatch, "--db", url, "sessions", "--as", user,
                             "--password-stdin", stdin="not-the-password\n")
        assert (code, out, err) == (
            1, "", "infusion-monitor: login failed: unknown user or wrong password\n")
    assert [(e.action, e.actor) for e in entries(url)[-2:]] == [
        ("login_failed", "R. Nurse"), ("login_failed", "(unknown user)")]


def test_users_list_disable_enable_and_reset(clinic, capsys, monkeypatch) -> None:
    url, _sid = clinic
    boss, _name, password = PEOPLE["admin"]
    admin = ("--as", boss, "--password-stdin")
    code, out, _err = run(capsys, monkeypatch, "--db", url, "users", "list", *admin,
                          stdin=f"{password}\n")
    lines = out.splitlines()
    assert code == 0 and lines[0].split()[:4] == ["username", "name", "role", "status"]
    assert [line.split()[0] for line in lines[1:]] == ["boss", "dr.a", "r.nurse", "sup"]
    assert "R. Nurse" in lines[3] and " nurse " in lines[3] and " active " in lines[3]
    assert all(PEOPLE[r][2] not in out for r in PEOPLE)
    assert run(capsys, monkeypatch, "--db", url, "users", "disable", "R.Nurse", *admin,
               stdin=f"{password}\n") == (0, "", "r.nurse: disabled\n")
    code, _out, err = run(capsys, monkeypatch, "--db", url, "sessions", "--as", "r.nurse",
                          "--password-stdin", stdin=f"{PEOPLE['nurse'][2]}\n")
    assert (code, err) == (1, "infusion-monitor: the account 'r.nurse' is disabled: ask an "
                              "admin to enable it\n")
    assert run(capsys, monkeypatch, "--db", url, "users", "enable", "r.nurse", *admin,
               stdin=f"{password}\n") == (0, "", "r.nurse: enabled\n")
    assert run(capsys, monkeypatch, "--db", url, "users", "reset-password", "r.nurse",
               *admin, stdin=f"{password}\nfresh-pass-word\n")[0] == 0
    code, _out, err = run(capsys, monkeypatch, "--db", url, "sessions", "--as", "r.nurse",
                          "--password-stdin", stdin="fresh-pass-word\n")
    assert code == 0, err
    code, _out, err = run(capsys, monkeypatch, "--db", url, "users", "disable", "boss", *admin,
                          stdin=f"{password}\n")
    assert (code, err) == (1, "infusion-monitor: 'boss' is the last enabled admin and cannot "
                              "be disabled: add another admin first\n")
    code, _out, err = run(capsys, monkeypatch, "--db", url, "users", "reset-password",
                          "r.nurse", *admin, stdin=f"{password}\nshort\n")
    assert (code, err) == (1, "infusion-monitor: the password is too short: use at least 8 "
                              "characters\n")


def test_first_admin_and_login_mistakes(url: str, capsys, monkeypatch) -> None:
    code, _out, err = run(capsys, monkeypatch, "--db", url, "users", "add", "n", "--role",
                          "nurse", "--name", "N", "--password-stdin", stdin="nurse-pass-1\n")
    assert (code, err) == (1, "infusion-monitor: the first account must be an admin (--role "
                              "admin): an admin adds the others\n")
    code, _out, err = run(capsys, monkeypatch, "--db", url, "sessions", "--as", "x")
    assert code == 1 and "this database has no user accounts" in err
    code, _out, err = run(capsys, monkeypatch, "--db", url, "users", "add", "boss", "--role",
                          "admin", "--name", "B")  # stdin is no terminal
    assert (code, err) == (1, "infusion-monitor: no terminal to ask for a password: pass it "
                              "on standard input with --password-stdin\n")
    code, _out, err = run(capsys, monkeypatch, "--db", url, "users", "add", "boss", "--role",
                          "admin", "--name", "B", "--password-stdin", stdin="")
    assert code == 1 and "--password-stdin: no line 1 on standard input" in err
    # On a terminal: asked twice, without echo; a mismatch changes nothing.
    asked: list[str] = []
    answers = iter(["first-pass-1", "other-pass-1", "admin-pass-1", "admin-pass-1"])
    monkeypatch.setattr(cli_users.getpass, "getpass",
                        lambda prompt: asked.append(prompt) or next(answers))

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr("sys.stdin", Terminal())
    args = ["--db", url, "users", "add", "boss", "--role", "admin", "--name", "B"]
    assert cli.main(args) == 1
    assert capsys.readouterr().err == ("infusion-monitor: the two passwords differ: nothing "
                                       "was changed\n")
    assert cli.main(args) == 0
    assert asked == ["New password for boss: ", "Repeat it: "] * 2


def test_no_accounts_means_the_cli_works_as_before(url: str, capsys, monkeypatch,
                                                   tmp_path: Path) -> None:
    code, out, _err = run(capsys, monkeypatch, "--db", url, "import", "--protocol", "datex-s5",
                          str(FIXTURE))
    sid = int(out)
    assert code == 0
    for what in ("sessions", "export", "audit show", "audit verify"):
        assert run(capsys, monkeypatch, "--db", url, *command(what, sid, tmp_path))[0] == 0
    assert "denied" not in {e.action for e in entries(url)}


# -- passwords never in clear text ------------------------------------------------------------
def everything_stored(url: str, tmp_path: Path) -> bytes:
    """Every byte the database holds: the SQLite files, or every text column of every
    table on PostgreSQL (the audit trail included)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        base = Path(str(parsed.database))
        return b"".join(p.read_bytes() for p in base.parent.glob(base.name + "*"))
    engine = create_engine(url)
    try:
        chunks: list[str] = []
        with engine.connect() as conn:
            for table in Base.metadata.sorted_tables:
                assert any(isinstance(c.type, String | Text) for c in table.columns)
                for row in conn.execute(select(table)):
                    chunks.append(repr(tuple(row)))
        return "\n".join(chunks).encode()
    finally:
        engine.dispose()


def test_passwords_are_never_stored_or_logged(url: str, capfd, caplog, monkeypatch,
                                              tmp_path: Path) -> None:
    """Everything the process wrote to its file descriptors 1 and 2 (capfd: logging
    handlers, warnings, prints), every log record at DEBUG (SQL statements included), and
    every byte in the database, after adds, logins, failed logins and a re-hash."""
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine")  # every SQL statement too
    caplog.set_level(logging.DEBUG)  # last: it sets the capturing handler's level
    secrets = {role: p for role, (_u, _n, p) in PEOPLE.items()}
    boss, _name, admin_pw = PEOPLE["admin"]
    stderr: list[str] = []

    def cli_run(*args: str, stdin: str = "") -> int:
        code, out, err = run(capfd, monkeypatch, "-v", "--db", url, *args, stdin=stdin)
        stderr.extend((out, err))
        return code

    assert cli_run("users", "add", boss, "--role", "admin", "--name", "B. Oss",
                   "--password-stdin", stdin=f"{admin_pw}\n") == 0
    for role in ("nurse", "attending", "supervisor"):
        user, name, secret = PEOPLE[role]
        assert cli_run("users", "add", user, "--role", role, "--name", name, "--as", boss,
                       "--password-stdin", stdin=f"{admin_pw}\n{secret}\n") == 0
    assert cli_run("import", "--protocol", "datex-s5", str(FIXTURE), "--as", "r.nurse",
                   "--password-stdin", stdin=f"{secrets['nurse']}\n") == 0
    assert cli_run("export", "1", "--format", "csv", "-o", str(tmp_path / "x.csv"), "--as",
                   "sup", "--password-stdin", stdin=f"{secrets['supervisor']}\n") == 0
    # Failed logins: a wrong password, the password in the username field (a common slip),
    # a disabled account, a forbidden command, and a re-hash at login.
    assert cli_run("sessions", "--as", "dr.a", "--password-stdin",
                   stdin=f"{secrets['nurse']}\n") == 1
    assert cli_run("sessions", "--as", secrets["attending"], "--password-stdin",
                   stdin=f"{secrets['attending']}\n") == 1
    assert cli_run("users", "disable", "r.nurse", "--as", boss, "--password-stdin",
                   stdin=f"{admin_pw}\n") == 0
    assert cli_run("sessions", "--as", "r.nurse", "--password-stdin",
                   stdin=f"{secrets['nurse']}\n") == 1
    assert cli_run("users", "list", "--as", "sup", "--password-stdin",
                   stdin=f"{secrets['supervisor']}\n") == 1
    monkeypatch.setattr(accounts, "HASHER",
                        PasswordHasher(time_cost=2, memory_cost=512, parallelism=1))
    assert cli_run("sessions", "--as", "dr.a", "--password-stdin",
                   stdin=f"{secrets['attending']}\n") == 0
    actions = {e.action for e in entries(url)}
    assert {"login", "login_failed", "denied", "password_rehash", "user_add"} <= actions

    stored = everything_stored(url, tmp_path)
    captured_fd = capfd.readouterr()
    places = {"database": stored, "log records": caplog.text.encode(),
              "stdout/stderr": "".join(stderr).encode() + (captured_fd.out +
                                                           captured_fd.err).encode()}
    assert b"argon2id" in stored and "logged in" in caplog.text  # the haystacks are real
    assert "INSERT INTO users" in caplog.text
    assert any(r.levelno == logging.DEBUG for r in caplog.records)
    for role, secret in secrets.items():
        for where, haystack in places.items():
            for form in (secret, secret.lower(), secret[:-1]):  # nor a near copy of it
                assert form.encode() not in haystack, f"{role}'s password in the {where}"
                assert form.encode("utf-16-le") not in haystack, f"{role}'s password in the {where}"
