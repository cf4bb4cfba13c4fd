"""Bad input at every edge (issue 8, item 6): one table per edge, each row one mistake.

Every refusal is one clear line (the CLI: ``infusion-monitor: ...`` on stderr, exit 2 for a
usage error and 1 otherwise, never a traceback) and changes nothing: row counts of every table
are the same afterwards, and a command that failed on its arguments creates no database file.
What is not a mistake (an apostrophe, SQL or HTML in a name) is stored exactly as typed and
shown inert.

Decisions, per field:
- patient ID, name, attending, nurse: required, trimmed, one line, at most the column width;
  control characters (NUL, ESC, CR/LF, U+2028) and invisible text-direction controls (U+202E)
  are refused; everything else (O'Brien, ``'; DROP TABLE ...``, ``<script>``, any script) is
  stored verbatim. The same check guards ``--patient`` on the command line.
- weight, dose, duration: finite numbers in range (NaN, inf, text and booleans refused).
- an import that is truncated mid-frame keeps its complete frames (they are what the monitor
  sent) and says so: on stderr, and as a rejected-frame event at the end of the session.
"""

from __future__ import annotations

import os
import random
import shutil
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from infusion_monitor.clock import ManualClock
from infusion_monitor.config import Settings, load_settings
from infusion_monitor.devices.base import DeviceEventKind
from infusion_monitor.errors import ChartingError, ConfigError
from infusion_monitor.session.lifecycle import SessionChart
from infusion_monitor.store import Database, open_database
from infusion_monitor.store.models import Base

# The GUI rows: Qt offscreen, read when the test's QApplication is made (after collection).
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("PYQTGRAPH_QT_LIB", "PySide6")

REPO = Path(__file__).resolve().parents[1]
S5_CAPTURE = REPO / "tests" / "fixtures" / "datex-s5" / "AS3Rawoutput1.raw"
PROTOCOLS = ("datex-s5", "intellivue", "masimo", "nonin")
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
GOOD = {
    "patient_id": "MRN-0042", "patient_name": "Ada Example", "birth_date": "1980-05-17",
    "weight_kg": 72.5, "dose_mg_per_kg": 0.5, "planned_minutes": 40,
    "attending": "Dr Who", "nurse": "N. Ightingale",
}
TEN_KB = "x" * 10_240


# -- shared helpers ---------------------------------------------------------------------------
def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """The real command in a child process (generous timeout: the machine is shared)."""
    return subprocess.run([sys.executable, "-m", "infusion_monitor.cli", *args],
                          capture_output=True, text=True, timeout=180, env=env, cwd=REPO)


def one_line_error(done: subprocess.CompletedProcess[str], code: int, says: str) -> str:
    """Exit ``code``, exactly one line on stderr, ours, naming the problem; no traceback."""
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("infusion-monitor: "), lines[0]
    assert says in lines[0], lines[0]
    assert done.returncode == code, (done.returncode, done.stderr)
    return lines[0]


def sqlite_counts(path: Path) -> dict[str, int]:
    """Rows in every table of a SQLite file (whatever tables it has)."""
    conn = sqlite3.connect(path)
    try:
        names = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
        return {n: conn.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0] for n in names}
    finally:
        conn.close()


