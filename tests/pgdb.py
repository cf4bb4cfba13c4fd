"""Test databases on either engine: a SQLite file, or a throw-away PostgreSQL database on the
server named by $INFUSION_MONITOR_TEST_PG (mandatory in CI, skipped with the reason on a laptop)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url

PG_ENV = "INFUSION_MONITOR_TEST_PG"
#: ``params=ENGINES`` runs a fixture's tests once per engine; the PostgreSQL ones are marked.
ENGINES = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def pg_server() -> str:
    """The server URL in $INFUSION_MONITOR_TEST_PG; without it, fail in CI and skip elsewhere."""
    base = os.environ.get(PG_ENV)
    if not base:
        if os.environ.get("CI"):
            pytest.fail(f"{PG_ENV} is not set: a PostgreSQL server is required in CI")
        pytest.skip(f"set {PG_ENV}=postgresql+psycopg://user@host:5432/db to run PostgreSQL tests")
    return base


@contextmanager
def scratch_database(server_url: str, prefix: str = "im_test") -> Iterator[str]:
    """Create a uniquely named database on ``server_url``'s server; yield its URL; drop it."""
    url = make_url(server_url)
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            yield url.set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


@contextmanager
def database_url(engine: str, directory: Path) -> Iterator[str]:
    """The URL of a fresh, empty database on ``engine`` ("sqlite": a file under ``directory``)."""
    if engine == "sqlite":
        yield f"sqlite:///{directory / 'data' / 'test.db'}"
    else:
        with scratch_database(pg_server()) as url:
            yield url
