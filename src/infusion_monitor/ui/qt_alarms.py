"""Binds a live session's alarm monitor to the window: bar, tiles, tones, trend bands, log.

Widgets only subscribe: the monitor calls its listeners on whatever thread changed it, the
``LiveFeed`` queues that to the GUI thread, and this presenter then reads the monitor's state
(thread-safe queries) and shows it. What the nurse does (acknowledge, pause, a response note,
the attending's sign-off) goes back to the monitor, which logs it; a refusal is shown in the bar.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Protocol

from PySide6.QtCore import QObject, QTimer

from infusion_monitor.clock import Clock
from infusion_monitor.errors import InfusionMonitorError
from infusion_monitor.session.alarm_types import ActiveAlarm, AlarmChange
from infusion_monitor.session.thresholds import (
    NOTIFY_ATTENDING,
    TECHNICAL_CONDITIONS,
    ThresholdProfile,
)
from infusion_monitor.store.alarm_log import AlarmRecord
from infusion_monitor.ui.qt_alarm_bar import RANK, AlarmBar, AlarmView
from infusion_monitor.ui.qt_alarm_log import AlarmLogRow, AlarmLogView
from infusion_monitor.ui.qt_audio import AlarmSound
from infusion_monitor.ui.qt_bridge import LiveFeed
from infusion_monitor.ui.qt_numeric import local_hms
from infusion_monitor.ui.qt_trends import TrendPanel
from infusion_monitor.vitals import NIBP, Vital

log = logging.getLogger(__name__)

BAND_REDRAW_S = 1.0  # an open alarm's band grows on the charts about once a second
#: The log table and chart bands follow within this; the bar, tiles and tones never wait.
RECORD_DELAY_MS = 200


class TileLike(Protocol):
    def set_alarm(self, priority: str | None, *, technical: bool = False,
                  acknowledged: bool = False) -> None: ...


class AlarmSource(Protocol):
    """What the window needs of ``session.alarm_monitor.AlarmMonitor``."""

    profile: ThresholdProfile

    def add_listener(self, listener: Callable[[Sequence[AlarmChange]], None]) -> None: ...

    def remove_listener(self, listener: Callable[[Sequence[AlarmChange]], None]) -> None: ...

    def active(self) -> list[ActiveAlarm]: ...

    def history(self) -> list[ActiveAlarm]: ...

    def flag(self) -> ActiveAlarm | None: ...

    def audio_pause_remaining(self) -> float: ...

    def acknowledge_all(self, *, by: str) -> object: ...

    def acknowledge_attending(self, *, by: str, role: str | None) -> object: ...

    def pause_audio(self, *, by: str, minutes: int | None = None) -> object: ...

    def add_response(self, uid: str, text: str, *, by: str) -> object: ...


def to_view(a: ActiveAlarm) -> AlarmView:
    return AlarmView(a.uid, a.priority.value, a.text, a.started, technical=a.technical,
                     active=a.active, latched=a.latched, acknowledged_by=a.acknowledged_by,
                     acknowledged_at=a.acknowledged_at, vital=a.parameter)


def condition_label(profile: ThresholdProfile, name: str) -> str:
    if name == NOTIFY_ATTENDING:
        return "Notify attending"
    if name in TECHNICAL_CONDITIONS:
        return TECHNICAL_CONDITIONS[name].label
    try:
        return profile.condition(name).label
    except KeyError:
        return name


def worst_text(profile: ThresholdProfile, a: ActiveAlarm) -> str:
    """The worst value against the limit (``SpO2 84 < 88``), else the alarm's own text."""
    if a.worst is None or a.technical or a.condition == NOTIFY_ATTENDING:
        return a.text
    try:
        cond = profile.condition(a.condition)
    except KeyError:
        return a.text
    return cond.describe(a.worst) if cond.op else a.text


def to_log_row(profile: ThresholdProfile, a: ActiveAlarm) -> AlarmLogRow:
    return AlarmLogRow(
        a.uid, a.started, a.ended, condition_label(profile, a.condition), a.priority.value,
        worst_text(profile, a), technical=a.technical, latched=a.latched,
        acknowledged_by=a.acknowledged_by, acknowledged_at=a.acknowledged_at,
        responses=a.responses,
    )


