"""``db encrypt``: an encrypted copy of a plain SQLite database (SQLCipher's sqlcipher_export).

The plain file is only read; the copy is a new file (never an existing one overwritten),
created owner-only, then opened the app's way (WAL, migrations) to prove its key works.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import make_url
from sqlalchemy.exc import ArgumentError

from infusion_monitor.errors import StoreError
from infusion_monitor.store.db import (
    _create_sqlite_file,
    inspect_database,
    open_database,
    schema_status,
)
from infusion_monitor.store.keys import (
    AskKey,
    ask_on_terminal,
    check_encrypted_url,
    database_key,
    is_encrypted,
)


def encrypt_copy(plain_url: str, out_url: str, ask_key: AskKey | None = ask_on_terminal) -> str:
    """Copy the plain SQLite database at ``plain_url`` into the new encrypted file
    ``out_url`` names; returns the copy's schema revision. StoreError on any failure, and
    then no copy is left behind."""
    try:
        src, out = make_url(plain_url), make_url(out_url)
    except ArgumentError as exc:
        raise StoreError(f"not a database URL: {exc}") from exc
    shown_src = src.render_as_string(hide_password=True)
    shown_out = out.render_as_string(hide_password=True)
    if src.get_backend_name() != "sqlite" or is_encrypted(src) or not src.database:
        raise StoreError(f"--db {shown_src}: db encrypt copies a plain SQLite file "
                         "(sqlite:///PATH)")
    if not is_encrypted(out):
        raise StoreError(f"--out {shown_out}: name the encrypted copy as "
                         "sqlite+pysqlcipher:///PATH")
    path = check_encrypted_url(out, shown_out)
    if path.exists() and path.stat().st_size > 0:
        raise StoreError(f"--out {shown_out} already exists: name a new file "
                         "(nothing is overwritten)")
    report = inspect_database(plain_url)  # ours, readable; changes nothing
    if report.problem:
        raise StoreError(f"{shown_src}: {report.problem}")
    key = database_key(path, shown_out, ask=ask_key)
    _create_sqlite_file(out, shown_out)
    try:
        _export(Path(src.database), path, key)
        with open_database(out_url, ask_key=lambda _prompt: key) as database:
            revision, _ = schema_status(database.engine)
    except BaseException:
        for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
            leftover.unlink(missing_ok=True)
        raise
    return str(revision)


def _export(plain: Path, encrypted: Path, key: str) -> None:
    """SQLCipher's documented way to encrypt a plain database: attach the new file with a key,
    then ``sqlcipher_export`` copies the schema and every row into it."""
    import sqlcipher3

    conn = sqlcipher3.connect(str(plain))
    try:
        conn.execute("PRAGMA cipher_log_level = NONE")
        conn.execute("PRAGMA busy_timeout = 5000")
        conn.execute("ATTACH DATABASE ? AS encrypted KEY ?", (str(encrypted), key))
        conn.execute("SELECT sqlcipher_export('encrypted')")
        conn.execute("DETACH DATABASE encrypted")
    except sqlcipher3.Error as exc:
        raise StoreError(f"cannot encrypt {plain} into {encrypted}: {exc}") from exc
    finally:
        conn.close()