def db_counts(db: Database) -> dict[str, int]:
    """Rows in every table of the app's schema, on either engine."""
    with db.engine.connect() as conn:
        return {t.name: conn.execute(select(func.count()).select_from(t)).scalar_one()
                for t in Base.metadata.sorted_tables}


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The child's environment: its own config and data directories, no database variable,
    so nothing outside the test's directory is read or written."""
    out = {k: v for k, v in os.environ.items() if not k.startswith("INFUSION_MONITOR_")}
    out["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    out["XDG_DATA_HOME"] = str(tmp_path / "data")
    return out


@pytest.fixture(scope="module")
def recorded_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database holding one imported session (the real S/5 capture), made once."""
    path = tmp_path_factory.mktemp("template") / "clinic.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("INFUSION_MONITOR_")}
    done = cli("--db", str(path), "import", "--protocol", "datex-s5", str(S5_CAPTURE),
               "--patient", "MRN-1", env=env)
    assert done.returncode == 0, done.stderr
    return path


@pytest.fixture(scope="module")
def captures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A 30 s capture of each protocol from the simulator (``--out FILE``)."""
    folder = tmp_path_factory.mktemp("captures")
    out = {}
    for protocol in PROTOCOLS:
        out[protocol] = folder / f"{protocol}.bin"
        sim = subprocess.run(
            [sys.executable, "-m", "simulators", "--protocol", protocol, "--scenario",
             "typical", "--duration", "30", "--out", str(out[protocol])],
            capture_output=True, text=True, timeout=180, cwd=REPO)
        assert sim.returncode == 0, sim.stderr
        assert out[protocol].stat().st_size > 0
    return out


# == 1. the settings file =====================================================================
CONFIG_ROWS = [
    # (id, settings.toml text, what the one-line message must name besides the file)
    ("escalation-as-string", 'escalation_s = "60"\n', "escalation_s must be a number"),
    ("escalation-negative", "escalation_s = -5\n", "escalation_s must be between 10 and 300"),
    ("escalation-nan", "escalation_s = nan\n", "escalation_s must be a number"),
    ("pause-as-string", 'alarm_audio_pause_s = "120"\n', "alarm_audio_pause_s must be a number"),
    ("pause-not-offered", "alarm_audio_pause_s = 90\n", "alarm_audio_pause_s must be 60, 120"),
    ("pause-boolean", "alarm_audio_pause_s = true\n", "alarm_audio_pause_s must be a number"),
    ("lock-negative", "review_lock_min = -1\n", "review_lock_min must be between 1 and 60"),
    ("lock-boolean-as-string", 'review_lock_min = "true"\n', "review_lock_min must be a number"),
    ("limit-as-string", '[thresholds]\nspo2_low = "90"\n', "spo2_low must be a number"),
    ("limit-boolean", "[thresholds]\nhr_high = true\n", "hr_high must be a number"),
    ("limit-boolean-as-string", '[thresholds]\nhr_high = "false"\n', "hr_high must be a number"),
    ("limit-negative", "[thresholds]\nhr_low = -40\n", "hr_low = -40 is not a possible"),
    ("limit-impossible", "[thresholds]\nspo2_low = 150\n", "spo2_low = 150 is not a possible"),
    ("limit-infinite", "[thresholds]\nsbp_high = inf\n", "sbp_high = inf is not a possible"),
    ("limits-out-of-order-low-above-high", "[thresholds]\nhr_low = 120\n",
     "hr_low (120) must stay below hr_high (110)"),
    ("severe-milder-than-its-limit", "[thresholds]\nspo2_low_severe = 95\n",
     "spo2_low_severe (95) must stay below spo2_low (92)"),
    ("typo-in-a-limit", "[thresholds]\nspo2_lwo = 90\n", "unknown threshold 'spo2_lwo'"),
    ("unknown-key", "escalaton_s = 60\n", "unknown setting 'escalaton_s'"),
    ("unknown-section", "[alarms]\nspo2_low = 90\n", "unknown setting 'alarms'"),
    ("thresholds-not-a-table", "thresholds = 90\n", "'thresholds' in"),
    ("workstation-a-number", "workstation_id = 4\n", "workstation_id must be a string"),
    ("workstation-blank", 'workstation_id = "   "\n', "workstation_id in"),
    ("workstation-control-character", 'workstation_id = "chair\\u0007"\n', "control characters"),
    ("invalid-toml", "spo2_low = = 90\n", "is not valid TOML"),
    ("unclosed-section", "[thresholds\nspo2_low = 90\n", "is not valid TOML"),
]


@pytest.mark.parametrize(("text", "says"), [r[1:] for r in CONFIG_ROWS],
                         ids=[r[0] for r in CONFIG_ROWS])
def test_a_wrong_settings_file_is_one_line_naming_the_key_and_the_file(
        tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "settings.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    message = str(info.value)
    assert says in message and str(path) in message
    assert "\n" not in message


@pytest.mark.parametrize("kind", ["not-utf8", "a-directory", "missing", "unreadable"])
def test_an_unreadable_settings_file_is_one_line_naming_the_file(tmp_path: Path,
                                                                 kind: str) -> None:
    path = tmp_path / "settings.toml"
    if kind == "not-utf8":
        path.write_bytes(b"spo2_low = 90\n\xff\xfe\n")
    elif kind == "a-directory":
        path.mkdir()
    elif kind == "unreadable":
        if os.geteuid() == 0:
            pytest.skip("root reads a mode-000 file anyway")
        path.write_text("spo2_low = 90\n")
        path.chmod(0)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    assert ("does not exist" if kind == "missing" else "cannot read") in message


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "[thresholds]\n"],
                         ids=["empty", "blank-lines", "comment-only", "empty-section"])
def test_an_empty_settings_file_means_the_defaults(tmp_path: Path, text: str) -> None:
    path = tmp_path / "settings.toml"
    path.write_text(text)
    assert load_settings(path) == Settings(path=path)


