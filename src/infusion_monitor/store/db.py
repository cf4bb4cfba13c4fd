"""Where the database is, and opening it safely: durable SQLite settings, then migrations."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import URL, Connection, Engine, create_engine, event, inspect, make_url, text
from sqlalchemy.exc import ArgumentError, DatabaseError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import NullPool, QueuePool, StaticPool

from infusion_monitor.errors import StoreError
from infusion_monitor.store.keys import (
    AskKey,
    ask_on_terminal,
    check_encrypted_url,
    database_key,
    is_encrypted,
)
from infusion_monitor.store.repository import Repository, reason_of

ENV_VAR = "INFUSION_MONITOR_DB"
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_OUR_VERSION_TABLE = "alembic_version"


def default_db_path() -> Path:
    """The per-user SQLite file used when neither --db nor the environment names a database."""
    return Path(platformdirs.user_data_dir("infusion-monitor")) / "infusion-monitor.db"


def resolve_url(cli_url: str | None) -> str:
    """--db, else $INFUSION_MONITOR_DB, else the default file; a bare path means a SQLite file."""
    raw = cli_url or os.environ.get(ENV_VAR) or ""
    if not raw.strip():
        return f"sqlite:///{default_db_path()}"
    if "://" in raw:
        return raw
    return f"sqlite:///{Path(raw).expanduser().resolve()}"


class Database:
    """An open, migrated database: the engine and the repository over it."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.repository = Repository(engine)

    @property
    def url(self) -> str:
        """The URL with any password hidden, for messages."""
        return self.engine.url.render_as_string(hide_password=True)

    def close(self) -> None:
        """Release every pooled connection."""
        self.engine.dispose()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_database(url: str, ask_key: AskKey | None = ask_on_terminal) -> Database:
    """Open (creating if needed) and migrate the database at ``url``; StoreError on any failure.

    An encrypted file (``sqlite+pysqlcipher:///PATH``) needs its key: see store/keys.py;
    ``ask_key`` asks a person for it when neither the keyring nor the environment has it.
    """
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"not a database URL: {url!r} (expected e.g. sqlite:///path)") from exc
    shown = parsed.render_as_string(hide_password=True)
    is_sqlite = parsed.get_backend_name() == "sqlite"
    encrypted = is_encrypted(parsed)
    if encrypted:  # before the file is created: no key, no file
        parsed = _with_key(parsed, shown, ask_key)
    if is_sqlite:
        _create_sqlite_file(parsed, shown)
    try:
        engine = _make_engine(parsed)
    except NoSuchModuleError as exc:
        raise StoreError(
            f"unsupported database {shown}: use sqlite:///PATH or postgresql+psycopg://..."
        ) from exc
    except (SQLAlchemyError, ImportError) as exc:
        raise StoreError(f"cannot use database {shown}: {reason_of(exc)}") from exc
    try:
        if is_sqlite:
            _check_sqlite_file(parsed, shown)
        _migrate(engine, shown)
    except StoreError:
        engine.dispose()
        raise
    except (SQLAlchemyError, CommandError, OSError) as exc:
        engine.dispose()
        if encrypted and "not a database" in str(exc):
            raise StoreError(wrong_key_message(shown)) from exc
        if is_sqlite and "not a database" in str(exc):
            raise StoreError(
                f"{shown} is not an Infusion Monitor database (not SQLite, or corrupt);"
                " restore it from a backup or choose another --db (an encrypted one opens"
                " as sqlite+pysqlcipher:///PATH)"
            ) from exc
        raise StoreError(f"cannot open database {shown}: {reason_of(exc)}") from exc
    return Database(engine)


def _create_sqlite_file(url: URL, shown: str) -> None:
    """Create the file owner-only before SQLite does, since it holds patient data."""
    if not url.database or url.database == ":memory:" or url.query.get("mode") == "memory":
        return
    path = Path(url.database)
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    except OSError as exc:
        raise StoreError(f"cannot create database file {shown}: {exc.strerror or exc}") from exc
    os.close(fd)


def _check_sqlite_file(url: URL, shown: str) -> None:
    """Refuse a damaged, foreign or newer file before anything writes to it.

    Our connections switch the file to WAL, which rewrites a foreign file's header; this
    looks through a plain connection first. ``quick_check`` reads every page (measured: 2.6 s
    for 166 MB cached, 9 s uncached, on 2 busy cores): a damaged page found now is a clear
    message at start, not a failed save mid-session. A clinic's file grows by ~10 MB a
    session, so it runs only while that costs well under a second (``QUICK_CHECK_MAX_BYTES``)
    or when the last writer did not close cleanly (a non-empty ``-wal`` file is left after a
    crash, a power cut or a killed process); ``infusion-monitor db check`` always runs it.
    """
    if not url.database or url.database == ":memory:" or url.query.get("mode") == "memory":
        return
    path = Path(url.database)
    if path.is_dir():
        raise StoreError(f"{shown} is a directory, not a database file; choose a file for --db")
    if path.stat().st_size == 0:
        return  # new: created just now, or by someone for us
    engine = create_engine(url, poolclass=NullPool)
    if is_encrypted(url):
        event.listen(engine, "connect", _sqlcipher_on_connect)
    try:
        with engine.connect() as conn:
            if needs_quick_check(path):
                problems = [str(r[0]) for r in conn.exec_driver_sql("PRAGMA quick_check(3)")]
                if problems != ["ok"]:
                    raise StoreError(damaged_message(shown, problems[0]))
            _check_ours(conn, ScriptDirectory.from_config(_alembic_config()), shown)
    except DatabaseError as exc:
        if "malformed" in str(exc):
            raise StoreError(damaged_message(shown, reason_of(exc))) from exc
        raise
    finally:
        engine.dispose()