def record_row(profile: ThresholdProfile, a: AlarmRecord) -> AlarmLogRow:
    """A stored alarm (review) as the live log shows it: the condition's label, and the worst
    value against the limit that was in force when it was raised (not today's limit)."""
    text = a.text
    if a.worst_value is not None and not a.technical and a.condition != NOTIFY_ATTENDING:
        try:
            cond = profile.condition(a.condition)
        except KeyError:
            cond = None
        if cond is not None and cond.op:
            limit = cond.limit if a.limit is None else a.limit
            text = replace(cond, limit=limit).describe(a.worst_value)
    return AlarmLogRow(
        a.uid, a.start, a.end, condition_label(profile, a.condition), a.priority, text,
        technical=a.technical, latched=a.latched, acknowledged_by=a.acknowledged_by,
        acknowledged_at=a.acknowledged_at, responses=a.responses,
    )


def tile_vital(parameter: str | None) -> Vital | None:
    """Which tile an alarm on ``parameter`` flashes (all of NIBP share one tile)."""
    if parameter is None:
        return None
    try:
        vital = Vital(parameter)
    except ValueError:
        return None  # RASS, distress: no tile
    return Vital.NIBP_SYS if vital in NIBP else vital


class AlarmPresenter(QObject):
    """Shows one monitor's alarms; requests are signed with ``user()`` and ``role()``."""

    def __init__(
        self,
        *,
        clock: Clock,
        bar: AlarmBar,
        sound: AlarmSound,
        log_view: AlarmLogView,
        tiles: Mapping[Vital, TileLike],
        trends: TrendPanel,
        user: Callable[[], str],
        role: Callable[[], str],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._clock = clock
        self.bar, self.sound, self.log_view = bar, sound, log_view
        self._tiles, self._trends = tiles, trends
        self._user, self._role = user, role
        self.monitor: AlarmSource | None = None
        self._feed: LiveFeed | None = None
        self._open_bands = False
        self._bands_drawn = 0.0
        self._log_stale = False
        # The record views (log table, bands) cost more as a session's alarms pile up: they
        # are coalesced so a burst of changes redraws them once, after the bar is on screen.
        self._record_timer = QTimer(self)
        self._record_timer.setSingleShot(True)
        self._record_timer.setInterval(RECORD_DELAY_MS)
        self._record_timer.timeout.connect(self.show_record)
        bar.acknowledge_requested.connect(self.acknowledge)
        bar.pause_requested.connect(self.pause)
        bar.attending_ack_requested.connect(self.acknowledge_attending)
        log_view.response_added.connect(self.add_response)
        sound.changed.connect(self._show_audio)
        self._show_audio()

    # -- wiring -----------------------------------------------------------------------------
    def attach(self, monitor: AlarmSource, feed: LiveFeed) -> None:
        """Follow ``monitor``'s alarms through ``feed`` (its listener may run on any thread)."""
        self.detach()
        self.monitor, self._feed = monitor, feed
        feed.alarms.connect(self.show_state)
        monitor.add_listener(feed.push_alarms)
        self.show_state()

    def detach(self) -> None:
        """Stop following: the bar and tiles go quiet; the log and bands stay for review."""
        monitor, feed = self.monitor, self._feed
        if monitor is None or feed is None:
            return
        monitor.remove_listener(feed.push_alarms)
        feed.alarms.disconnect(self.show_state)
        self._log_stale = True
        self.show_record()  # the final log (alarms ended by the stop)
        self._show_log_rows(monitor)
        self.monitor = self._feed = None
        now = self._clock.now()
        self.bar.set_alarms([], now)
        self.bar.set_attending_flag("")
        for tile in self._tiles.values():
            tile.set_alarm(None)
        self.sound.update([])
        self.sound.set_pause_remaining(0)

    # -- showing ----------------------------------------------------------------------------
    def show_state(self, _changes: object = None) -> None:
        """Read the monitor and show it (GUI thread)."""
        monitor = self.monitor
        if monitor is None:
            return
        active = monitor.active()
        views = [to_view(a) for a in active]
        now = self._clock.now()
        self.bar.set_alarms(views, now)
        self._show_tiles(views)
        self.sound.update((v.key, v.priority) for v in views if not v.acknowledged)
        flag = monitor.flag()
        self.bar.set_attending_flag(
            "" if flag is None else
            f"{flag.text.removeprefix('Notify attending: ')} ({local_hms(flag.started)})")
        self._show_pause(monitor)
        if not self._record_timer.isActive():
            self._record_timer.start()

    def show_record(self) -> None:
        """The alarm log table (when on screen) and the bands on the charts."""
        monitor = self.monitor
        if monitor is None:
            return
        self._record_timer.stop()
        history = monitor.history()
        if self.log_view.isVisible():
            self.log_view.set_rows([to_log_row(monitor.profile, a) for a in history])
            self._log_stale = False
        else:
            self._log_stale = True
        self._draw_bands(history)

    def log_shown(self) -> None:
        """The log came on screen: bring it up to date now."""
        if self.monitor is not None:
            self._show_log_rows(self.monitor)

    def _show_log_rows(self, monitor: AlarmSource) -> None:
        if self._log_stale:
            self.log_view.set_rows([to_log_row(monitor.profile, a) for a in monitor.history()])
            self._log_stale = False

    def _show_tiles(self, views: Sequence[AlarmView]) -> None:
        top: dict[Vital, AlarmView] = {}
        for v in views:
            vital = tile_vital(v.vital)
            if vital is None:
                continue
            held = top.get(vital)
            if held is None or (not v.acknowledged, RANK[v.priority]) > (
                    not held.acknowledged, RANK[held.priority]):
                top[vital] = v
        for vital, tile in self._tiles.items():
            v = top.get(vital)
            if v is None:
                tile.set_alarm(None)
            else:
                tile.set_alarm(v.priority, technical=v.technical, acknowledged=v.acknowledged)

    def _draw_bands(self, history: Sequence[ActiveAlarm]) -> None:
        bands = [(a.started, a.ended, "technical" if a.technical else a.priority.value)
                 for a in history if a.condition != NOTIFY_ATTENDING]
        self._trends.set_alarm_bands(bands)
        self._open_bands = any(end is None for _, end, _ in bands)
        self._bands_drawn = self._clock.monotonic()

    def _show_pause(self, monitor: AlarmSource) -> None:
        self.sound.set_pause_remaining(monitor.audio_pause_remaining())
        self._show_audio()

    def _show_audio(self) -> None:
        paused = self.sound.pause_text()
        if paused:
            self.bar.set_audio_text(paused, warn=True)
        else:
            self.bar.set_audio_text(self.sound.device_text(), warn=not self.sound.available)

    def refresh(self, now: datetime) -> None:
        """Timer tick: ages in the bar, the pause countdown, open bands growing."""
        self.bar.refresh(now)
        monitor = self.monitor
        if monitor is None:
            return
        self._show_pause(monitor)
        if self._log_stale and self.log_view.isVisible():
            self._show_log_rows(monitor)
        if self._open_bands and self._clock.monotonic() - self._bands_drawn >= BAND_REDRAW_S:
            self._draw_bands(monitor.history())

    # -- requests ---------------------------------------------------------------------------
    def _request(self, what: str, call: Callable[[AlarmSource], object]) -> bool:
        monitor = self.monitor
        if monitor is None:
            self.bar.show_message(f"✖ No recording: nothing to {what}.")
            return False
        try:
            call(monitor)
        except InfusionMonitorError as exc:
            self.bar.show_message(f"✖ {exc}")
            return False
        self.bar.show_message("")
        self.show_state()
        self.show_record()  # the nurse sees her own acknowledgement or note in the log at once
        return True

    def acknowledge(self) -> bool:
        """Acknowledge every alarm on the display, signed by the window's user."""
        return self._request("acknowledge", lambda m: m.acknowledge_all(by=self._user()))

    def pause(self, minutes: int) -> bool:
        """Pause alarm audio for 1, 2 or 3 minutes."""
        return self._request("pause",
                             lambda m: m.pause_audio(by=self._user(), minutes=minutes))

    def acknowledge_attending(self) -> bool:
        """Take the attending flag down; refused (with the reason shown) for other roles."""
        return self._request("acknowledge", lambda m: m.acknowledge_attending(
            by=self._user(), role=self._role()))

    def add_response(self, uid: str, text: str) -> bool:
        return self._request("note", lambda m: m.add_response(uid, text, by=self._user()))
