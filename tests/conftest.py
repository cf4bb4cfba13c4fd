"""Database fixtures for every suite: each test that stores or reads clinical data runs once on a
fresh SQLite file and once on a fresh PostgreSQL database (see tests/pgdb.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from infusion_monitor.store import Database, open_database
from tests.pgdb import ENGINES, database_url, pg_server, scratch_database


@pytest.fixture
def sqlite_url(tmp_path: Path) -> Iterator[str]:
    with database_url("sqlite", tmp_path) as url:
        yield url


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A uniquely named database on the server in $INFUSION_MONITOR_TEST_PG, dropped afterwards."""
    with scratch_database(pg_server()) as url:
        yield url


@pytest.fixture(params=ENGINES)
def db_url(request: pytest.FixtureRequest) -> str:
    """Each test using this runs once on SQLite and once on PostgreSQL."""
    name = "sqlite_url" if request.param == "sqlite" else "pg_url"
    return str(request.getfixturevalue(name))


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    """A migrated database on the engine ``db_url`` names, closed afterwards."""
    database = open_database(db_url)
    yield database
    database.close()


@pytest.fixture
def no_keyring(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """As on a headless machine: no database key in the environment, and keyring's own backend
    that has no keyring (it raises). For the encryption tests."""
    import keyring
    from keyring.backends import fail

    from infusion_monitor.store.keys import KEY_ENV_VAR

    monkeypatch.delenv(KEY_ENV_VAR, raising=False)
    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    yield
    keyring.set_keyring(previous)