#: Files up to this size are checked page by page at every start (~0.2 s here).
QUICK_CHECK_MAX_BYTES = 16 * 1024 * 1024


def needs_quick_check(path: Path) -> bool:
    """Whether opening ``path`` runs ``quick_check``: a small file, or an unclean last close."""
    wal = path.with_name(path.name + "-wal")
    unclean = wal.exists() and wal.stat().st_size > 0
    return unclean or path.stat().st_size <= QUICK_CHECK_MAX_BYTES


def damaged_message(shown: str, detail: str) -> str:
    return (f"{shown} is damaged ({detail}); it was left as it is: restore it from a backup"
            " or choose another --db")


def _with_key(url: URL, shown: str, ask_key: AskKey | None) -> URL:
    """The encrypted file's URL with its key as the password, which SQLAlchemy's pysqlcipher
    dialect turns into ``PRAGMA key`` on every connection (hidden whenever the URL is shown)."""
    path = check_encrypted_url(url, shown)
    return url.set(password=database_key(path, shown, ask=ask_key))


def wrong_key_message(shown: str) -> str:
    return (f"cannot open {shown}: wrong key or not an encrypted Infusion Monitor database"
            " (check the key in the OS keyring or $INFUSION_MONITOR_DB_KEY)")


def _make_engine(url: URL) -> Engine:
    """An engine; for SQLite, durable pragmas on every connection and real transactions."""
    if url.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    kwargs: dict[str, Any] = {}
    if not url.database or url.database == ":memory:":
        # One shared in-memory database, used from the writer thread too.
        kwargs = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
    elif is_encrypted(url):
        # The dialect's default, one connection per thread, closes another thread's
        # connection past five threads; the writer thread and the GUI share the engine.
        kwargs = {"poolclass": QueuePool}
    engine = create_engine(url, **kwargs)
    if is_encrypted(url):
        event.listen(engine, "connect", _sqlcipher_on_connect)
    event.listen(engine, "connect", _sqlite_on_connect)
    event.listen(engine, "begin", _sqlite_on_begin)
    return engine


def _sqlite_on_connect(dbapi_conn: Any, _record: Any) -> None:
    """WAL + synchronous=FULL: a committed reading survives power loss; readers never block."""
    # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin (so DDL is
    # transactional and a half-run migration rolls back).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    try:
        cur.execute("PRAGMA busy_timeout=5000")
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")
        cur.execute("PRAGMA foreign_keys=ON")
    finally:
        cur.close()


def _sqlcipher_on_connect(dbapi_conn: Any, _record: Any) -> None:
    """Keep SQLCipher from writing its own log lines to stderr (a wrong key prints three):
    the user gets our one-line message instead. Runs before the first read of the file."""
    cur = dbapi_conn.cursor()
    try:
        cur.execute("PRAGMA cipher_log_level = NONE")
    finally:
        cur.close()


