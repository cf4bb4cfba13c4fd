"""Encryption at rest: an SQLCipher file (``sqlite+pysqlcipher:///PATH``) opened the app's way,
its key from the OS keyring, ``$INFUSION_MONITOR_DB_KEY`` or a prompt, never logged or stored."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import keyring
import keyring.backend
import pytest
import sqlcipher3
from keyring.backends import fail

from infusion_monitor.errors import StoreError
from infusion_monitor.store import Database, open_database
from infusion_monitor.store.db import inspect_database, schema_status
from infusion_monitor.store.encrypt import encrypt_copy
from infusion_monitor.store.keys import KEY_ENV_VAR, KEYRING_SERVICE
from infusion_monitor.vitals import Reading, Vital

KEY = "c0rrect horse 'battery\" staple"  # quotes: the key reaches PRAGMA key intact
PATIENT = "MRN-ZEBRA-48151623"
NAME = "Quixote, Alonso"
FIXTURE = Path(__file__).parent.parent / "fixtures" / "datex-s5" / "AS3Rawoutput1.raw"
T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)


class MemoryKeyring(keyring.backend.KeyringBackend):
    """A real keyring backend (keyring's documented extension point), kept in memory."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[tuple[str, str], str] = {}
        self.asked: list[tuple[str, str]] = []

    def get_password(self, service: str, username: str) -> str | None:
        self.asked.append((service, username))
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        del self.entries[(service, username)]


pytestmark = pytest.mark.usefixtures("no_keyring")  # tests/conftest.py


@pytest.fixture
def enc(tmp_path: Path) -> Path:
    return tmp_path / "data" / "enc.db"


def url_of(path: Path) -> str:
    return f"sqlite+pysqlcipher:///{path}"


def never_asked(prompt: str) -> str | None:
    raise AssertionError(f"asked for a key although one was available: {prompt}")


def record_some(url: str, ask=never_asked) -> tuple[int, Database]:
    """A session with a known patient and two readings; returns (id, the open Database)."""
    database = open_database(url, ask_key=ask)
    repo = database.repository
    sid = repo.create_session(source="import", protocol="datex-s5", started=T0,
                              patient_id=PATIENT, note=NAME)
    repo.insert_readings(sid, [Reading(Vital.HR, 78, t_device=T0, t_received=T0),
                               Reading(Vital.SPO2, 97, t_device=T0 + timedelta(seconds=5),
                                       t_received=T0 + timedelta(seconds=5))])
    return sid, database


def raw_bytes(path: Path) -> bytes:
    """The database file and its -wal, as on disk."""
    wal = Path(f"{path}-wal")
    return path.read_bytes() + (wal.read_bytes() if wal.exists() else b"")


def digest(path: Path) -> str:
    return hashlib.sha256(raw_bytes(path)).hexdigest()


# -- open_database ------------------------------------------------------------------------------
def test_data_round_trips_with_the_durable_pragmas_and_nothing_readable_on_disk(
        enc: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV_VAR, KEY)
    sid, database = record_some(url_of(enc))
    try:
        with database.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA cipher_version").scalar()  # really SQLCipher
        current, head = schema_status(database.engine)
        assert current == head
        assert Path(f"{enc}-wal").stat().st_size > 0  # the rows are in the WAL right now
        on_disk = raw_bytes(enc)  # while open: file and WAL
    finally:
        database.close()
    assert not on_disk.startswith(b"SQLite format 3")
    for secret in (PATIENT, NAME, KEY):
        assert secret.encode() not in on_disk
    assert PATIENT.encode() not in raw_bytes(enc)  # after the checkpoint at close too
    assert enc.stat().st_mode & 0o777 == 0o600
    with open_database(url_of(enc), ask_key=never_asked) as again:
        info = again.repository.get_session(sid)
        readings = again.repository.readings(sid)
    assert (info.patient_id, info.note) == (PATIENT, NAME)
    assert [(r.vital, r.value) for r in readings] == [(Vital.HR, 78), (Vital.SPO2, 97)]


def test_many_threads_keep_their_own_connections(
        enc: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer thread, the GUI and the overview share one engine: no thread's open
    connection may be closed under it (the dialect's default pool does that past five)."""
    monkeypatch.setenv(KEY_ENV_VAR, KEY)
    sid, database = record_some(url_of(enc))
    n = 8
    all_open = threading.Barrier(n, timeout=120)
    counts: list[int] = []
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            with database.engine.connect() as conn:
                all_open.wait()  # every thread holds its connection at once
                counts.append(conn.exec_driver_sql(
                    f"SELECT count(*) FROM readings WHERE session_id = {sid}").scalar())
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(n)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=180)
    finally:
        database.close()
    assert errors == []
    assert counts == [2] * n


def test_the_same_rows_in_a_plain_file_are_readable_on_disk(tmp_path: Path) -> None:
    """The control for the test above: the byte search finds the patient when not encrypted."""
    plain = tmp_path / "plain.db"
    _, database = record_some(f"sqlite:///{plain}")
    try:
        on_disk = raw_bytes(plain)
    finally:
        database.close()
    assert on_disk.startswith(b"SQLite format 3")
    assert PATIENT.encode() in on_disk and NAME.encode() in on_disk


def test_a_wrong_key_fails_in_one_line_and_changes_nothing(
        enc: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV_VAR, KEY)
    record_some(url_of(enc))[1].close()
    before = digest(enc), enc.stat().st_mtime_ns
    monkeypatch.setenv(KEY_ENV_VAR, KEY + "x")
    with pytest.raises(StoreError) as err:
        open_database(url_of(enc), ask_key=never_asked)
    assert str(err.value) == (
        f"cannot open {url_of(enc)}: wrong key or not an encrypted Infusion Monitor database"
        f" (check the key in the OS keyring or ${KEY_ENV_VAR})")
    assert (digest(enc), enc.stat().st_mtime_ns) == before
    assert not Path(f"{enc}-wal").exists()


def test_a_missing_key_fails_before_any_file_is_made(enc: Path) -> None:
    with pytest.raises(StoreError) as err:
        open_database(url_of(enc), ask_key=lambda _prompt: None)  # nobody there to ask
    message = str(err.value)
    assert message.startswith(f"no key for the encrypted database {url_of(enc)}: ")
    assert f"keyring set {KEYRING_SERVICE} {enc}" in message and KEY_ENV_VAR in message
    assert "\n" not in message
    assert not enc.exists() and not enc.parent.exists()


def test_a_key_in_the_url_is_refused_and_not_shown(enc: Path) -> None:
    with pytest.raises(StoreError) as err:
        open_database(f"sqlite+pysqlcipher://:{KEY}@/{enc}", ask_key=never_asked)
    assert "put no key in the database URL" in str(err.value)
    assert KEY not in str(err.value)
    assert not enc.exists()


def test_a_plain_url_on_an_encrypted_file_says_how_to_open_it(
        enc: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV_VAR, KEY)
    record_some(url_of(enc))[1].close()
    before = digest(enc)
    with pytest.raises(StoreError) as err:
        open_database(f"sqlite:///{enc}")
    assert "sqlite+pysqlcipher:///" in str(err.value) and "\n" not in str(err.value)
    assert digest(enc) == before


# -- where the key comes from -----------------------------------------------------------------
def test_the_keyring_is_asked_first_under_the_files_absolute_path(
        enc: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ring = MemoryKeyring()
    ring.set_password(KEYRING_SERVICE, str(enc), KEY)
    keyring.set_keyring(ring)
    monkeypatch.setenv(KEY_ENV_VAR, "not the key")  # the keyring comes before the environment
    monkeypatch.chdir(enc.parent.parent)
    sid, database = record_some("sqlite+pysqlcipher:///data/enc.db")  # relative
    database.close()
    assert ring.asked[0] == (KEYRING_SERVICE, str(enc))
    # the file really has the keyring's key
    keyring.set_keyring(fail.Keyring())
    monkeypatch.setenv(KEY_ENV_VAR, KEY)
    with open_database(url_of(enc), ask_key=never_asked) as again:
        assert again.repository.get_session(sid).patient_id == PATIENT


def test_a_keyring_without_the_entry_falls_through_to_the_environment(
        enc: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ring = MemoryKeyring()
    keyring.set_keyring(ring)
    monkeypatch.setenv(KEY_ENV_VAR, KEY)
    record_some(url_of(enc))[1].close()
    assert ring.asked == [(KEYRING_SERVICE, str(enc))]


def test_a_new_file_is_asked_for_twice_and_a_slip_creates_nothing(enc: Path) -> None:
    prompts: list[str] = []
    typed = iter([KEY, KEY + " "])

    def ask(prompt: str) -> str:
        prompts.append(prompt)
        return next(typed)

    with pytest.raises(StoreError, match="the two keys differ"):
        open_database(url_of(enc), ask_key=ask)
    assert len(prompts) == 2 and str(enc) in prompts[0] and "the new encrypted" in prompts[0]
    assert not enc.exists()

    answers = iter([KEY, KEY])
    record_some(url_of(enc), ask=lambda _p: next(answers))[1].close()
    asked_again: list[str] = []
    with open_database(url_of(enc), ask_key=lambda p: asked_again.append(p) or KEY) as again:
        assert again.repository.list_sessions()[0].patient_id == PATIENT
    # an existing file: asked once
    assert len(asked_again) == 1 and "the new encrypted" not in asked_again[0]


def test_the_key_is_never_logged_nor_stored(
        enc: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv(KEY_ENV_VAR, KEY)
    caplog.set_level(logging.DEBUG)  # every logger
    caplog.set_level(logging.DEBUG, logger="sqlalchemy")  # its statements too (default WARN)
    _, database = record_some(url_of(enc))
    with database.engine.connect() as conn:
        conn.exec_driver_sql("SELECT count(*) FROM readings").scalar()
    shown = [database.url, str(database.engine.url), repr(database.engine)]
    database.close()
    assert any("from $INFUSION_MONITOR_DB_KEY" in r.getMessage() for r in caplog.records)
    assert any(r.name.startswith("sqlalchemy.engine") for r in caplog.records), (
        "SQLAlchemy logged no statement: the check below would prove little")
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert KEY not in logged and KEY not in caplog.text
    assert all(KEY not in s for s in shown)
    # nothing in the decrypted database holds it either
    conn = sqlcipher3.connect(str(enc))
    try:
        conn.execute("PRAGMA key = " + "'" + KEY.replace("'", "''") + "'")
        tables = [t for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        dump = "\n".join(repr(row) for t in tables for row in conn.execute(f'SELECT * FROM "{t}"'))
    finally:
        conn.close()
    assert PATIENT in dump  # the dump is real
    assert KEY not in dump


# -- db check and db encrypt (in process) -----------------------------------------------------
def test_db_check_reports_an_encrypted_file_and_a_wrong_key(
        enc: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV_VAR, KEY)
    record_some(url_of(enc))[1].close()
    report = inspect_database(url_of(enc), ask_key=never_asked)
    assert report.current and "encrypted (SQLCipher)" in report.engine
    assert report.engine.startswith("SQLite 3.") and "(WAL)" in report.engine
    monkeypatch.setenv(KEY_ENV_VAR, "wrong")
    report = inspect_database(url_of(enc), ask_key=never_asked)
    assert not report.current and "wrong key" in report.problem


def test_encrypt_refuses_to_overwrite_and_leaves_nothing_on_a_failure(
        tmp_path: Path, enc: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plain = tmp_path / "plain.db"
    record_some(f"sqlite:///{plain}")[1].close()
    enc.parent.mkdir()
    enc.write_bytes(b"already here")
    with pytest.raises(StoreError, match="already exists"):
        encrypt_copy(f"sqlite:///{plain}", url_of(enc), ask_key=never_asked)
    assert enc.read_bytes() == b"already here"
    enc.unlink()
    with pytest.raises(StoreError, match="no key"):
        encrypt_copy(f"sqlite:///{plain}", url_of(enc), ask_key=lambda _p: None)
    assert not enc.exists()
    with pytest.raises(StoreError, match="plain SQLite file"):
        encrypt_copy(url_of(plain), url_of(enc), ask_key=never_asked)


# -- the command line ---------------------------------------------------------------------------
def cli(*args: str, key: str | None = KEY) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != KEY_ENV_VAR}
    env["PYTHON_KEYRING_BACKEND"] = "keyring.backends.fail.Keyring"  # a headless machine
    if key is not None:
        env[KEY_ENV_VAR] = key
    return subprocess.run([sys.executable, "-m", "infusion_monitor.cli", *args],
                          capture_output=True, text=True, timeout=180, env=env,
                          stdin=subprocess.DEVNULL)  # not a terminal: nobody to ask


def one_line_error(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 1, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("infusion-monitor: "), done.stderr
    return lines[0]


def test_import_sessions_and_export_through_the_cli(enc: Path) -> None:
    url = url_of(enc)
    done = cli("-v", "--db", url, "import", "--protocol", "datex-s5", str(FIXTURE),
               "--patient", PATIENT)
    assert done.returncode == 0, done.stderr
    sid = int(done.stdout.strip())
    assert "from $INFUSION_MONITOR_DB_KEY" in done.stderr and KEY not in done.stderr
    listed = cli("--db", url, "sessions", "--json")
    assert listed.returncode == 0, listed.stderr
    [row] = json.loads(listed.stdout)
    assert (row["id"], row["patient_id"], row["readings"]) == (sid, PATIENT, 123)
    out = enc.parent / "readings.csv"
    exported = cli("--db", url, "export", str(sid), "--format", "csv", "-o", str(out))
    assert exported.returncode == 0, exported.stderr
    lines = out.read_text().splitlines()
    assert lines[1] == "2021-07-03T03:14:19Z,hr,78,/min,ok" and len(lines) == 124
    assert not enc.read_bytes().startswith(b"SQLite format 3")
    assert PATIENT.encode() not in raw_bytes(enc)


def test_cli_wrong_or_missing_key_exits_1_with_one_line_and_changes_nothing(enc: Path) -> None:
    url = url_of(enc)
    assert cli("--db", url, "import", "--protocol", "datex-s5", str(FIXTURE)).returncode == 0
    before = digest(enc)
    wrong = one_line_error(cli("--db", url, "sessions", "--json", key="wrong key"))
    assert "wrong key or not an encrypted Infusion Monitor database" in wrong
    missing = one_line_error(cli("--db", url, "sessions", key=None))
    assert "no key for the encrypted database" in missing
    plain = one_line_error(cli("--db", f"sqlite:///{enc}", "sessions", key=None))
    assert "sqlite+pysqlcipher:///" in plain
    assert digest(enc) == before
    new = enc.parent / "new.db"
    one_line_error(cli("--db", url_of(new), "sessions", key=None))
    assert not new.exists()


def test_db_encrypt_copies_everything_and_the_audit_trail_still_verifies(
        tmp_path: Path, enc: Path) -> None:
    plain = tmp_path / "plain.db"
    done = cli("--db", str(plain), "import", "--protocol", "datex-s5", str(FIXTURE),
               "--patient", PATIENT, key=None)
    assert done.returncode == 0, done.stderr
    before = plain.read_bytes()
    done = cli("db", "encrypt", "--db", f"sqlite:///{plain}", "--out", url_of(enc))
    assert done.returncode == 0, done.stderr
    assert "encrypted copy" in done.stdout and KEY not in done.stdout + done.stderr
    assert plain.read_bytes() == before  # the source only read
    assert enc.stat().st_mode & 0o777 == 0o600
    assert not enc.read_bytes().startswith(b"SQLite format 3")
    assert PATIENT.encode() not in raw_bytes(enc)
    assert (json.loads(cli("--db", url_of(enc), "sessions", "--json").stdout)
            == json.loads(cli("--db", str(plain), "sessions", "--json", key=None).stdout))
    verified = cli("--db", url_of(enc), "audit", "verify")
    assert verified.returncode == 0 and "audit trail intact" in verified.stdout
    check = cli("db", "check", "--db", url_of(enc))
    assert check.returncode == 0 and "encrypted (SQLCipher)" in check.stdout
    again = cli("db", "encrypt", "--db", f"sqlite:///{plain}", "--out", url_of(enc))
    assert "already exists" in one_line_error(again)


def test_record_from_the_simulator_into_an_encrypted_file(
        tmp_path: Path, enc: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """simulator -> pty -> ``record`` (its writer thread) -> SQLCipher, value by value."""
    from tests.e2e.conftest import Run

    monkeypatch.setenv(KEY_ENV_VAR, KEY)  # the simulator and record inherit it
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    run = Run(tmp_path, url_of(enc))
    try:
        sid = run.record_whole_session("--scenario", "typical", "--speed", "60",
                                       "--duration", "660", "--seed", "7", timeout=180)
        truth = run.truth_values()
        stored = run.db_readings(sid)
    finally:
        run.cleanup()
    assert sorted((r.vital.value, r.value, r.t_device) for r in stored) == sorted(truth.elements())
    assert KEY not in run.record_err
    assert PATIENT.encode() not in raw_bytes(enc) and b"nibp_sys" not in raw_bytes(enc)
