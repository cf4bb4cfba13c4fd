"""Alembic environment: runs on the connection open_database() hands over, never from an ini."""

from __future__ import annotations

from alembic import context

from infusion_monitor.store import (  # noqa: F401 - their tables
    models_clinical,
    models_defaults,
    models_users,
)
from infusion_monitor.store.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through infusion_monitor.store.db.open_database()")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    # SQLite cannot ALTER most things; batch mode copies the table instead.
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