def _sqlite_on_begin(conn: Connection) -> None:
    """Emit BEGIN ourselves; IMMEDIATE where a transaction reads before it writes (migrations)."""
    immediate = conn.get_execution_options().get("sqlite_immediate", False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("path_separator", "os")
    return cfg


#: Key of the PostgreSQL advisory lock held while migrating: workstations that start together
#: migrate one after the other (the second finds nothing left to do) instead of racing.
_MIGRATION_LOCK_KEY = 0x1F05_1017


def migrate_to(engine: Engine, revision: str = "head", shown: str | None = None) -> None:
    """Bring the schema to ``revision`` (for tests and ``db upgrade``); see ``_migrate``."""
    _migrate(engine, shown or engine.url.render_as_string(hide_password=True), revision)


def schema_status(engine: Engine) -> tuple[str | None, str]:
    """(the database's current revision or None if empty, this version's head revision)."""
    script = ScriptDirectory.from_config(_alembic_config())
    with engine.connect() as conn:
        tables = set(inspect(conn).get_table_names())
        current = None
        if _OUR_VERSION_TABLE in tables:
            current = conn.execute(text(f"SELECT version_num FROM {_OUR_VERSION_TABLE}")).scalar()
    return current, str(script.get_current_head())


@dataclass(frozen=True, slots=True)
class DatabaseReport:
    """What ``db check`` found, without changing anything."""

    url: str  # password hidden
    engine: str  # "SQLite 3.40.1 (WAL)", "PostgreSQL 15.19"
    revision: str | None  # None: empty (a new database)
    head: str
    pending: tuple[str, ...]  # migrations ``db upgrade`` would run, oldest first
    problem: str = ""  # not ours, unknown revision, cannot connect

    @property
    def current(self) -> bool:
        return not self.problem and self.revision == self.head

    def text(self) -> str:
        lines = [f"database: {self.url}", f"engine:   {self.engine or 'unknown'}"]
        if self.problem:
            lines.append(f"problem:  {self.problem}")
        elif self.revision is None:
            lines.append(f"schema:   empty; `infusion-monitor db upgrade` creates revision "
                         f"{self.head}")
        elif self.current:
            lines.append(f"schema:   revision {self.revision}, current")
        else:
            lines.append(f"schema:   revision {self.revision}; this version needs {self.head}: "
                         f"run `infusion-monitor db upgrade` ({', '.join(self.pending)})")
        return "\n".join(lines)


def inspect_database(url: str, ask_key: AskKey | None = ask_on_terminal) -> DatabaseReport:
    """Look at a database without creating, migrating or writing anything."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError(f"not a database URL: {url!r} (expected e.g. sqlite:///path)") from exc
    shown = parsed.render_as_string(hide_password=True)
    script = ScriptDirectory.from_config(_alembic_config())
    head = str(script.get_current_head())
    if parsed.get_backend_name() == "sqlite" and parsed.database and (
        not Path(parsed.database).exists()
    ):
        return DatabaseReport(shown, "SQLite", None, head, (),
                              "no such file (it is created on first use)")
    encrypted = is_encrypted(parsed)
    if encrypted:
        parsed = _with_key(parsed, shown, ask_key)
    engine = create_engine(parsed)
    if encrypted:
        event.listen(engine, "connect", _sqlcipher_on_connect)
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "sqlite":
                mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
                version = conn.exec_driver_sql("SELECT sqlite_version()").scalar()
                kind = f"SQLite {version} ({str(mode).upper()})"
                if encrypted:
                    kind += ", encrypted (SQLCipher)"
            else:
                version = conn.exec_driver_sql("SHOW server_version").scalar()
                kind = f"PostgreSQL {version}"
            try:
                _check_ours(conn, script, shown)
            except StoreError as exc:
                return DatabaseReport(shown, kind, None, head, (), str(exc))
            if engine.dialect.name == "sqlite":
                found = [str(r[0]) for r in conn.exec_driver_sql("PRAGMA quick_check(3)")]
                if found != ["ok"]:
                    return DatabaseReport(shown, kind, None, head, (),
                                          damaged_message(shown, found[0]))
        revision, _ = schema_status(engine)
    except SQLAlchemyError as exc:
        if encrypted and "not a database" in str(exc):
            return DatabaseReport(shown, "SQLCipher", None, head, (), wrong_key_message(shown))
        return DatabaseReport(shown, "", None, head, (), f"cannot connect: {reason_of(exc)}")
    finally:
        engine.dispose()
    pending = tuple(
        rev.revision for rev in reversed(list(script.walk_revisions("base", "heads")))
        if revision is None or rev.revision not in _ancestry(script, revision)
    )
    return DatabaseReport(shown, kind, revision, head, pending)


def _ancestry(script: ScriptDirectory, revision: str) -> set[str]:
    return {rev.revision for rev in script.walk_revisions("base", revision)}


def _migrate(engine: Engine, shown: str, revision: str = "head") -> None:
    """Refuse a database that is not ours, then bring ours to the newest schema."""
    cfg = _alembic_config()
    script = ScriptDirectory.from_config(cfg)
    conn = engine.connect().execution_options(sqlite_immediate=True)
    try:
        with conn.begin():
            if engine.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"),
                             {"k": _MIGRATION_LOCK_KEY})
            _check_ours(conn, script, shown)
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    finally:
        conn.close()


def _check_ours(conn: Connection, script: ScriptDirectory, shown: str) -> None:
    tables = set(inspect(conn).get_table_names())
    revisions: list[str] = []
    if _OUR_VERSION_TABLE in tables:
        rows = conn.execute(text(f"SELECT version_num FROM {_OUR_VERSION_TABLE}"))
        revisions = [r[0] for r in rows]
    if not revisions:
        others = sorted(tables - {_OUR_VERSION_TABLE})
        if others:
            raise StoreError(
                f"{shown} belongs to another application (it has tables {', '.join(others[:5])}"
                f"{', ...' if len(others) > 5 else ''}); choose another --db"
            )
        return
    known = {rev.revision for rev in script.walk_revisions()}
    unknown = [r for r in revisions if r not in known]
    if unknown:
        raise StoreError(
            f"{shown} has schema revision {unknown[0]!r}, which this version of Infusion Monitor"
            " does not know (another application's database, or a newer version's);"
            " choose another --db or upgrade"
        )

