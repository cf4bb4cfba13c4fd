"""Logging in at the chair: the login dialog, a quick user switch, and the review lock.

``Authenticate(username, password) -> Principal`` is injected (session/accounts.py's
``authenticate`` over the chair's database); the widgets only pass what was typed and show
the core's answer. The password field is cleared after every try and never read again.

``InactivityLock`` covers the windows it is given (the session browser, review windows)
after a period without mouse or keyboard input, asking for a password to go on. It never
covers the live window: the recording and its alarms run on regardless.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QEvent, QObject, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QMainWindow,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from infusion_monitor.clock import Clock
from infusion_monitor.errors import AuthenticationError, StoreError
from infusion_monitor.session.auth import Principal

Authenticate = Callable[[str, str], Principal]

#: What counts as someone using a window (re-arms the lock).
ACTIVITY = frozenset({QEvent.Type.KeyPress, QEvent.Type.MouseButtonPress,
                      QEvent.Type.MouseMove, QEvent.Type.Wheel, QEvent.Type.TouchBegin})
LOCK_POLL_MS = 1000


class LoginForm(QWidget):
    """Username, password and a message; ``logged_in(principal)`` on success."""

    logged_in = Signal(object)

    def __init__(self, authenticate: Authenticate, *, title: str, username: str = "",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._authenticate = authenticate
        self.title = QLabel(title)
        self.title.setWordWrap(True)
        font = self.title.font()
        font.setPixelSize(18)
        font.setBold(True)
        self.title.setFont(font)
        self.username = QLineEdit(username)
        self.username.setObjectName("loginUsername")
        self.username.setMaxLength(64)
        self.password = QLineEdit()
        self.password.setObjectName("loginPassword")
        self.password.setEchoMode(QLineEdit.EchoMode.Password)
        self.password.setMaxLength(1024)
        self.message = QLabel("")
        self.message.setObjectName("loginMessage")
        self.message.setWordWrap(True)
        form = QFormLayout()
        form.addRow("Username", self.username)
        form.addRow("Password", self.password)
        column = QVBoxLayout(self)
        column.addWidget(self.title)
        column.addLayout(form)
        column.addWidget(self.message)
        self.username.returnPressed.connect(self.password.setFocus)
        self.password.returnPressed.connect(self.submit)

    def focus(self) -> None:
        (self.password if self.username.text() else self.username).setFocus()

    def submit(self) -> Principal | None:
        """Try what was typed; the core's refusal is shown as it is (it never says which part
        was wrong)."""
        username, password = self.username.text(), self.password.text()
        self.password.clear()
        if not username.strip() or not password:
            self.message.setText("Enter your username and password.")
            self.focus()
            return None
        try:
            principal = self._authenticate(username, password)
        except (AuthenticationError, StoreError) as exc:
            self.message.setText(f"✖ {exc}")
            self.password.setFocus()
            return None
        self.message.setText("")
        self.logged_in.emit(principal)
        return principal


class LoginDialog(QDialog):
    """The login at start, and the quick user switch (``principal`` once accepted)."""

    def __init__(self, authenticate: Authenticate, *, title: str = "Log in",
                 heading: str = "Log in to Infusion Monitor", username: str = "",
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.principal: Principal | None = None
        self.form = LoginForm(authenticate, title=heading, username=username)
        # Plain buttons, none of them default: Enter belongs to the fields (one try each).
        self.login_button = QPushButton("Log in")
        self.cancel_button = QPushButton("Cancel")
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        for button in (self.login_button, self.cancel_button):
            button.setAutoDefault(False)
            buttons.addWidget(button)
        self.login_button.clicked.connect(self.form.submit)
        self.cancel_button.clicked.connect(self.reject)
        self.form.logged_in.connect(self._logged_in)
        column = QVBoxLayout(self)
        column.addWidget(self.form)
        column.addLayout(buttons)
        self.form.focus()

    def _logged_in(self, principal: Principal) -> None:
        self.principal = principal
        self.accept()


class UserSwitcher(QObject):
    """The quick user switch of a window: an action (Ctrl+U, wherever the focus is) that
    opens a window-modal login; ``switched(principal)`` once someone logged in. Nothing else
    in the window waits for it: timers, the recording and its alarms run on."""

    switched = Signal(object)

    def __init__(self, window: QWidget, authenticate: Authenticate | None) -> None:
        super().__init__(window)
        self._window, self._authenticate = window, authenticate
        self.dialog: LoginDialog | None = None
        self.action = QAction("Switch user…", window)
        self.action.setShortcut(QKeySequence("Ctrl+U"))
        self.action.setShortcutContext(Qt.ShortcutContext.ApplicationShortcut)
        self.action.setEnabled(authenticate is not None)
        self.action.triggered.connect(self.ask)
        window.addAction(self.action)

    def ask(self) -> LoginDialog | None:
        if self._authenticate is None:
            return None
        if self.dialog is not None and self.dialog.isVisible():
            return self.dialog
        dialog = LoginDialog(self._authenticate, title="Switch user",
                             heading="Switch user: the recording and its alarms carry on",
                             parent=self._window)
        dialog.accepted.connect(lambda: self._done(dialog))
        dialog.finished.connect(dialog.deleteLater)
        self.dialog = dialog
        dialog.open()
        return dialog

    def _done(self, dialog: LoginDialog) -> None:
        self.dialog = None
        if dialog.principal is not None:
            self.switched.emit(dialog.principal)


def ask_login(authenticate: Authenticate, *, title: str = "Log in", username: str = "",
              parent: QWidget | None = None) -> Principal | None:
    """Show the login dialog until it succeeds or is cancelled (None)."""
    dialog = LoginDialog(authenticate, title=title, username=username, parent=parent)
    accepted = dialog.exec() == QDialog.DialogCode.Accepted
    return dialog.principal if accepted else None


class LockOverlay(QWidget):
    """Covers one window (its menus too) until someone logs in."""

    def __init__(self, window: QMainWindow, authenticate: Authenticate, *, minutes: float,
                 username: str) -> None:
        super().__init__(window)
        self.setObjectName("lockOverlay")
        self.setAutoFillBackground(True)  # opaque: nothing of the record shows through
        self.form = LoginForm(
            authenticate, username=username,
            title=f"Locked after {minutes:g} min without use. The live view keeps "
                  "recording and alarming. Log in to go on.")
        self.form.setMaximumWidth(460)
        column = QVBoxLayout(self)
        column.addStretch(1)
        column.addWidget(self.form, 0, Qt.AlignmentFlag.AlignHCenter)
        column.addStretch(2)
        window.installEventFilter(self)
        self.setGeometry(window.rect())

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt API
        if watched is self.parent() and event.type() == QEvent.Type.Resize:
            self.setGeometry(self.parentWidget().rect())
        return False


class InactivityLock(QObject):
    """Locks its windows after ``timeout_s`` (on ``clock``'s monotonic time) without input
    to any of them; a login on any overlay unlocks them all (``on_login`` gets who)."""

    locked_changed = Signal(bool)

    def __init__(self, clock: Clock, timeout_s: float, authenticate: Authenticate, *,
                 on_login: Callable[[Principal], None], username: Callable[[], str],
                 poll_ms: int = LOCK_POLL_MS, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._clock, self.timeout_s = clock, timeout_s
        self._authenticate, self._on_login, self._username = authenticate, on_login, username
        self.windows: list[QMainWindow] = []
        self.overlays: dict[QMainWindow, LockOverlay] = {}
        self._last = clock.monotonic()
        app = QApplication.instance()
        assert app is not None
        app.installEventFilter(self)
        self._timer = QTimer(self)
        self._timer.setInterval(poll_ms)
        self._timer.timeout.connect(self.check)
        self._timer.start()

    @property
    def locked(self) -> bool:
        return bool(self.overlays)

    def add(self, window: QMainWindow) -> None:
        """Cover ``window`` too (at once, if the others are locked)."""
        self.windows.append(window)
        window.destroyed.connect(lambda *_: self._forget(window))
        if self.locked:
            self._cover(window)

    def _forget(self, window: QMainWindow) -> None:
        if window in self.windows:
            self.windows.remove(window)
        self.overlays.pop(window, None)

    def stop(self) -> None:
        self._timer.stop()
        app = QApplication.instance()
        if app is not None:
            app.removeEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802 - Qt API
        if (event.type() in ACTIVITY and not self.locked and isinstance(watched, QWidget)
                and watched.window() in self.windows):
            self._last = self._clock.monotonic()
        return False

    def idle_s(self) -> float:
        return self._clock.monotonic() - self._last

    def check(self) -> None:
        """Timer tick: lock once the windows have been idle long enough."""
        if not self.locked and self.windows and self.idle_s() >= self.timeout_s:
            self.lock()

    def lock(self) -> None:
        for window in self.windows:
            self._cover(window)
        self.locked_changed.emit(True)

    def _cover(self, window: QMainWindow) -> None:
        if window in self.overlays:
            return
        overlay = LockOverlay(window, self._authenticate, minutes=self.timeout_s / 60,
                              username=self._username())
        overlay.form.logged_in.connect(self._unlocked)
        window.menuBar().setEnabled(False)  # no menu (an export) under the overlay
        central = window.centralWidget()
        if central is not None:
            central.setEnabled(False)
        overlay.show()
        overlay.raise_()
        overlay.form.focus()
        self.overlays[window] = overlay

    def _unlocked(self, principal: Principal) -> None:
        self._on_login(principal)
        for window, overlay in list(self.overlays.items()):
            window.removeEventFilter(overlay)
            overlay.hide()
            overlay.deleteLater()
            window.menuBar().setEnabled(True)
            central = window.centralWidget()
            if central is not None:
                central.setEnabled(True)
        self.overlays.clear()
        self._last = self._clock.monotonic()
        self.locked_changed.emit(False)