@pytest.mark.parametrize(("text", "says"), [
    ("[thresholds]\nspo2_lwo = 90\n", "unknown threshold 'spo2_lwo'"),
    ("escalation_s = \"soon\"\n", "escalation_s must be a number"),
    ("spo2_low = = 90\n", "is not valid TOML"),
], ids=["typo-in-a-limit", "wrong-type", "invalid-toml"])
def test_record_with_a_wrong_settings_file_stops_before_touching_the_database(
        tmp_path: Path, env: dict[str, str], text: str, says: str) -> None:
    """The default settings file (user config directory) of a real ``record`` run."""
    settings = Path(env["XDG_CONFIG_HOME"]) / "infusion-monitor" / "settings.toml"
    settings.parent.mkdir(parents=True)
    settings.write_text(text)
    db = tmp_path / "new.db"
    done = cli("--db", str(db), "record", "--protocol", "datex-s5", "--port", "loop://",
               "--seconds", "1", env=env)
    line = one_line_error(done, 1, says)
    assert str(settings) in line
    assert not db.exists()
    assert done.stdout == ""  # no session id was printed: none was created


# == 2. command-line arguments ================================================================
# (id, arguments, exit code, the message names, the database: "none" (a path that must stay
# absent) or "recorded" (a copy of recorded_db whose every table must keep its row count))
USAGE = [
    ("unknown-command", ["frobnicate"], "invalid choice: 'frobnicate'"),
    ("record-without-port", ["record", "--protocol", "datex-s5"], "--port"),
    ("record-without-protocol", ["record", "--port", "loop://"], "--protocol"),
    ("record-unknown-protocol", ["record", "--protocol", "hl7", "--port", "loop://"],
     "invalid choice: 'hl7'"),
    ("record-baud-not-a-number", ["record", "--protocol", "nonin", "--port", "loop://",
                                  "--baud", "fast"], "'fast' is not a number"),
    ("record-baud-fraction", ["record", "--protocol", "nonin", "--port", "loop://",
                              "--baud", "9600.5"], "'9600.5' is not a number"),
    ("record-baud-zero", ["record", "--protocol", "nonin", "--port", "loop://", "--baud", "0"],
     "must be a number greater than 0"),
    ("record-baud-negative", ["record", "--protocol", "nonin", "--port", "loop://",
                              "--baud=-9600"], "must be a number greater than 0"),
    ("record-seconds-not-a-number", ["record", "--protocol", "nonin", "--port", "loop://",
                                     "--seconds", "ten"], "'ten' is not a number"),
    ("record-seconds-negative", ["record", "--protocol", "nonin", "--port", "loop://",
                                 "--seconds=-5"], "must be a number greater than 0"),
    ("record-seconds-nan", ["record", "--protocol", "nonin", "--port", "loop://",
                            "--seconds", "nan"], "'nan' must be a number greater than 0"),
    ("record-seconds-infinite", ["record", "--protocol", "nonin", "--port", "loop://",
                                 "--seconds", "inf"], "'inf' must be a number greater than 0"),
    ("record-extra-argument", ["record", "--protocol", "nonin", "--port", "loop://", "surplus"],
     "unrecognized arguments: surplus"),
    ("record-patient-empty", ["record", "--protocol", "nonin", "--port", "loop://",
                              "--patient", ""], "patient ID is required"),
    ("record-patient-10kB", ["record", "--protocol", "nonin", "--port", "loop://",
                             "--patient", TEN_KB], "at most 128 characters"),
    ("record-patient-escape", ["record", "--protocol", "nonin", "--port", "loop://",
                               "--patient", "MRN\x1b[2J1"], "control character (U+001B)"),
    ("record-patient-newline", ["record", "--protocol", "nonin", "--port", "loop://",
                                "--patient", "MRN-1\r\nMRN-2"], "control character (U+000D)"),
    ("record-patient-rtl-override", ["record", "--protocol", "nonin", "--port", "loop://",
                                     "--patient", "MRN-\u202e1234"],
     "text-direction control (U+202E)"),
    ("record-workstation-blank", ["record", "--protocol", "nonin", "--port", "loop://",
                                  "--workstation", "  "], "--workstation is empty"),
    ("demo-speed-not-a-number", ["demo", "--speed", "fast"], "'fast' is not a number"),
    ("demo-speed-zero", ["demo", "--speed", "0"], "must be a number greater than 0"),
    ("demo-speed-nan", ["demo", "--speed", "nan"], "must be a number greater than 0"),
    ("demo-unknown-scenario", ["demo", "--scenario", "apnoea"], "invalid choice: 'apnoea'"),
    ("demo-seed-not-a-number", ["demo", "--seed", "x"], "invalid int value: 'x'"),
    ("detect-without-port", ["detect"], "--port"),
    ("detect-unknown-protocol", ["detect", "--port", "loop://", "--protocol", "x"],
     "invalid choice: 'x'"),
    ("import-without-file", ["import", "--protocol", "datex-s5"], "file"),
    ("import-unknown-protocol", ["import", "--protocol", "s5", str(S5_CAPTURE)],
     "invalid choice: 's5'"),
    ("import-patient-control", ["import", "--protocol", "datex-s5", str(S5_CAPTURE),
                                "--patient", "\x07MRN"], "control character (U+0007)"),
    ("sessions-extra-argument", ["sessions", "all"], "unrecognized arguments: all"),
    ("review-extra-argument", ["review", "7"], "unrecognized arguments: 7"),
    ("overview-unknown-option", ["overview", "--chairs", "6"], "unrecognized arguments"),
    ("export-without-format", ["export", "1"], "--format"),
    ("export-unknown-format", ["export", "1", "--format", "xml"], "invalid choice: 'xml'"),
    ("export-session-not-a-number", ["export", "one", "--format", "csv"],
     "'one' is not a number"),
    ("export-session-zero", ["export", "0", "--format", "csv"], "greater than 0"),
    ("export-session-negative", ["export", "-3", "--format", "csv"], "greater than 0"),
    ("export-pdf-to-the-terminal", ["export", "1", "--format", "pdf"], "give one with -o FILE"),
    ("audit-without-action", ["audit"], "ACTION"),
    ("audit-show-without-session", ["audit", "show"], "--session"),
    ("audit-show-session-not-a-number", ["audit", "show", "--session", "x"],
     "'x' is not a number"),
    ("users-without-action", ["users"], "ACTION"),
    ("users-add-without-role", ["users", "add", "r.nurse", "--name", "R. Nurse"], "--role"),
    ("users-add-unknown-role", ["users", "add", "r.nurse", "--role", "doctor", "--name", "R"],
     "invalid choice: 'doctor'"),
    ("db-without-action", ["db"], "ACTION"),
    ("db-unknown-action", ["db", "vacuum"], "invalid choice: 'vacuum'"),
]
FAILURES = [
    ("export-missing-session", ["export", "99", "--format", "csv"], "no session 99",
     "recorded"),
    ("export-pdf-missing-session", ["export", "99", "--format", "pdf", "-o", "{tmp}/r.pdf"],
     "no session 99", "recorded"),
    ("export-without-a-database", ["export", "1", "--format", "csv"], "no database at", "none"),
    ("export-into-a-missing-directory", ["export", "1", "--format", "csv", "-o",
                                         "{tmp}/missing/out.csv"], "there is no directory",
     "recorded"),
    ("export-pdf-into-a-missing-directory", ["export", "1", "--format", "pdf", "-o",
                                             "{tmp}/missing/out.pdf"],
     "there is no directory", "recorded"),
    ("export-onto-a-directory", ["export", "1", "--format", "hl7", "-o", "{tmp}"],
     "is a directory", "recorded"),
    ("export-under-a-file", ["export", "1", "--format", "fhir", "-o", "{db}/out.json"],
     "there is no directory", "recorded"),
    ("export-into-a-read-only-directory", ["export", "1", "--format", "csv", "-o",
                                           "{tmp}/read-only/out.csv"], "is not writable",
     "recorded"),
    ("audit-show-missing-session", ["audit", "show", "--session", "99"], "no session 99",
     "recorded"),
    ("audit-verify-missing-session", ["audit", "verify", "--session", "99"], "no session 99",
     "recorded"),
    ("audit-without-a-database", ["audit", "verify"], "no database at", "none"),
    ("login-without-accounts", ["sessions", "--as", "bob"], "no user accounts", "recorded"),
    ("users-list-without-accounts", ["users", "list"], "no user accounts yet", "recorded"),
    ("users-disable-without-accounts", ["users", "disable", "bob"], "no user accounts yet",
     "recorded"),
]
DB_ARGUMENT = [
    # (id, --db value, exit code, the message names)
    ("db-empty", "", 2, "--db is empty"),
    ("db-blank", "   ", 2, "--db is empty"),
    ("db-a-directory", "{tmp}", 1, "is a directory"),
    ("db-not-a-url", "notaurl://somewhere", 1, "unsupported database"),
    ("db-unknown-driver", "postgresql+nodriver://u@h/d", 1, "unsupported database"),
    ("db-nobody-listening", "postgresql+psycopg://nobody@127.0.0.1:1/none", 1,
     "cannot open database"),
    ("db-not-a-database", "{tmp}/notes.txt", 1, "notes.txt"),
]


