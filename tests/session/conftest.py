"""The session tests' database: a fresh SQLite file per test (test_auth runs on both engines)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from infusion_monitor.store import Database, open_database


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = open_database(f"sqlite:///{tmp_path / 'session.db'}")
    yield database
    database.close()
