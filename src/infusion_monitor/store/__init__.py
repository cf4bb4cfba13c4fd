"""Durable storage of sessions, readings and device events (SQLite or PostgreSQL); no Qt here."""

from infusion_monitor.store import (  # noqa: F401 - their tables
    models_clinical,
    models_defaults,
    models_users,
)
from infusion_monitor.store.db import Database, default_db_path, open_database, resolve_url
from infusion_monitor.store.repository import Repository, SessionInfo
from infusion_monitor.store.writer import StoreWriter

__all__ = [
    "Database",
    "Repository",
    "SessionInfo",
    "StoreWriter",
    "default_db_path",
    "open_database",
    "resolve_url",
]