@pytest.mark.parametrize(("args", "says"), [r[1:] for r in USAGE], ids=[r[0] for r in USAGE])
def test_a_usage_error_is_exit_2_one_line_and_creates_no_database(
        tmp_path: Path, env: dict[str, str], args: list[str], says: str) -> None:
    db = tmp_path / "never.db"
    done = cli("--db", str(db), *args, env=env)
    line = one_line_error(done, 2, says)
    assert "--help" in line  # where to read how it is used
    assert not db.exists()
    assert not Path(env["XDG_DATA_HOME"]).exists()  # nor the default one


@pytest.mark.parametrize(("args", "says", "database"), [r[1:] for r in FAILURES],
                         ids=[r[0] for r in FAILURES])
def test_a_failing_command_is_exit_1_one_line_and_changes_nothing(
        tmp_path: Path, env: dict[str, str], recorded_db: Path, args: list[str], says: str,
        database: str) -> None:
    db = tmp_path / "clinic.db"
    if database == "recorded":
        shutil.copy(recorded_db, db)
    before = sqlite_counts(db) if db.exists() else None
    read_only = tmp_path / "read-only"
    read_only.mkdir(mode=0o500)
    if "{tmp}/read-only" in " ".join(args) and os.access(read_only, os.W_OK):
        pytest.skip("this user (root) may write into a read-only directory")
    args = [a.replace("{tmp}", str(tmp_path)).replace("{db}", str(db)) for a in args]
    done = cli("--db", str(db), *args, env=env)
    one_line_error(done, 1, says)
    if before is None:
        assert not db.exists()
    else:
        assert sqlite_counts(db) == before  # not even an audit entry for the failed export
    leftovers = {p.name for p in tmp_path.iterdir()} - {"clinic.db", "clinic.db-wal",
                                                        "clinic.db-shm", "read-only", "config"}
    assert leftovers == set()  # no output file, no directory made for it
    assert list(read_only.iterdir()) == []


