"""The nurse's live window: banner, connection bar, big numerics beside the session trends.

With user accounts, the window shows who is logged in and switches user (User menu, Ctrl+U)
without touching the recording: the alarms keep sounding and the chart keeps its session; the
next act is checked for, and recorded under, the new user. This window never locks.
"""

from __future__ import annotations

import getpass
import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Protocol

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QColor, QKeySequence, QPalette, QShortcut
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QPushButton,
    QSplitter,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from infusion_monitor.clock import Clock
from infusion_monitor.devices.base import DeviceEvent, DeviceEventKind, Event, SerialSettings
from infusion_monitor.devices.link import LinkState
from infusion_monitor.devices.registry import get_protocol
from infusion_monitor.errors import InfusionMonitorError
from infusion_monitor.session.auth import Access, Action, Principal, denial_message
from infusion_monitor.session.chart_alarms import ChartAlarmBridge
from infusion_monitor.session.lifecycle import SessionChart
from infusion_monitor.session.resume import ChairRecovery
from infusion_monitor.ui import qt_theme as theme
from infusion_monitor.ui.qt_alarm_bar import AlarmBar
from infusion_monitor.ui.qt_alarm_log import AlarmLogView
from infusion_monitor.ui.qt_alarms import AlarmPresenter, AlarmSource
from infusion_monitor.ui.qt_audio import AlarmSound, system_outputs
from infusion_monitor.ui.qt_bridge import LiveFeed
from infusion_monitor.ui.qt_charting import ChartingPanel, chart_for_recording
from infusion_monitor.ui.qt_login import Authenticate, LoginDialog, UserSwitcher
from infusion_monitor.ui.qt_numeric import NibpTile, NumericTile
from infusion_monitor.ui.qt_pleth import PlethSweep
from infusion_monitor.ui.qt_port_picker import PortLister, PortPicker, system_ports
from infusion_monitor.ui.qt_resume import CLOSE, RESUME, ResumeDialog
from infusion_monitor.ui.qt_status import DeviceStatus, SessionClock
from infusion_monitor.ui.qt_trends import TrendPanel
from infusion_monitor.vitals import Vital

log = logging.getLogger(__name__)

BANNER = ("Secondary display — the patient monitor's own alarms remain primary. "
          "This app never controls the infusion pump.")
REDRAW_MS = 100  # 10 Hz: ages, staleness and trends; data arrive at their own rate


class RecorderLike(Protocol):
    def subscribe(self, subscriber: Callable[[Sequence[Event]], None]) -> None: ...

    def unsubscribe(self, subscriber: Callable[[Sequence[Event]], None]) -> None: ...


class Recording(Protocol):
    """What the window needs of a live recording (``session.live.LiveRecording`` is one)."""

    recorder: RecorderLike
    session_id: int
    alarms: AlarmSource  # the session's alarm monitor

    def add_state_listener(self, sink: Callable[[LinkState, str], None]) -> None: ...

    def start(self) -> object: ...

    def stop(self) -> None: ...


class StartRecording(Protocol):
    """The app's factory: opens nothing until called; the callbacks may run on any thread.

    Line settings other than the protocol's own arrive as a ``serial_settings=`` keyword
    (``devices.base.SerialSettings``); see ``MainWindow.connect_to``.
    """

    def __call__(
        self, protocol: str, url: str, baud: int, *,
        on_store_error: Callable[[Exception], None],
        on_store_recovered: Callable[[], None],
    ) -> Recording: ...


