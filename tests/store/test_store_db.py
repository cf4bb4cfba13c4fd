"""Opening the database: durable SQLite, permissions, migrations, refusing foreign files."""

from __future__ import annotations

import os
import sqlite3
import stat
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from infusion_monitor.errors import StoreError
from infusion_monitor.store import db as db_module
from infusion_monitor.store.db import default_db_path, open_database, resolve_url
from infusion_monitor.store.models import Base


def test_sqlite_connections_use_wal_and_full_sync(sqlite_url: str) -> None:
    # SQLite only: WAL, synchronous and busy_timeout are SQLite pragmas.
    with open_database(sqlite_url) as db:
        # Several pooled connections, each must have the pragmas.
        conns = [db.engine.connect() for _ in range(3)]
        try:
            for conn in conns:
                assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
                assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL
                assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
                assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
        finally:
            for conn in conns:
                conn.close()


def test_sqlite_file_is_owner_only(tmp_path: Path) -> None:
    # SQLite only: the file's mode; PostgreSQL's files belong to its server.
    path = tmp_path / "new" / "dir" / "im.db"
    with open_database(f"sqlite:///{path}") as db:
        db.repository.create_session(source="record", protocol="p", started=datetime.now(UTC))
        wal = path.with_name(path.name + "-wal")
        assert wal.exists()  # SQLite gives the WAL the database file's mode
        assert stat.S_IMODE(os.stat(wal).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_failed_transaction_leaves_no_half_schema(sqlite_url: str) -> None:
    # SQLite only: DDL is transactional on PostgreSQL anyway; it must be on SQLite too, so a
    # migration cut short leaves nothing behind.
    with open_database(sqlite_url) as db:
        with pytest.raises(RuntimeError), db.engine.begin() as conn:
            conn.exec_driver_sql("CREATE TABLE half (x INTEGER)")
            raise RuntimeError("interrupted")
        assert "half" not in inspect(db.engine).get_table_names()


def test_store_does_not_import_qt() -> None:
    code = (
        "import sys, infusion_monitor.store;"
        "assert not [m for m in sys.modules if m.startswith(('PySide6', 'pyqtgraph'))]"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_migration_creates_tables_at_head(db_url: str) -> None:
    with open_database(db_url) as db:
        tables = set(inspect(db.engine).get_table_names())
        assert {"sessions", "readings", "device_events", "alembic_version", "checkins",
                "phase_markers", "minute_entries", "notes", "cadss_forms", "alarm_events",
                "limit_changes", "signoffs"} <= tables
        head = ScriptDirectory.from_config(db_module._alembic_config()).get_current_head()
        assert head is not None and head >= "0003"
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar() == head
            # The migrations build exactly what the models describe.
            assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
        indexes = {ix["name"] for ix in inspect(db.engine).get_indexes("readings")}
        assert "ix_readings_session_id_t_us" in indexes


def test_reopening_is_idempotent(db_url: str) -> None:
    with open_database(db_url) as db:
        sid = db.repository.create_session(source="record", protocol="p", started=datetime.now(UTC))
    with open_database(db_url) as db:
        assert db.repository.get_session(sid).protocol == "p"


def test_corrupt_file_is_a_clear_store_error(tmp_path: Path) -> None:
    # SQLite only: a corrupt database file.
    path = tmp_path / "junk.db"
    path.write_bytes(os.urandom(8192))
    with pytest.raises(StoreError, match="not an Infusion Monitor database") as info:
        open_database(f"sqlite:///{path}")
    assert "\n" not in str(info.value)


def test_foreign_database_with_unknown_revision_is_refused(tmp_path: Path) -> None:
    # SQLite only: another program's SQLite file, made with sqlite3 and checked byte for byte
    # afterwards (a foreign PostgreSQL database: test_cli_db, on both engines).
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
        conn.execute("CREATE TABLE alembic_version (version_num VARCHAR(32) PRIMARY KEY)")
        conn.execute("INSERT INTO alembic_version VALUES ('9f3c1a2b7d4e')")
    conn.close()
    with pytest.raises(StoreError, match="9f3c1a2b7d4e"):
        open_database(f"sqlite:///{path}")
    with sqlite3.connect(path) as conn:  # left untouched
        assert conn.execute("SELECT version_num FROM alembic_version").fetchall() == [
            ("9f3c1a2b7d4e",)
        ]
        assert "sessions" not in {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    conn.close()


def test_foreign_database_without_alembic_is_refused(tmp_path: Path) -> None:
    # SQLite only: another program's SQLite file (PostgreSQL: test_cli_db, on both engines).
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
    conn.close()
    with pytest.raises(StoreError, match=r"another application.*invoices"):
        open_database(f"sqlite:///{path}")


def test_bad_url_and_unreachable_server_are_store_errors(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="not a database URL"):
        open_database("not a url")
    with pytest.raises(StoreError, match="unsupported database"):
        open_database("nonsense://")
    with pytest.raises(StoreError, match="cannot open database"):
        open_database("postgresql+psycopg://nobody:secret@127.0.0.1:1/none?connect_timeout=2")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="cannot create database file"):
        open_database(f"sqlite:///{blocker / 'sub' / 'im.db'}")


def test_password_is_not_shown_in_errors() -> None:
    with pytest.raises(StoreError) as info:
        open_database("postgresql+psycopg://nobody:secret@127.0.0.1:1/none?connect_timeout=2")
    assert "secret" not in str(info.value)


def test_resolve_url_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(db_module, "default_db_path", lambda: tmp_path / "default.db")
    monkeypatch.delenv("INFUSION_MONITOR_DB", raising=False)
    assert resolve_url(None) == f"sqlite:///{tmp_path / 'default.db'}"
    monkeypatch.setenv("INFUSION_MONITOR_DB", "postgresql+psycopg://u@h/env")
    assert resolve_url(None) == "postgresql+psycopg://u@h/env"
    assert resolve_url("sqlite:///cli.db") == "sqlite:///cli.db"
    monkeypatch.chdir(tmp_path)
    assert resolve_url("rel/x.db") == f"sqlite:///{tmp_path / 'rel' / 'x.db'}"
    monkeypatch.setenv("INFUSION_MONITOR_DB", "")
    assert resolve_url(None) == f"sqlite:///{tmp_path / 'default.db'}"


def test_default_path_is_in_user_data_dir() -> None:
    path = default_db_path()
    assert path.name == "infusion-monitor.db"
    assert "infusion-monitor" in path.parent.as_posix()


def test_resolved_plain_path_opens(tmp_path: Path) -> None:
    with open_database(resolve_url(str(tmp_path / "plain.db"))) as db:
        assert db.repository.list_sessions() == []
    assert (tmp_path / "plain.db").is_file()