@pytest.mark.parametrize(("value", "code", "says"), [r[1:] for r in DB_ARGUMENT],
                         ids=[r[0] for r in DB_ARGUMENT])
def test_a_wrong_db_argument_is_one_line_and_creates_nothing(
        tmp_path: Path, env: dict[str, str], value: str, code: int, says: str) -> None:
    (tmp_path / "notes.txt").write_text("not a database\n")
    before = sorted(p.name for p in tmp_path.iterdir())
    done = cli("--db", value.replace("{tmp}", str(tmp_path)), "sessions", env=env)
    one_line_error(done, code, says)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert (tmp_path / "notes.txt").read_text() == "not a database\n"
    assert not Path(env["XDG_DATA_HOME"]).exists()  # the default database was not used


# == 3. patient fields through the core (both engines) ========================================
REFUSED = [
    # (id, field, value, the message says)
    ("id-empty", "patient_id", "", "patient ID (MRN) is required"),
    ("id-whitespace-only", "patient_id", " \t  ", "patient ID (MRN) is required"),
    ("id-10kB", "patient_id", TEN_KB, "at most 128 characters; got 10240"),
    ("id-nul", "patient_id", "MRN\x000042", "control character (U+0000)"),
    ("id-rtl-override", "patient_id", "MRN-\u202e2400", "text-direction control (U+202E)"),
    ("name-empty", "patient_name", "", "patient name is required"),
    ("name-whitespace-only", "patient_name", "   ", "patient name is required"),
    ("name-10kB", "patient_name", TEN_KB, "patient name must be at most 256 characters"),
    ("name-nul", "patient_name", "Ada\x00Example", "control character (U+0000)"),
    ("name-escape", "patient_name", "\x1b[31mAda Example", "control character (U+001B)"),
    ("name-crlf", "patient_name", "Ada\r\nExample", "control character (U+000D)"),
    ("name-line-separator", "patient_name", "Ada\u2028Example", "control character (U+2028)"),
    ("name-rtl-override", "patient_name", "Ada \u202eelpmaxE",
     "text-direction control (U+202E)"),
    ("name-isolate", "patient_name", "Ada \u2067Example", "text-direction control (U+2067)"),
    ("name-not-text", "patient_name", 42, "patient name must be text"),
    ("attending-empty", "attending", "", "attending clinician is required"),
    ("attending-10kB", "attending", TEN_KB, "at most 128 characters"),
    ("attending-tab", "attending", "Dr\tWho", "control character (U+0009)"),
    ("nurse-whitespace-only", "nurse", "\u3000 ", "nurse is required"),
    ("nurse-delete-char", "nurse", "N.\x7fIghtingale", "control character (U+007F)"),
    ("birth-date-empty", "birth_date", "", "date of birth must be written YYYY-MM-DD"),
    ("birth-date-html", "birth_date", "<script>", "got '<script>'"),
    ("birth-date-future", "birth_date", "2999-01-01", "is in the future"),
    ("birth-date-before-1900", "birth_date", "1850-01-01", "is before 1900"),
    ("birth-date-day-first", "birth_date", "17/05/1980", "YYYY-MM-DD"),
    ("weight-nan", "weight_kg", float("nan"), "weight must be a number between 20 and 300"),
    ("weight-inf", "weight_kg", float("inf"), "weight must be a number between 20 and 300"),
    ("weight-minus-inf", "weight_kg", float("-inf"), "weight must be a number"),
    ("weight-negative", "weight_kg", -70, "weight must be between 20 and 300 kg; got -70"),
    ("weight-too-high", "weight_kg", 3000, "weight must be between 20 and 300 kg; got 3000"),
    ("weight-as-text", "weight_kg", "72", "weight must be a number"),
    ("weight-boolean", "weight_kg", True, "weight must be a number"),
    ("dose-zero", "dose_mg_per_kg", 0, "planned dose must be between 0.05 and 2 mg/kg"),
    ("dose-ten-times", "dose_mg_per_kg", 5, "planned dose must be between 0.05 and 2"),
    ("dose-nan", "dose_mg_per_kg", float("nan"), "planned dose must be a number"),
    ("duration-fraction", "planned_minutes", 40.5, "planned duration must be a whole number"),
    ("duration-zero", "planned_minutes", 0, "planned duration must be between 10 and 240"),
    ("duration-inf", "planned_minutes", float("inf"), "planned duration must be a whole"),
]
VERBATIM = [
    # (id, field, value): stored and read back exactly as typed
    ("apostrophe", "patient_name", "Siobhán O'Brien"),
    ("sql-in-the-name", "patient_name", "'; DROP TABLE sessions;--"),
    ("sql-in-the-id", "patient_id", "1' OR '1'='1"),
    ("html-in-the-name", "patient_name", "<script>alert('x')</script> <b>Bold</b> &amp;"),
    ("html-in-the-attending", "attending", "Dr <i>Who</i>"),
    ("other-scripts", "patient_name", "Zoë Øster-Ñúñez محمد 山田太郎"),
    ("joiner-in-a-persian-name", "patient_name", "مهر\u200cناز"),
    ("name-at-the-column-width", "patient_name", "y" * 256),
    ("id-at-the-column-width", "patient_id", "7" * 128),
]


