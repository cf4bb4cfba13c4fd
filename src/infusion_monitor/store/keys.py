"""The key of an encrypted SQLite file (SQLCipher): found, never logged, printed or stored.

Where it comes from, in order: the OS keyring (service ``infusion-monitor``, user name the
file's absolute path), then ``$INFUSION_MONITOR_DB_KEY`` (for services and tests: every child
process inherits it), then whoever is asked (a no-echo prompt on a terminal, a password dialog
in the GUI); else a one-line error saying how to give it. It is never part of the URL: a URL
ends up in the shell history, the process list and messages.
"""

from __future__ import annotations

import getpass
import logging
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from sqlalchemy import URL

from infusion_monitor.errors import StoreError

log = logging.getLogger(__name__)

KEY_ENV_VAR = "INFUSION_MONITOR_DB_KEY"
KEYRING_SERVICE = "infusion-monitor"
ENCRYPTED_DRIVER = "pysqlcipher"
EXTRA_HINT = "pip install 'infusion-monitor[encryption]'"

#: Asks a person for the key: gets the prompt, returns the key, or None (no one to ask, or
#: cancelled). The terminal's is ``ask_on_terminal``; the GUI passes a password dialog.
AskKey = Callable[[str], str | None]


def is_encrypted(url: URL) -> bool:
    """Whether ``url`` names an SQLCipher file (``sqlite+pysqlcipher:///PATH``)."""
    return url.get_backend_name() == "sqlite" and url.get_driver_name() == ENCRYPTED_DRIVER


def ask_on_terminal(prompt: str) -> str | None:
    """The key typed without echo, or None when standard input is not a terminal."""
    if not sys.stdin.isatty():
        return None
    return getpass.getpass(prompt)


def check_encrypted_url(url: URL, shown: str) -> Path:
    """The file an encrypted URL names; StoreError for a key in the URL or no file."""
    if url.password is not None:
        raise StoreError(
            f"{shown}: put no key in the database URL (it would show in the shell history and "
            f"the process list); keep it in the OS keyring, or in ${KEY_ENV_VAR}, or type it "
            "when asked"
        )
    if not url.database or url.database == ":memory:":
        raise StoreError(f"{shown}: an encrypted database must be a file "
                         "(sqlite+pysqlcipher:///PATH)")
    try:
        import sqlcipher3  # noqa: F401 - only whether SQLAlchemy's pysqlcipher driver is there
    except ImportError as exc:
        raise StoreError(f"{shown}: encryption needs SQLCipher: {EXTRA_HINT}") from exc
    return Path(url.database).expanduser().resolve()


def database_key(path: Path, shown: str, *, ask: AskKey | None = ask_on_terminal,
                 environ: Mapping[str, str] | None = None) -> str:
    """The key of the encrypted file at ``path``: keyring, environment, then ``ask``.

    A new (absent or empty) file is asked for twice, so a typing slip cannot lock its data
    away. StoreError when no source has a key, or the two typed keys differ.
    """
    env = os.environ if environ is None else environ
    key = _from_keyring(path)
    if key:
        log.info("key for %s: from the OS keyring", shown)
        return key
    key = env.get(KEY_ENV_VAR, "")
    if key:
        log.info("key for %s: from $%s", shown, KEY_ENV_VAR)
        return key
    new = not path.exists() or path.stat().st_size == 0
    key = (ask(f"Key for the {'new ' if new else ''}encrypted database {path}: ")
           if ask is not None else None)
    if not key:
        raise StoreError(
            f"no key for the encrypted database {shown}: store it in the OS keyring "
            f"(keyring set {KEYRING_SERVICE} {path}), or set ${KEY_ENV_VAR}, "
            "or run from a terminal to type it"
        )
    if new and ask is not None and ask("Repeat the key: ") != key:
        raise StoreError(f"the two keys differ: {shown} was not created")
    log.info("key for %s: typed", shown)
    return key


def _from_keyring(path: Path) -> str | None:
    """The key kept in the OS keyring, or None: no keyring package, no usable backend (a
    headless machine), or no entry."""
    try:
        import keyring
        from keyring.errors import KeyringError
    except ImportError:
        return None
    try:
        return keyring.get_password(KEYRING_SERVICE, str(path))
    except KeyringError as exc:  # e.g. NoKeyringError, a locked keyring: fall through
        log.info("OS keyring not used: %s", type(exc).__name__)
        return None
