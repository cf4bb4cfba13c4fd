"""Database fixtures: a fresh SQLite file, and a fresh PostgreSQL database when configured."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from infusion_monitor.store import Database, open_database
from tests.pgdb import scratch_database

PG_ENV = "INFUSION_MONITOR_TEST_PG"


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'data' / 'test.db'}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A uniquely named database on the server in $INFUSION_MONITOR_TEST_PG, dropped afterwards."""
    base = os.environ.get(PG_ENV)
    if not base:
        if os.environ.get("CI"):
            pytest.fail(f"{PG_ENV} is not set: a PostgreSQL server is required in CI")
        pytest.skip(f"set {PG_ENV}=postgresql+psycopg://user@host:5432/db to run PostgreSQL tests")
    with scratch_database(base) as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
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