@pytest.fixture
def chart(db: Database) -> SessionChart:
    sid = db.repository.create_session(source="gui", protocol="datex-s5", started=T0)
    return SessionChart.open(db, sid, ManualClock(T0))


@pytest.mark.parametrize(("field", "value", "says"), [r[1:] for r in REFUSED],
                         ids=[r[0] for r in REFUSED])
def test_a_bad_check_in_field_is_refused_with_its_reason_and_writes_nothing(
        db: Database, chart: SessionChart, field: str, value: object, says: str) -> None:
    before = db_counts(db)
    with pytest.raises(ChartingError) as info:
        chart.check_in(**{**GOOD, field: value}, by="nurse.n")  # type: ignore[arg-type]
    assert says in str(info.value) and "\n" not in str(info.value)
    assert db_counts(db) == before
    assert chart.state is None


IDENTITY = [r for r in REFUSED if r[1] in ("patient_id", "patient_name")]


@pytest.mark.parametrize(("field", "value", "says"), [r[1:] for r in IDENTITY],
                         ids=[r[0] for r in IDENTITY])
def test_an_amendment_with_a_bad_field_is_refused_and_writes_nothing(
        db: Database, chart: SessionChart, field: str, value: object, says: str) -> None:
    chart.check_in(**GOOD, by="nurse.n")  # type: ignore[arg-type]
    before = db_counts(db)
    with pytest.raises(ChartingError) as info:
        chart.amend_check_in(by="nurse.n", reason="typo", **{field: value})
    assert says in str(info.value)
    assert db_counts(db) == before


@pytest.mark.parametrize(("field", "value"), [r[1:] for r in VERBATIM],
                         ids=[r[0] for r in VERBATIM])
def test_text_that_only_looks_dangerous_is_stored_exactly(
        db: Database, chart: SessionChart, field: str, value: str) -> None:
    chart.check_in(**{**GOOD, field: value}, by="nurse.n")  # type: ignore[arg-type]
    again = SessionChart.open(db, chart.session_id, ManualClock(T0)).check_in_details()
    assert again is not None and getattr(again, field) == value  # as typed, from the database
    assert db_counts(db)["sessions"] == 1  # and the sessions table is still there


