"""Starts the GUI: the QApplication, the theme and the main window, with injected dependencies."""

from __future__ import annotations

import gc
import signal
import sys
from collections.abc import Callable

import PySide6
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QWidget

from infusion_monitor.clock import Clock
from infusion_monitor.errors import ConfigError
from infusion_monitor.session.auth import Access
from infusion_monitor.session.resume import ChairRecovery
from infusion_monitor.ui.qt_login import Authenticate, ask_login
from infusion_monitor.ui.qt_main_window import MainWindow, StartRecording
from infusion_monitor.ui.qt_port_picker import PortLister, system_ports
from infusion_monitor.ui.qt_theme import apply_theme

DEFAULT_SIZE = (1366, 768)  # the smallest bedside screen we support
TITLE = "Infusion Monitor — live"


def check_qt_binding() -> None:
    """Refuse a Qt binding known to corrupt the interpreter, rather than crash mid-session.

    PySide6 6.12.0 drops a reference to ``None`` on every void Qt call; on Python < 3.12 (where
    ``None`` is not immortal) that aborts the process after a few minutes of redraws.
    """
    if sys.version_info < (3, 12) and PySide6.__version__.startswith("6.12.0"):
        raise ConfigError(
            f"PySide6 {PySide6.__version__} crashes on Python "
            f"{sys.version_info.major}.{sys.version_info.minor}: install PySide6-Essentials "
            "6.11.x, or run on Python 3.12 or later"
        )


def settle_heap() -> None:
    """Collect once, then freeze what start-up made (modules, Qt wrappers, the windows).

    The interpreter's full collections otherwise walk those ~10^5 long-lived objects again and
    again: 40-70 ms pauses that land in the middle of opening a review or painting an alarm.
    New objects are still collected as usual.
    """
    gc.collect()
    gc.freeze()


def make_window(
    *,
    clock: Clock,
    start_recording: StartRecording,
    initial: tuple[str, str, int] | None = None,
    title: str = TITLE,
    list_ports_fn: PortLister = system_ports,
    access: Access | None = None,
    authenticate: Authenticate | None = None,
    recovery: ChairRecovery | None = None,
) -> MainWindow:
    """Build the themed main window at the default size (needs a QApplication); with
    ``recovery``, it first offers the session this chair left open, if any."""
    app = QApplication.instance()
    if isinstance(app, QApplication):
        apply_theme(app)
    window = MainWindow(clock=clock, start_recording=start_recording, initial=initial,
                        list_ports_fn=list_ports_fn, access=access, authenticate=authenticate,
                        recovery=recovery)
    window.setWindowTitle(title)
    window.resize(*DEFAULT_SIZE)
    return window


def login_for(access: Access | None, purpose: str = "login") -> Authenticate | None:
    """The login the widgets use, over ``access``'s database; None when it has no accounts
    (nothing to log in to: typed names, as before)."""
    from infusion_monitor.session.accounts import authenticate

    if access is None or access.engine is None or not access.accounts_exist():
        return None
    engine = access.engine
    return lambda username, password: authenticate(engine, username, password,
                                                   purpose=purpose)


def run_gui(
    *,
    clock: Clock,
    start_recording: StartRecording,
    initial: tuple[str, str, int] | None = None,
    title: str = TITLE,
    access: Access | None = None,
    recovery: ChairRecovery | None = None,
) -> int:
    """Run the GUI until the window closes; returns the Qt exit code.

    With ``access`` over a database that has accounts, a login comes first (cancelled: exit
    0, nothing started) and the window offers a quick user switch; the recording the window
    starts shares ``access`` (the factory passes it on), so the core checks whoever is logged
    in at the moment of each act.

    ``start_recording(protocol, url, baud, on_store_error=..., on_store_recovered=...)`` is
    called when the nurse presses Connect (or at once with ``initial``); the callbacks may be
    passed on to ``LiveRecording`` and are safe from the writer thread. Raises ConfigError
    for a known-broken Qt binding. ``recovery``: after the login, the window offers the
    session this chair left open (resume, or close as interrupted) before connecting.
    """
    check_qt_binding()
    existing = QApplication.instance()
    app = existing if isinstance(existing, QApplication) else QApplication(sys.argv)
    app.setApplicationName("Infusion Monitor")
    authenticate = login_for(access)
    if access is not None and authenticate is not None:
        principal = ask_login(authenticate, title=f"{title} — log in")
        if principal is None:
            return 0
        access.principal = principal
    window = make_window(clock=clock, start_recording=start_recording, initial=initial,
                         title=title, access=access,
                         authenticate=login_for(access, purpose="switch"), recovery=recovery)
    # Quitting by any route (window close, Ctrl+C, SIGTERM) stops the recording cleanly.
    return exec_window(app, window, on_quit=window.stop_recording)


def exec_window(app: QApplication, window: QWidget,
                on_quit: Callable[[], object] | None = None) -> int:
    """Show ``window`` and run Qt until it quits; Ctrl+C and SIGTERM quit it cleanly."""
    if on_quit is not None:
        app.aboutToQuit.connect(on_quit)
    previous = {sig: signal.signal(sig, lambda *_: app.quit())
                for sig in (signal.SIGINT, signal.SIGTERM)}
    # Python runs signal handlers only between bytecodes: wake the interpreter now and then
    # while Qt's event loop waits in C++.
    wake = QTimer()
    wake.timeout.connect(lambda: None)
    wake.start(250)
    window.show()
    settle_heap()
    try:
        return int(app.exec())
    finally:
        wake.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
