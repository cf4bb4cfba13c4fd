"""Tell the clinic overview that a session changed: PostgreSQL NOTIFY, sent with the data.

The notification is sent inside the writing transaction, so PostgreSQL delivers it at commit
and only if the data committed: a listener that re-queries on it always finds the new rows.
SQLite has no notifications (one chair, one machine); its listener polls instead.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, text

#: The LISTEN/NOTIFY channel; the payload is the changed session's id, in decimal.
CHANNEL = "infusion_monitor"

_NOTIFY = text("SELECT pg_notify(:channel, :payload)")


def notify_changed(conn: Connection, session_ids: int | Iterable[int]) -> None:
    """Queue one notification per changed session on ``conn``'s transaction (PostgreSQL only).

    PostgreSQL folds identical notifications of one transaction into one.
    """
    if conn.dialect.name != "postgresql":
        return
    ids = {session_ids} if isinstance(session_ids, int) else set(session_ids)
    for sid in sorted(ids):
        conn.execute(_NOTIFY, {"channel": CHANNEL, "payload": str(int(sid))})
