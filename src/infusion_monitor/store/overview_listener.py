"""Hears that sessions changed in the shared database, for the clinic overview (no Qt here).

PostgreSQL: a dedicated autocommit psycopg connection LISTENs on ``notify.CHANNEL``; every
commit that wrote a session's data sends its id (store/notify.py). When the server goes away the
listener reconnects with backoff and then reports "everything" (``None``), because whatever
changed meanwhile was not heard. SQLite (one machine): ``PRAGMA data_version`` is polled; it
changes when another connection commits, which again means "everything".

``on_change(ids)`` runs on the listener's thread with the set of changed session ids, or
``None`` to re-read all: at start, after a reconnect, on SQLite, and every ``refresh_s``
without news (ages, elapsed times and "minutes unassessed" move on by themselves, and a missed
notification heals). Notifications that arrive while ``on_change`` runs, or within
``min_interval_s`` of the previous call, are gathered into the next call: with every chair's
writer committing five times a second, the overview re-reads at most ``1 / min_interval_s``
times a second however many chairs there are, and a lone change is still passed on at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from infusion_monitor.store.notify import CHANNEL
from infusion_monitor.store.repository import reason_of

log = logging.getLogger(__name__)

OnChange = Callable[[frozenset[int] | None], None]

BACKOFF_FIRST_S = 0.2
BACKOFF_MAX_S = 5.0
POLL_S = 0.5  # SQLite: how often data_version is read; PostgreSQL: how often stop is checked
MIN_INTERVAL_S = 0.25  # PostgreSQL: at most this often a re-read (see the module docstring)


class ChangeListener:
    """A thread that calls ``on_change`` when sessions in ``engine``'s database change.

    ``start()`` and ``stop()`` from the owner's thread; ``stop()`` joins the thread (within
    about ``POLL_S`` plus the running ``on_change``). ``connected`` is False while the
    database cannot be reached; ``on_status(connected, detail)`` is told when that changes.
    """

    def __init__(
        self,
        engine: Engine,
        on_change: OnChange,
        *,
        refresh_s: float = 5.0,
        on_status: Callable[[bool, str], None] | None = None,
        poll_s: float = POLL_S,
        min_interval_s: float = MIN_INTERVAL_S,
    ) -> None:
        self.engine = engine
        self._on_change = on_change
        self._on_status = on_status
        self.refresh_s = refresh_s
        self.poll_s = poll_s
        self.min_interval_s = min_interval_s
        self.connected = False
        self.reconnects = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_change = float("-inf")

    @property
    def backend(self) -> str:
        return self.engine.dialect.name

    def start(self) -> ChangeListener:
        if self._thread is not None:
            raise RuntimeError("the listener is already running")
        run = self._listen_postgres if self.backend == "postgresql" else self._poll_sqlite
        self._thread = threading.Thread(target=run, name="overview-listener", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop listening and wait for the thread. Safe to call twice."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)
            if thread.is_alive():
                log.warning("overview listener did not stop within %.0f s", timeout)

    # -- shared -----------------------------------------------------------------------------
    def _changed(self, ids: frozenset[int] | None) -> None:
        self._last_change = time.monotonic()
        try:
            self._on_change(ids)
        except Exception:  # a bug in the reader must not end the listening; it is logged
            log.exception("overview change callback failed")

    def _status(self, connected: bool, detail: str) -> None:
        if connected == self.connected:
            return
        self.connected = connected
        if self._on_status is not None:
            try:
                self._on_status(connected, detail)
            except Exception:
                log.exception("overview status callback failed")

    def _refresh_due(self) -> bool:
        return time.monotonic() - self._last_change >= self.refresh_s

    def _backoff(self, delay: float) -> float:
        """Wait ``delay`` (or until stopped); the next, longer delay."""
        self._stop.wait(delay)
        return min(delay * 2, BACKOFF_MAX_S)

    # -- PostgreSQL -------------------------------------------------------------------------
    def _conninfo(self) -> str:
        """libpq's URL for the engine's database (the driver suffix dropped)."""
        url = self.engine.url.set(drivername="postgresql")
        return url.render_as_string(hide_password=False)

    def _listen_postgres(self) -> None:
        delay = BACKOFF_FIRST_S
        first = True
        while not self._stop.is_set():
            try:
                conn = psycopg.connect(self._conninfo(), autocommit=True, connect_timeout=5,
                                       keepalives=1, keepalives_idle=10, keepalives_interval=5,
                                       keepalives_count=3)
            except psycopg.Error as exc:
                self._status(False, reason_of(exc))
                delay = self._backoff(delay)
                continue
            try:
                conn.execute(f"LISTEN {CHANNEL}")
                self._status(True, "listening")
                if not first:
                    self.reconnects += 1
                first, delay = False, BACKOFF_FIRST_S
                self._changed(None)  # whatever happened while not listening was not heard
                self._serve(conn)
            except psycopg.Error as exc:
                log.warning("overview: lost the database (%s); reconnecting", reason_of(exc))
                self._status(False, reason_of(exc))
                delay = self._backoff(delay)
            finally:
                conn.close()

    def _serve(self, conn: psycopg.Connection[Any]) -> None:
        """Hand on notifications until stopped; raises psycopg.Error when the link breaks."""
        while not self._stop.is_set():
            ids = {n.payload for n in conn.notifies(timeout=self.poll_s, stop_after=1)}
            if ids:
                # Take whatever else arrives meanwhile, so one re-read covers it all.
                rest = self.min_interval_s - (time.monotonic() - self._last_change)
                ids |= {n.payload for n in conn.notifies(timeout=max(0.0, rest))}
                self._changed(frozenset(_session_ids(ids)))
            elif self._refresh_due():
                conn.execute("SELECT 1")  # a dead server shows here, not only on the next news
                self._changed(None)

    # -- SQLite -----------------------------------------------------------------------------
    def _poll_sqlite(self) -> None:
        delay = BACKOFF_FIRST_S
        version: int | None = None
        while not self._stop.is_set():
            try:
                # One connection held throughout: data_version is per connection.
                with self.engine.connect() as conn:
                    self._status(True, "polling")
                    delay = BACKOFF_FIRST_S
                    while not self._stop.is_set():
                        now = conn.exec_driver_sql("PRAGMA data_version").scalar()
                        conn.rollback()  # end the read, or WAL readers would pin a snapshot
                        if now != version or self._refresh_due():
                            version = now
                            self._changed(None)
                        self._stop.wait(self.poll_s)
            except (SQLAlchemyError, OSError) as exc:  # the file went away or is locked
                self._status(False, reason_of(exc))
                version = None
                delay = self._backoff(delay)


def _session_ids(payloads: set[str]) -> set[int]:
    out = set()
    for p in payloads:
        try:
            out.add(int(p))
        except ValueError:
            log.warning("overview: ignoring a notification that is not a session id: %r", p)
    return out
