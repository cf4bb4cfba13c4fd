"""The clinic overview for the attending: one tile per chair, live from the shared database.

Read-only. A ``ChangeListener`` (store/overview_listener.py) hears that sessions changed
(PostgreSQL NOTIFY, or SQLite polling) and, on its own thread, re-reads every chair with
``chair_states``; the states reach the GUI thread through a queued signal, where the tiles
only set text and colours. A database that is slow or gone therefore never freezes the window:
a banner says the overview is not current, and the tiles stay greyed until it is again.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import Callable
from datetime import datetime

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QColor, QPalette
from PySide6.QtWidgets import QApplication, QGridLayout, QLabel, QMainWindow, QVBoxLayout, QWidget
from sqlalchemy import Engine

from infusion_monitor.clock import Clock
from infusion_monitor.errors import PermissionDeniedError, StoreError
from infusion_monitor.session.auth import Access, Action
from infusion_monitor.store.overview import ChairState, chair_states
from infusion_monitor.store.overview_listener import ChangeListener
from infusion_monitor.ui import qt_theme as theme
from infusion_monitor.ui.qt_chair_tile import ChairTile
from infusion_monitor.ui.qt_numeric import local_hms

log = logging.getLogger(__name__)

TICK_MS = 1000  # ages and elapsed times move on once a second
COLUMNS_MAX = 4
BANNER = ("Clinic overview — secondary display, read-only. The patient monitors' own alarms "
          "remain primary.")

LoadStates = Callable[[datetime], list[ChairState]]


def natural_key(name: str) -> tuple[object, ...]:
    """chair-2 before chair-10."""
    return tuple(int(p) if p.isdigit() else p.lower() for p in re.split(r"(\d+)", name))


class _Feed(QObject):
    """Carries what the listener thread read to the GUI thread (queued signals)."""

    states = Signal(object, float)  # (list[ChairState], seconds the read took)
    failed = Signal(str)
    status = Signal(bool, str)


class OverviewWindow(QMainWindow):
    """A grid of ``ChairTile``s kept current from ``engine``; times on ``clock``.

    ``load`` (default: ``chair_states``) reads the chairs at a time; it runs on the listener's
    thread. ``refresh_s``: a full re-read at least this often, news or not.
    """

    def __init__(self, engine: Engine, clock: Clock, *, load: LoadStates | None = None,
                 refresh_s: float = 5.0, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Infusion Monitor — clinic overview")
        self._clock = clock
        self._load = load or (lambda now: chair_states(engine, now=now))
        self.tiles: dict[str, ChairTile] = {}
        self.updates = 0
        self.last_read_s = 0.0  # how long the last re-read took (on the listener thread)
        self.last_show_s = 0.0  # how long showing it took (on the GUI thread)
        self.current = False  # the last read succeeded and the database is reachable
        self._updated: datetime | None = None

        banner = QLabel(BANNER)
        banner.setObjectName("banner")
        self.problem = QLabel("")
        self.problem.setObjectName("banner")
        self.problem.setWordWrap(True)
        pal = self.problem.palette()
        pal.setColor(QPalette.ColorRole.WindowText, QColor(theme.ERROR_TEXT))
        pal.setColor(QPalette.ColorRole.Window, QColor("#4a1214"))
        self.problem.setPalette(pal)
        self.problem.setAutoFillBackground(True)
        self.problem.hide()
        self.empty = QLabel("No chair has a session today.")
        self.empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._grid_host = QWidget()
        self._grid = QGridLayout(self._grid_host)
        self._grid.setSpacing(8)
        central = QWidget()
        central.setObjectName("central")
        column = QVBoxLayout(central)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(banner)
        column.addWidget(self.problem)
        column.addWidget(self.empty, 1)
        column.addWidget(self._grid_host, 1)
        self.setCentralWidget(central)
        self.status = QLabel("connecting…")
        self.statusBar().addWidget(self.status, 1)

        self._feed = _Feed()
        self._feed.states.connect(self._show)
        self._feed.failed.connect(self._failed)
        self._feed.status.connect(self._link_status)
        self._timer = QTimer(self)
        self._timer.timeout.connect(self._tick)
        self._timer.start(TICK_MS)
        self.listener = ChangeListener(engine, self._reread, refresh_s=refresh_s,
                                       on_status=self._feed.status.emit)
        self.backend = self.listener.backend
        self.listener.start()

    # -- listener thread --------------------------------------------------------------------
    def _reread(self, _ids: frozenset[int] | None) -> None:
        """Re-read every chair (one cheap read covers any number of changed sessions)."""
        started = time.perf_counter()
        try:
            states = self._load(self._clock.now())
        except StoreError as exc:
            self._feed.failed.emit(str(exc))
            return
        except Exception as exc:  # a bug must show as "not current", never as a frozen screen
            log.exception("reading the clinic overview failed")
            self._feed.failed.emit(f"internal error ({type(exc).__name__}: {exc})")
            return
        self._feed.states.emit(states, time.perf_counter() - started)

    # -- GUI thread -------------------------------------------------------------------------
    def _show(self, states: list[ChairState], read_s: float) -> None:
        started = time.perf_counter()
        now = self._clock.now()
        names = sorted((s.workstation for s in states), key=natural_key)
        if names != list(self.tiles):
            self._relayout(names)
        for state in states:
            self.tiles[state.workstation].show_state(state, now)
        self.updates += 1
        self.last_read_s = read_s
        self.current = True
        self._updated = now
        self.problem.hide()
        self.empty.setVisible(not states)
        self._grid_host.setVisible(bool(states))
        self._status_text()
        self.last_show_s = time.perf_counter() - started

    def _relayout(self, names: list[str]) -> None:
        for name, tile in self.tiles.items():
            self._grid.removeWidget(tile)
            if name not in names:
                tile.deleteLater()
        tiles = {n: self.tiles.get(n) or ChairTile(n) for n in names}
        columns = min(COLUMNS_MAX, max(1, round(len(names) ** 0.5 + 0.49)))
        for i, name in enumerate(names):
            self._grid.addWidget(tiles[name], i // columns, i % columns)
        self.tiles = tiles

    def _failed(self, message: str) -> None:
        self.current = False
        self._show_problem(f"Overview NOT current: {message}. Retrying; check the chairs "
                           "directly meanwhile.")

    def _link_status(self, connected: bool, detail: str) -> None:
        if connected:
            self._status_text()
            return
        self.current = False
        self._show_problem(f"Lost the clinic database ({detail}); reconnecting. The tiles show "
                           "the last values read and are NOT live.")

    def _show_problem(self, text: str) -> None:
        self.problem.setText(text)
        self.problem.show()
        now = self._clock.now()
        for tile in self.tiles.values():
            tile.refresh(now, current=False)
        self._status_text()

    def _status_text(self) -> None:
        how = "PostgreSQL, live" if self.backend == "postgresql" else "SQLite, polled"
        updated = "never" if self._updated is None else local_hms(self._updated)
        self.status.setText(f"{len(self.tiles)} chairs · {how} · updated {updated}"
                            f"{'' if self.current else ' · NOT CURRENT'}")

    def _tick(self) -> None:
        now = self._clock.now()
        for tile in self.tiles.values():
            tile.refresh(now, current=self.current)

    def tile(self, workstation: str) -> ChairTile:
        return self.tiles[workstation]

    def stop(self) -> None:
        """Stop listening (the thread is joined). Safe to call twice."""
        self._timer.stop()
        self.listener.stop()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        self.stop()
        super().closeEvent(event)


def overview_login(access: Access) -> bool:
    """Whether the overview may open: always without accounts; with accounts, after a login
    by someone who may review (it shows patients' initials and vitals: not admins). A refusal
    is recorded and raised (PermissionDeniedError); False when the login was cancelled."""
    from infusion_monitor.ui.app import login_for
    from infusion_monitor.ui.qt_login import ask_login

    authenticate = login_for(access)
    if authenticate is None:
        return True
    principal = ask_login(authenticate, title="Infusion Monitor — clinic overview: log in")
    if principal is None:
        return False
    access.principal = principal
    access.check(Action.REVIEW, what="see the clinic overview")
    return True


def run_overview(engine: Engine, clock: Clock) -> int:
    """Run the clinic overview until it closes; returns the Qt exit code (1: login refused)."""
    from PySide6.QtWidgets import QMessageBox

    from infusion_monitor.ui.app import DEFAULT_SIZE, check_qt_binding, exec_window

    check_qt_binding()
    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(sys.argv)
    app.setApplicationName("Infusion Monitor")
    theme.apply_theme(app)
    try:
        if not overview_login(Access(engine)):
            return 0
    except PermissionDeniedError as exc:
        QMessageBox.warning(None, "Clinic overview", str(exc))
        return 1
    window = OverviewWindow(engine, clock)
    window.resize(*DEFAULT_SIZE)
    return exec_window(app, window, on_quit=window.stop)