# == 4. the same fields through the GUI check-in form =========================================
GUI_REFUSED = [
    # (id, field, what is typed or pasted, the message beside the field says)
    ("name-empty", "patient_name", "", "patient name is required"),
    ("name-10kB-pasted", "patient_name", TEN_KB, "at most 256 characters"),
    ("name-nul-pasted", "patient_name", "Ada\x00Example", "control character (U+0000)"),
    ("name-rtl-override-pasted", "patient_name", "Ada \u202eelpmaxE",
     "text-direction control (U+202E)"),
    ("id-escape-pasted", "patient_id", "MRN\x1b0042", "control character (U+001B)"),
    ("weight-nan", "weight_kg", "nan", "weight must be a number between 20 and 300"),
    ("weight-inf", "weight_kg", "1e999", "weight must be a number between 20 and 300"),
    ("weight-words", "weight_kg", "seventy", "weight must be a number"),
    ("dose-negative", "dose_mg_per_kg", "-0,5", "planned dose must be between 0.05 and 2"),
    ("duration-fraction", "planned_minutes", "40.5", "planned duration must be a whole"),
    ("birth-date-html", "birth_date", "<b>1980</b>", "got '<b>1980</b>'"),
]
GUI_VERBATIM = [
    ("apostrophe", "patient_name", "Siobhán O'Brien"),
    ("sql", "patient_name", "'; DROP TABLE sessions;--"),
    ("html", "patient_name", "<script>alert(1)</script>"),
]
QT_NOISE = r"^This plugin does not support propagateSizeHints\(\)$"


@pytest.fixture
def form(qtbot, chart: SessionChart):
    """The check-in form of the charting panel, offscreen, every field typed in correctly."""
    from infusion_monitor.ui.qt_checkin import CheckInForm

    widget = CheckInForm(by=lambda: "nurse.n")
    qtbot.addWidget(widget)
    widget.set_chart(chart)
    widget.show()
    qtbot.waitExposed(widget)
    for name, value in GOOD.items():
        qtbot.keyClicks(widget.fields[name], str(value))
    return widget


def put(qtbot, edit, text: str) -> None:
    """Type ``text``, or paste it when it holds what QTest cannot type (beyond ASCII)."""
    from PySide6.QtWidgets import QApplication

    edit.clear()
    if text.isascii() and text.isprintable() and len(text) < 200:
        qtbot.keyClicks(edit, text)
    else:
        QApplication.clipboard().setText(text)
        edit.paste()


@pytest.mark.qt_log_level_fail("WARNING")
@pytest.mark.qt_log_ignore(QT_NOISE)
@pytest.mark.parametrize(("field", "typed", "says"), [r[1:] for r in GUI_REFUSED],
                         ids=[r[0] for r in GUI_REFUSED])
def test_the_check_in_form_shows_the_refusal_beside_the_field_and_writes_nothing(
        qtbot, db: Database, chart: SessionChart, form, field: str, typed: str,
        says: str) -> None:
    put(qtbot, form.fields[field], typed)
    kept = form.fields[field].text()
    before = db_counts(db)
    form.button.click()
    assert db_counts(db) == before and chart.state is None
    label = form.errors[field]
    assert label.isVisible() and says in label.text()
    assert form.fields[field].text() == kept  # nothing typed is lost
    assert as_shown(label) == label.text()  # a message quoting "<b>…" is never HTML


@pytest.mark.qt_log_level_fail("WARNING")
@pytest.mark.qt_log_ignore(QT_NOISE)
@pytest.mark.parametrize(("field", "typed"), [r[1:] for r in GUI_VERBATIM],
                         ids=[r[0] for r in GUI_VERBATIM])
def test_the_check_in_form_stores_what_only_looks_dangerous_exactly(
        qtbot, db: Database, chart: SessionChart, form, field: str, typed: str) -> None:
    put(qtbot, form.fields[field], typed)
    form.button.click()
    details = chart.check_in_details()
    assert details is not None and getattr(details, field) == typed
    assert form.fields[field].text() == typed and form.fields[field].isReadOnly()


@pytest.mark.qt_log_level_fail("WARNING")
@pytest.mark.qt_log_ignore(QT_NOISE)
def test_html_in_a_name_is_shown_as_text_in_the_pdf_and_the_review(
        qtbot, tmp_path: Path, env: dict[str, str], recorded_db: Path) -> None:
    """Stored verbatim, then printed and shown as the characters typed (never markup)."""
    from PySide6.QtPdf import QPdfDocument
    from PySide6.QtWidgets import QLabel

    from infusion_monitor.export.record import load_session_record
    from infusion_monitor.ui.qt_review import ReviewWindow

    name = "<script>alert(1)</script> <b>Bold</b>"
    db_path = tmp_path / "clinic.db"
    shutil.copy(recorded_db, db_path)
    with open_database(f"sqlite:///{db_path}") as database:
        SessionChart.open(database, 1, ManualClock(T0)).check_in(
            **{**GOOD, "patient_name": name}, by="nurse.n")  # type: ignore[arg-type]
        record = load_session_record(database, 1)
    pdf = tmp_path / "record.pdf"
    done = cli("--db", str(db_path), "export", "1", "--format", "pdf", "-o", str(pdf), env=env)
    assert done.returncode == 0, done.stderr
    doc = QPdfDocument()
    assert doc.load(str(pdf)) == QPdfDocument.Error.None_
    text = "".join("".join(doc.getAllText(i).text().split()) for i in range(doc.pageCount()))
    assert "".join(name.split()) in text
    window = ReviewWindow(record, ManualClock(T0))
    qtbot.addWidget(window)
    shown = [as_shown(label) for label in window.findChildren(QLabel)]
    assert any(name in s for s in shown)
    assert not any("Bold" in s and name not in s for s in shown)  # never half-rendered