class MainWindow(QMainWindow):
    """Live view of one recording; every dependency is injected, it opens no port or DB itself."""

    _error_posted = Signal(str, str)  # kind, text: lets any thread raise the banner
    _error_cleared = Signal(str)  # kind ("" clears whatever is shown)

    def __init__(
        self,
        *,
        clock: Clock,
        start_recording: StartRecording,
        initial: tuple[str, str, int] | None = None,
        list_ports_fn: PortLister = system_ports,
        user: str | None = None,
        user_role: str = "nurse",
        audio_outputs: Callable[[], Sequence[str]] = system_outputs,
        open_chart: Callable[[Recording, Clock], SessionChart | None] = chart_for_recording,
        access: Access | None = None,
        authenticate: Authenticate | None = None,
        recovery: ChairRecovery | None = None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        # Who signs acknowledgements and notes: with no accounts, a typed (OS) name; with
        # accounts, the logged-in principal (``access``, shared with the recording's core).
        self.user = user or getpass.getuser()
        self.user_role = user_role
        self.access = access
        self._authenticate = authenticate
        self._clock = clock
        self._start_recording = start_recording
        self.recording: Recording | None = None
        self.feed: LiveFeed | None = None
        self._closed = False
        self._error_kind = ""
        self.setWindowTitle("Infusion Monitor — live")

        self.banner = QLabel(BANNER)
        self.banner.setObjectName("banner")
        self.banner.setWordWrap(True)
        self.error_banner, self.error_label = self._make_error_banner()
        self.picker = PortPicker(list_ports_fn=list_ports_fn)
        self.trends = TrendPanel(clock)
        self.tiles = {
            Vital.HR: NumericTile(Vital.HR, clock),
            Vital.PR: NumericTile(Vital.PR, clock),
            Vital.NIBP_SYS: NibpTile(clock),
            Vital.SPO2: NumericTile(Vital.SPO2, clock),
        }
        self.pleth = PlethSweep(clock)  # under the SpO2 tile; hidden until a pleth arrives
        self.device_status = DeviceStatus()
        self.session_clock = SessionClock(clock)
        self.session_label = QLabel("")
        self.user_label = QLabel("")  # who is logged in (with accounts)
        self.user_label.setObjectName("userLabel")
        self._build_alarms(clock, audio_outputs)
        # Charting (issue 3): under the trends, beside the full-height numerics.
        self._open_chart = open_chart
        self.charting = ChartingPanel(clock, user=lambda: self.user)
        self.charting.markers_changed.connect(self.trends.set_markers)
        self._build_layout()

        self.picker.connect_requested.connect(self.connect_to)
        self.picker.stop_requested.connect(self.stop_recording)
        self._error_posted.connect(self._show_error_now)
        self._error_cleared.connect(self._clear_error_now)
        self._timer = QTimer(self)
        self._timer.setInterval(REDRAW_MS)
        self._timer.timeout.connect(self.redraw)
        self._timer.start()
        self._build_user_menu()
        if access is not None and access.principal is not None:
            self.set_principal(access.principal)
        else:
            self.apply_permissions()
        # Crash recovery (session/resume.py): a session this chair left open is offered first.
        self._recovery = recovery
        self._initial = initial
        self.resume_dialog: ResumeDialog | None = None
        if initial is not None:
            self.picker.set_selection(*initial)
        if initial is not None or recovery is not None:
            QTimer.singleShot(0, self._start_up)

    # -- who is logged in -------------------------------------------------------------------
    def _build_user_menu(self) -> None:
        self.switcher = UserSwitcher(self, self._authenticate)
        self.switcher.switched.connect(self.set_principal)
        self.switch_action = self.switcher.action
        if self._authenticate is not None:
            self.menuBar().addMenu("&User").addAction(self.switch_action)

    @property
    def switch_dialog(self) -> LoginDialog | None:
        return self.switcher.dialog

    def switch_user(self) -> LoginDialog | None:
        """Ask who takes over the chair (window-modal; the live view keeps running)."""
        return None if self._closed else self.switcher.ask()

    def set_principal(self, principal: Principal) -> None:
        """``principal`` acts at this chair from now on (the core's checks follow at once)."""
        if self.access is not None:
            self.access.principal = principal
        self.user, self.user_role = principal.display_name, principal.role.value
        self.user_label.setText(f"  👤 {principal.label}")
        self.apply_permissions()

    def apply_permissions(self) -> None:
        """Enable what the logged-in user may do; the rest is disabled, saying who may."""
        access = self.access
        enforcing = access is not None and access.enforcing()
        principal = access.principal if access is not None else None

        def why_not(action: Action) -> str | None:
            if not enforcing or (principal is not None and principal.may(action)):
                return None
            return denial_message(principal, action)

        self.alarm_bar.set_permissions(why_not(Action.ACKNOWLEDGE),
                                       why_not(Action.ACKNOWLEDGE_ATTENDING))
        self.charting.set_permissions(principal, enforcing)

    # -- alarms -----------------------------------------------------------------------------
    def _build_alarms(self, clock: Clock, audio_outputs: Callable[[], Sequence[str]]) -> None:
        """The alarm bar, tones, log dock, and F2/F3 wherever the focus is."""
        self.alarm_bar = AlarmBar()
        self.alarm_sound = AlarmSound(outputs=audio_outputs, parent=self)
        self.alarm_log = AlarmLogView()
        # The log takes the trends' place, so the numerics keep their size while it is open.
        self.centre = QStackedWidget()
        self.centre.addWidget(self.trends)
        self.centre.addWidget(self.alarm_log)
        self.alarms = AlarmPresenter(
            clock=clock, bar=self.alarm_bar, sound=self.alarm_sound, log_view=self.alarm_log,
            tiles=self.tiles, trends=self.trends, user=lambda: self.user,
            role=lambda: self.user_role, parent=self,
        )
        self.alarm_bar.log_requested.connect(self.toggle_alarm_log)
        self.shortcuts = []
        for key, slot in ((Qt.Key.Key_F2, self.alarms.acknowledge),
                          (Qt.Key.Key_F3,
                           lambda: self.alarms.pause(self.alarm_bar.chosen_pause()))):
            shortcut = QShortcut(QKeySequence(key), self)
            shortcut.setContext(Qt.ShortcutContext.ApplicationShortcut)
            shortcut.activated.connect(slot)
            self.shortcuts.append(shortcut)

    def toggle_alarm_log(self) -> None:
        """Show the alarm log in place of the trends, or the trends again."""
        showing_log = self.centre.currentWidget() is self.alarm_log
        self.centre.setCurrentWidget(self.trends if showing_log else self.alarm_log)
        self.alarm_bar.log_button.setText("Alarm log" if showing_log else "Trends")
        if not showing_log:
            self.alarms.log_shown()

    # -- layout -----------------------------------------------------------------------------
    def _make_error_banner(self) -> tuple[QFrame, QLabel]:
        frame = QFrame()
        frame.setObjectName("errorBanner")
        label = QLabel()
        label.setWordWrap(True)
        label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        palette = label.palette()
        palette.setColor(QPalette.ColorRole.WindowText, QColor(theme.ERROR_TEXT))
        label.setPalette(palette)
        font = label.font()
        font.setPixelSize(16)
        font.setBold(True)
        label.setFont(font)
        dismiss = QPushButton("Dismiss")
        dismiss.clicked.connect(self.clear_error)
        row = QHBoxLayout(frame)
        row.setContentsMargins(8, 4, 8, 4)
        row.addWidget(label, 1)
        row.addWidget(dismiss)
        frame.hide()
        return frame, label

    def _build_layout(self) -> None:
        tiles = QVBoxLayout()
        tiles.setSpacing(4)
        for vital, stretch in ((Vital.HR, 4), (Vital.PR, 3), (Vital.NIBP_SYS, 5),
                               (Vital.SPO2, 4)):
            tiles.addWidget(self.tiles[vital], stretch)
        tiles.addWidget(self.pleth, 3)
        body = QHBoxLayout()
        body.setContentsMargins(6, 4, 6, 4)
        self.chart_split = QSplitter(Qt.Orientation.Vertical)
        self.chart_split.addWidget(self.centre)
        self.chart_split.addWidget(self.charting)
        self.chart_split.setChildrenCollapsible(False)
        # Trends get the larger share: at 1366x768 each plot stays tall enough to read a trend;
        # the nurse can drag the divider, and the minute log still shows several rows.
        self.chart_split.setStretchFactor(0, 3)
        self.chart_split.setStretchFactor(1, 2)
        self.chart_split.setSizes([420, 280])
        body.addWidget(self.chart_split, 5)
        body.addLayout(tiles, 2)
        central = QWidget()
        central.setObjectName("central")
        column = QVBoxLayout(central)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(0)
        column.addWidget(self.banner)
        column.addWidget(self.alarm_bar)
        column.addWidget(self.error_banner)
        column.addWidget(self.picker)
        column.addLayout(body, 1)
        self.setCentralWidget(central)
        status = self.statusBar()
        status.setSizeGripEnabled(False)
        status.addWidget(self.device_status)
        status.addWidget(self.session_label, 1)
        status.addPermanentWidget(self.user_label)
        status.addPermanentWidget(self.session_clock)
        status.setContentsMargins(6, 0, 10, 0)

    # -- errors (callable from any thread) --------------------------------------------------
    def show_error(self, text: str) -> None:
        """Show a red banner with ``text``; safe from any thread (queued to the GUI thread)."""
        self._error_posted.emit("general", text)

    def clear_error(self) -> None:
        """Hide the error banner; safe from any thread."""
        self._error_cleared.emit("")

    def error_text(self) -> str:
        """The banner's text, or "" when no error is shown."""
        return self.error_label.text() if not self.error_banner.isHidden() else ""

    def _store_error(self, exc: Exception) -> None:
        self._error_posted.emit(
            "store", f"✖ Database error: {exc}. Readings are kept and retried; check the disk "
                     f"or database server.")

    def _store_recovered(self) -> None:
        self._error_cleared.emit("store")

    def _show_error_now(self, kind: str, text: str) -> None:
        self._error_kind = kind
        self.error_label.setText(text)
        self.error_banner.show()

    def _clear_error_now(self, kind: str) -> None:
        if not kind or kind == self._error_kind:
            self._error_kind = ""
            self.error_label.setText("")
            self.error_banner.hide()

    # -- a session left open ----------------------------------------------------------------
    def _start_up(self) -> None:
        """Offer this chair's open session, if any; otherwise connect to ``initial``."""
        if self._closed:
            return
        try:
            left_open = self._recovery.open_sessions() if self._recovery is not None else []
        except InfusionMonitorError as exc:
            self.show_error(f"✖ Could not look for open sessions: {exc}")
            return
        if not left_open:
            if self._initial is not None:
                self._auto_connect()
            return
        self.resume_dialog = ResumeDialog(left_open[0], self._clock.now(), self)
        self.resume_dialog.chosen.connect(self._resume_chosen)
        self.resume_dialog.open()

    def _resume_chosen(self, choice: str) -> None:
        dialog, self.resume_dialog = self.resume_dialog, None
        if dialog is None or self._recovery is None:
            return
        session = dialog.session
        if choice == RESUME:
            # The session's monitor; a demo's simulator is a new pty, given as ``initial``.
            protocol, url = session.info.protocol, session.info.port or ""
            baud = get_protocol(protocol).serial.baudrate
            if self._initial is not None and self._initial[0] == protocol:
                _, url, baud = self._initial
            self.connect_to(protocol, url, baud, resume=session.id)
        elif choice == CLOSE:
            try:
                self._recovery.close_interrupted(session, by=self.user)
            except InfusionMonitorError as exc:
                self.show_error(f"✖ Could not close session {session.id}: {exc}")
                return
            self._start_up()  # the next one left open, or the usual start
        else:
            self.show_error(f"✖ Session {session.id} is still open: nothing is recorded until "
                            "it is resumed or closed as interrupted (restart to choose)")

    def _offer_open_session(self) -> bool:
        """Offer this chair's open session again (the dialog was dismissed); True if there
        is one, so that Connect does not start a new session beside it."""
        if self._recovery is None:
            return False
        if self.resume_dialog is not None:
            return True
        try:
            left_open = self._recovery.open_sessions()
        except InfusionMonitorError as exc:
            self.show_error(f"✖ Could not look for open sessions: {exc}")
            return True
        if left_open:
            self._start_up()
        return bool(left_open)

    # -- recording --------------------------------------------------------------------------
    def _auto_connect(self) -> None:
        if not self._closed:
            self.picker.connect_button.click()

    def connect_to(self, protocol: str, url: str, baud: int,
                   settings: SerialSettings | None = None, resume: int | None = None) -> bool:
        """Start a recording through the injected factory; any failure goes to the banner.

        ``settings`` (the connection bar's full line settings) reach the factory as
        ``serial_settings=`` only when they differ from the protocol's own at ``baud``, so a
        factory that knows only the quick path keeps working. ``resume`` (an open session's
        id) reaches it as ``resume=``; the trends then show the session's stored history.
        """
        if self.recording is not None or self._closed:
            return False
        if resume is None and self._offer_open_session():
            return False  # a second session beside the open one would split the record
        self.clear_error()
        self.picker.set_selection(protocol, url, baud, settings)
        try:
            line: dict[str, SerialSettings] = {}
            if settings is not None and replace(settings, baudrate=baud) != replace(
                get_protocol(protocol).serial, baudrate=baud
            ):
                line["serial_settings"] = replace(settings, baudrate=baud)
            extra: dict[str, object] = dict(line)
            if resume is not None:
                extra["resume"] = resume
            recording = self._start_recording(
                protocol, url, baud,
                on_store_error=self._store_error, on_store_recovered=self._store_recovered,
                **extra,
            )
        except Exception as exc:  # a bad port or DB must not take the window down
            log.exception("could not start recording from %s", url)
            self.show_error(f"✖ Could not start recording from {url}: {exc}")
            return False
        feed = LiveFeed(self)
        feed.events.connect(self._on_events)
        feed.waveforms.connect(self._on_waveforms)
        feed.state.connect(self.device_status.set_state)
        recording.recorder.subscribe(feed.push_events)
        recording.add_state_listener(feed.push_state)
        resumed = getattr(recording, "resumed", None)
        if resumed is not None and self._recovery is not None:
            self.trends.start_session(resumed.info.started)
            self.trends.add_events(self._recovery.history(recording.session_id))
        else:
            self.trends.start_session(self._clock.now())
        sends = get_protocol(protocol).sends
        for vital, tile in self.tiles.items():
            # An oximeter alone sends no ECG HR and no NIBP: say so, not "waiting".
            tile.reset("waiting for first value" if vital in sends
                       else "not sent by this monitor")
        self.pleth.reset()
        self.recording, self.feed = recording, feed
        self._attach_chart(recording)
        self.alarms.attach(recording.alarms, feed)
        try:
            recording.start()
        except Exception as exc:  # same: report, close the half-open session, stay usable
            log.exception("could not start recording from %s", url)
            self.stop_recording()
            self.show_error(f"✖ Could not start recording from {url}: {exc}")
            return False
        self.session_clock.start()
        self.session_label.setText(f"  Session #{recording.session_id} · {protocol} · {url}")
        self.picker.set_running(True)
        return True

    def stop_recording(self) -> None:
        """Stop the link (joins its thread), flush the store and close the session."""
        recording, feed = self.recording, self.feed
        self.recording = self.feed = None
        if recording is None:
            return
        try:
            recording.stop()
        except Exception as exc:  # report it; the window must still close cleanly
            log.exception("stopping the recording failed")
            self.show_error(f"✖ Stopping the recording failed: {exc}")
        else:  # the link has stopped: nothing calls this feed again, and the next gets its own
            if feed is not None:
                feed.deleteLater()
        finally:
            if feed is not None:
                recording.recorder.unsubscribe(feed.push_events)
            if self.charting.chart is not None:  # the chart stays on screen, fed no more
                recording.recorder.unsubscribe(self.charting.chart.observe)
            self.alarms.detach()
        self.session_clock.stop()
        self.picker.set_running(False)
        self.device_status.set_state(LinkState.STOPPED, "recording stopped")

    def _attach_chart(self, recording: Recording) -> None:
        """Open the session's chart and feed it the readings (any failure goes to the banner)."""
        try:
            chart = self._open_chart(recording, self._clock)
        except Exception as exc:  # no chart must not stop the live view
            log.exception("could not open the session chart")
            self.show_error(f"✖ Could not open the session chart: {exc}")
            chart = None
        if chart is not None:
            recording.recorder.subscribe(chart.observe)
        alarms = getattr(recording, "alarms", None)
        bridge = ChartAlarmBridge(chart, alarms) if chart is not None and alarms else None
        self.charting.set_chart(chart, bridge)
        self.apply_permissions()

    # -- GUI-thread slots -------------------------------------------------------------------
    def _on_events(self, events: list[Event]) -> None:
        if self.recording is None:  # late deliveries after Stop belong to no session on screen
            return
        for event in events:
            for tile in self.tiles.values():
                tile.handle(event)
            if isinstance(event, DeviceEvent) and event.kind is DeviceEventKind.DEVICE_ERROR:
                self.show_error(f"✖ Monitor reports: {event.detail}")
        self.trends.add_events(events)

    def _on_waveforms(self, blocks: list[Event]) -> None:
        """Waveform blocks (the feed sends them apart from readings) go to the pleth sweep."""
        if self.recording is not None:
            self.pleth.add_blocks(blocks)

    def redraw(self) -> None:
        """Timer tick: ages and staleness on the tiles, trends, session clock."""
        for tile in self.tiles.values():
            tile.refresh()
        self.trends.redraw()
        self.pleth.check_stale()
        self.session_clock.refresh()
        self.alarms.refresh(self._clock.now())

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        """Nothing may run after the window closes: stop the timer and the recording."""
        self._closed = True
        self._timer.stop()
        self.pleth.stop()
        self.charting.stop()
        self.stop_recording()
        self.alarm_sound.close()
        super().closeEvent(event)