def as_shown(label) -> str:
    """The characters a QLabel displays: its text, or what its HTML renders to."""
    from PySide6.QtGui import Qt, QTextDocument

    fmt = label.textFormat()
    rich = fmt == Qt.TextFormat.RichText or (
        fmt == Qt.TextFormat.AutoText and Qt.mightBeRichText(label.text()))
    if not rich:
        return label.text()
    page = QTextDocument()
    page.setHtml(label.text())
    return page.toPlainText()


# == 5. import files ==========================================================================
IMPORT_ROWS = [
    # (id, --protocol, what the file is)
    ("empty-s5", "datex-s5", "empty"),
    ("random-bytes-s5", "datex-s5", "random"),
    ("random-bytes-intellivue", "intellivue", "random"),
    ("random-bytes-masimo", "masimo", "random"),
    ("random-bytes-nonin", "nonin", "random"),
    ("text-file-masimo", "masimo", "text"),
    ("a-directory", "datex-s5", "directory"),
    ("a-missing-file", "datex-s5", "missing"),
    *((f"{src}-capture-as-{proto}", proto, f"capture:{src}")
      for src in PROTOCOLS for proto in PROTOCOLS if src != proto),
]


@pytest.mark.parametrize(("protocol", "kind"), [r[1:] for r in IMPORT_ROWS],
                         ids=[r[0] for r in IMPORT_ROWS])
def test_an_import_of_a_bad_file_is_one_line_and_creates_no_session(
        tmp_path: Path, env: dict[str, str], captures: dict[str, Path], protocol: str,
        kind: str) -> None:
    path = tmp_path / "capture.raw"
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "random":
        path.write_bytes(random.Random(8).randbytes(20_000))
    elif kind == "text":
        path.write_text("date,time,spo2\n2026-03-02,09:00,98\n" * 100)
    elif kind == "directory":
        path.mkdir()
    elif kind.startswith("capture:"):
        shutil.copy(captures[kind.partition(":")[2]], path)
    db = tmp_path / "import.db"
    done = cli("--db", str(db), "import", "--protocol", protocol, str(path), env=env)
    says = "cannot read" if kind in ("directory", "missing") else f"no valid {protocol} frame"
    line = one_line_error(done, 1, says)
    assert str(path) in line
    assert not db.exists() and done.stdout == ""  # no database, so certainly no session


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_truncated_capture_keeps_its_complete_frames_and_says_where_it_ends(
        tmp_path: Path, env: dict[str, str], captures: dict[str, Path], protocol: str) -> None:
    """Decision: the frames before the cut are what the monitor sent, so they are imported;
    the cut is reported on stderr and recorded as a rejected-frame event in the session."""
    data = captures[protocol].read_bytes()
    whole_db, cut_db = tmp_path / "whole.db", tmp_path / "cut.db"
    whole = cli("--db", str(whole_db), "import", "--protocol", protocol,
                str(captures[protocol]), env=env)
    assert whole.returncode == 0, whole.stderr
    assert "truncated" not in whole.stderr  # a complete capture is not reported as cut
    # Cut inside a frame: 3 bytes past a complete frame's end (the end of the whole file
    # minus 3 bytes of its last frame is the easiest such place to find for every protocol).
    cut = tmp_path / "cut.raw"
    cut.write_bytes(data[:-3] if protocol != "masimo" else data.rstrip(b"\r\n")[:-3])
    done = cli("--db", str(cut_db), "import", "--protocol", protocol, str(cut), env=env)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    summary = done.stderr.strip().splitlines()[-1]
    assert "the file is truncated" in summary and "incomplete frame" in summary
    with open_database(f"sqlite:///{whole_db}") as a, open_database(f"sqlite:///{cut_db}") as b:
        full = a.repository.readings(int(whole.stdout))
        kept = b.repository.readings(int(done.stdout))
        events = b.repository.device_events(int(done.stdout))
    assert 0 < len(kept) <= len(full)
    assert [(r.vital, r.value) for r in kept] == [(r.vital, r.value) for r in full[:len(kept)]]
    assert any(e.kind is DeviceEventKind.FRAME_REJECTED and "truncated" in e.detail
               for e in events)

