"""The alarm engine: a pure state machine from readings, device events, entries and time to alarms.

This is a **secondary** alarm system; the patient monitor's own alarms stay primary. It follows
IEC 60601-1-8 as monitors implement it, with clinical.md's defaults. No threads, I/O or Qt: every
method takes the time, and returns the ``AlarmChange`` list it caused (the monitor stores them).

Time. ``t`` is float seconds on one timeline; ``origin`` is its t = 0 in UTC. A reading counts
at its own time (``t_received``, else ``t_device``), so an alarm starts at exactly breach onset +
delay however late the engine notices it: ``tick(now)`` only catches up. Inputs that arrive out of
order are taken at the engine's latest time. At one instant, inputs act before timed steps.

Heart rate. The HR conditions judge the ECG heart rate. With no valid ECG HR for ``hold_s``
(a pulse oximeter alone: Masimo, Nonin; or ECG leads off) they judge the pulse rate instead, so
tachycardia and bradycardia are still alarmed; while an ECG HR comes, the pulse rate is ignored.

Continuous conditions (SpO2, HR, RR). A valid (``Quality.OK``) reading's value holds until the
next valid reading of that parameter, but at most ``hold_s`` (10 s, the link watchdog). A breach
run starts at the first breaching reading (onset) and ends at the first valid reading inside the
limit, or ``hold_s`` after the last breaching reading if none follows. A run that lasts longer
than the condition delay raises exactly one alarm, starting at onset + delay; a shorter one raises
nothing. Artifact, questionable and demo readings neither continue nor end a run: they never raise
a physiological alarm. The severe and the plain condition of one parameter (SpO2 < 88 and < 92)
are judged independently and both are logged, but ``active()`` shows only the severe one while
both are displayed (``supersedes``).

Discrete conditions (NIBP, RASS, distress). Each measurement or entry is judged at once (no
delay); the alarm ends with the next one inside the limit. An artifact NIBP is ignored. The
pre-start BP check (low priority) runs only in check-in and baseline.

Technical conditions (priority exported as ``technical``, never latched):
``link_lost`` (high): no frame (reading or parameter status) for 10 s, from the last frame, or
from the start if none came; it ends with the next frame. ``signal_lost`` per SpO2 and HR
(medium, high after 60 s): from the first invalid status, probe off or non-OK reading until the
next valid reading, alarmed after 15 s. ``nibp_overdue`` (low): no valid NIBP for the phase's
interval + 2 min, counted from the later of the last NIBP and the phase start (needs
``set_phase``). ``storage_failing`` (high): saving fails; ``storage_overflow`` (high): and memory
for unsaved data is full, so readings are lost (the store records how many).

Reminder: ``charting_overdue`` (low, exported as ``low``: it is about the chart, not the
equipment): 3 minutes in a row unassessed (``on_unassessed_streak``).

Latching, acknowledgement, escalation. High physiological alarms latch: when the condition ends
they stay shown until acknowledged (the log keeps the end and the acknowledgement apart).
Others clear when the condition ends. An unacknowledged high alarm (technical ones too)
escalates every ``escalation_s`` (60 s) after it started until it is acknowledged or cleared.
Audio pause: 1, 2 or 3 min (default from settings, 2 min); a new high alarm ends it; there is no
permanent mute. Attending flag: a medium/high BP alarm or any high physiological alarm raises a
``notify_attending`` flag, which only a user with the role ``attending`` can acknowledge.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from datetime import datetime
from functools import partial

from infusion_monitor.devices.base import DeviceEvent, DeviceEventKind
from infusion_monitor.errors import ChartingError
from infusion_monitor.session.alarm_book import ESCALATION_S, AlarmBook, worse
from infusion_monitor.session.alarm_types import ActiveAlarm, AlarmChange
from infusion_monitor.session.phases import NIBP_INTERVAL_S, Phase
from infusion_monitor.session.thresholds import (
    DEFAULT_CONDITIONS,
    SCORE_RANGES,
    SIGNAL_LOST_HIGH_AFTER_S,
    AlarmCondition,
    Kind,
    LimitChange,
    Priority,
    ThresholdProfile,
    parameter_label,
)
from infusion_monitor.vitals import NIBP, Quality, Reading, Vital

HOLD_S = 10.0
LINK_TIMEOUT_S = 10.0
NIBP_GRACE_S = 120.0  # "no NIBP for interval + 2 min"
UNASSESSED_STREAK = 3
WATCHED = (Vital.SPO2, Vital.HR)  # "SpO2/HR stream missing or probe off"
_BEFORE_START = (Phase.CHECK_IN, Phase.BASELINE)
_BY_PARAMETER: dict[str, tuple[str, ...]] = {}
for _cond in DEFAULT_CONDITIONS:
    assert _cond.parameter is not None
    _BY_PARAMETER[_cond.parameter] = (*_BY_PARAMETER.get(_cond.parameter, ()), _cond.name)


class _Run:
    """A breach of one continuous condition, from its onset to now."""

    __slots__ = ("last", "onset", "uid", "value", "worst")

    def __init__(self, t: float, value: float) -> None:
        self.onset = self.last = t
        self.value = self.worst = value
        self.uid: str | None = None


class AlarmEngine:
    """Alarm state for one session. Not thread-safe: the AlarmMonitor serialises calls.

    A call that raises an error still keeps any change it caused before: the next call returns it.
    """

    def __init__(
        self,
        profile: ThresholdProfile | None = None,
        *,
        origin: datetime,
        escalation_s: float = ESCALATION_S,
        audio_pause_s: float = 120.0,
        hold_s: float = HOLD_S,
        link_timeout_s: float = LINK_TIMEOUT_S,
        new_uid: Callable[[], str] = lambda: str(uuid.uuid4()),
    ) -> None:
        if origin.tzinfo is None:
            raise ValueError("origin must be timezone-aware UTC")
        self.profile = profile or ThresholdProfile.defaults()
        self.origin = origin
        self.hold_s = hold_s
        self.link_timeout_s = link_timeout_s
        self.book = AlarmBook(origin, escalation_s=escalation_s, audio_pause_s=audio_pause_s,
                              new_uid=new_uid)
        self._now = 0.0
        self._runs: dict[str, _Run] = {}
        self._lost: dict[Vital, tuple[float, str]] = {}  # since when, and why
        self._supervising = True
        self._link_ref = 0.0
        self._last_frame: float | None = None
        self._link_detail = ""
        self.phase: Phase | None = None
        self._phase_since = 0.0
        self._last_nibp: float | None = None
        self._last_hr: float | None = None  # last valid ECG heart rate

    # -- time ---------------------------------------------------------------------------------
    def time_of(self, t: float) -> datetime:
        return self.book.time_of(t)

    def seconds(self, when: datetime) -> float:
        return (when - self.origin).total_seconds()

    def tick(self, now: float) -> list[AlarmChange]:
        """Let time pass: raise what has waited its delay, end stale runs, escalate."""
        now = max(now, self._now)
        self._advance(now, inclusive=True)
        self._now = now
        return self._take()

    def _input(self, now: float) -> float:
        t = max(now, self._now)
        self._advance(t, inclusive=False)
        self._now = t
        return t

    def _take(self) -> list[AlarmChange]:
        return self.book.take()

    # -- device input -------------------------------------------------------------------------
    def on_events(self, events: Iterable[Reading | DeviceEvent]) -> list[AlarmChange]:
        """Stamped readings and device events from the recorder, in order."""
        for e in events:
            if not isinstance(e, Reading | DeviceEvent):
                continue  # a waveform block: no condition judges the pleth itself
            when = e.t_received or e.t_device
            if when is None:
                raise ValueError(f"{type(e).__name__} has no time: {e!r}")
            t = self._input(self.seconds(when))
            if isinstance(e, Reading):
                self._reading(e, t)
            else:
                self._device_event(e, t)
        return self._take()

    def _reading(self, r: Reading, t: float) -> None:
        self._frame(t)
        ok = r.quality is Quality.OK
        if r.vital in WATCHED:
            if ok:
                self._signal_back(r.vital, t)
            else:
                self._lost.setdefault(r.vital, (t, r.quality.value))
        if not ok:
            return
        if r.vital in NIBP:
            self._last_nibp = t
            if "nibp_overdue" in self.book.open:
                self.book.end("nibp_overdue", t)
        parameter = r.vital.value
        if r.vital is Vital.HR:
            self._last_hr = t
        elif r.vital is Vital.PR and (
            self._last_hr is None or t - self._last_hr > self.hold_s
        ):
            parameter = Vital.HR.value  # no ECG heart rate: the pulse rate is the heart rate
        for name in _BY_PARAMETER.get(parameter, ()):
            cond = self.profile.condition(name)
            if cond.kind is Kind.CONTINUOUS:
                self._continuous(cond, r.value, t)
            else:
                self._discrete(cond, r.value, t)

    def _device_event(self, e: DeviceEvent, t: float) -> None:
        k = e.kind
        if k in (DeviceEventKind.PARAMETER_STATUS, DeviceEventKind.PROBE_OFF):
            self._frame(t)
            if e.vital in WATCHED and (k is DeviceEventKind.PROBE_OFF or e.detail != "valid"):
                self._lost.setdefault(e.vital, (t, e.detail or "probe off"))
        elif k is DeviceEventKind.DATA_RESUMED:
            self._frame(t)
        elif k in (DeviceEventKind.LINK_DOWN, DeviceEventKind.NO_DATA):
            self._note_link(e.detail)
        elif k is DeviceEventKind.RECORDING_STOPPED:
            self._supervising = False
        elif k is DeviceEventKind.RECORDING_STARTED and not self._supervising:
            self._supervise(t)

    def on_link_state(self, state: str, detail: str, now: float) -> list[AlarmChange]:
        """The link's state (``LinkState`` value); a stopped link is not a lost one."""
        t = self._input(now)
        if state == "stopped":
            self._supervising = False
            if "link_lost" in self.book.open:
                self.book.end("link_lost", t, "link stopped")
        else:
            if not self._supervising:
                self._supervise(t)
            if state in ("disconnected", "reconnecting", "no data"):
                self._note_link(detail)
        return self._take()

    def _note_link(self, detail: str) -> None:
        """Why the link is down; an alarm already shown says the latest reason (busy, garbage)."""
        self._link_detail = detail
        alarm = self.book.open.get("link_lost")
        if alarm is not None:
            alarm.text = self._link_text()

    def _supervise(self, t: float) -> None:
        self._supervising = True
        self._link_ref = t
        self._last_frame = None

    def _frame(self, t: float) -> None:
        self._last_frame = t
        if "link_lost" in self.book.open:
            self.book.end("link_lost", t)

    def _signal_back(self, vital: Vital, t: float) -> None:
        self._lost.pop(vital, None)
        key = f"signal_lost:{vital.value}"
        if key in self.book.open:
            self.book.end(key, t)

    # -- physiological conditions -------------------------------------------------------------
    def _continuous(self, cond: AlarmCondition, value: float, t: float) -> None:
        run = self._runs.get(cond.name)
        if not cond.breached(value):
            if run is not None:
                self._end_run(cond.name, t)
            return
        if run is None:
            self._runs[cond.name] = _Run(t, value)
            return
        run.last, run.value = t, value
        if worse(cond, value, run.worst):
            run.worst = value
        if run.uid is not None and cond.name in self.book.open:
            self.book.update(self.book.open[cond.name], cond, value, t)

    def _raise_run(self, name: str) -> None:
        run = self._runs[name]
        cond = self.profile.condition(name)
        alarm = self.book.raise_(cond, name, run.onset + cond.delay_s,
                                 cond.describe(run.value), run.value, run.worst)
        run.uid = alarm.uid

    def _end_run(self, name: str, t: float) -> None:
        run = self._runs.pop(name)
        if run.uid is not None and name in self.book.open:
            self.book.end(name, t)

    def _discrete(self, cond: AlarmCondition, value: float, t: float) -> None:
        alarm = self.book.open.get(cond.name)
        if cond.before_infusion_only and self.phase not in _BEFORE_START:
            if alarm is not None:
                self.book.end(cond.name, t, "infusion started")
            return
        if not cond.breached(value):
            if alarm is not None:
                self.book.end(cond.name, t)
        elif alarm is None:
            self.book.raise_(cond, cond.name, t, cond.describe(value), value, value)
        else:
            self.book.update(alarm, cond, value, t)

    def on_minute_entry(
        self, now: float, *, rass: int | None = None, distress: int | None = None
    ) -> list[AlarmChange]:
        """The nurse's RASS and distress for a minute; None means not assessed (no change)."""
        for name, score in (("rass", rass), ("distress", distress)):
            lo, hi = SCORE_RANGES[name]
            if score is not None and not lo <= score <= hi:
                raise ChartingError(f"{name} must be between {lo} and {hi}, not {score}")
        t = self._input(now)
        for name, score in (("rass", rass), ("distress", distress)):
            if score is not None:
                for cond_name in _BY_PARAMETER[name]:
                    self._discrete(self.profile.condition(cond_name), score, t)
        return self._take()

    # -- technical conditions -----------------------------------------------------------------
    def set_phase(self, phase: Phase, now: float) -> list[AlarmChange]:
        """The session entered ``phase`` (NIBP schedule, pre-start check)."""
        t = self._input(now)
        self.phase, self._phase_since = phase, t
        if "nibp_overdue" in self.book.open:
            self.book.end("nibp_overdue", t, f"phase {phase.value}")
        if phase not in _BEFORE_START:
            for name in ("prestart_sbp_high", "prestart_dbp_high"):
                if name in self.book.open:
                    self.book.end(name, t, "infusion started")
        return self._take()

    def on_unassessed_streak(self, minutes: int, now: float) -> list[AlarmChange]:
        """How many minutes in a row are unassessed now (from the charting code)."""
        t = self._input(now)
        alarm = self.book.open.get("charting_overdue")
        if minutes >= UNASSESSED_STREAK:
            text = f"{minutes} minutes in a row not assessed"
            if alarm is None:
                self.book.raise_(self.profile.condition("charting_overdue"),
                                 "charting_overdue", t, text, float(minutes))
            else:
                alarm.text, alarm.value = text, float(minutes)
        elif alarm is not None:
            self.book.end("charting_overdue", t)
        return self._take()

    def on_storage_error(self, detail: str, now: float) -> list[AlarmChange]:
        t = self._input(now)
        if "storage_failing" not in self.book.open:
            self.book.raise_(self.profile.condition("storage_failing"), "storage_failing", t,
                             f"Saving to the database fails: {detail}")
        return self._take()

    def on_storage_overflow(self, dropped: int, now: float) -> list[AlarmChange]:
        """Memory for unsaved data is full: readings are being lost, not only delayed."""
        t = self._input(now)
        if "storage_overflow" not in self.book.open:
            self.book.raise_(self.profile.condition("storage_overflow"), "storage_overflow", t,
                             f"Saving fails and memory is full: readings are not being kept"
                             f" ({dropped} so far)", float(dropped))
        return self._take()

    def on_storage_recovered(self, now: float) -> list[AlarmChange]:
        t = self._input(now)
        for condition in ("storage_failing", "storage_overflow"):
            if condition in self.book.open:
                self.book.end(condition, t)
        return self._take()

    # -- timed steps ----------------------------------------------------------------------------
    def _advance(self, t: float, *, inclusive: bool) -> None:
        """Take every timed step due before ``t`` (or at it), earliest first."""
        while True:
            due = min(self._dues(), default=None, key=lambda d: (d[0], d[1]))
            if due is None or due[0] > t or (due[0] == t and not inclusive):
                return
            due[2]()

    def _dues(self) -> list[tuple[float, int, Callable[[], None]]]:
        # rank at one instant: ends, then raises, then priority upgrades, then escalations
        out: list[tuple[float, int, Callable[[], None]]] = []
        for name, run in self._runs.items():
            stale = run.last + self.hold_s
            raise_at = run.onset + self.profile.condition(name).delay_s
            if run.uid is None and raise_at < stale:
                out.append((raise_at, 1, partial(self._raise_run, name)))
            out.append((stale, 0, partial(self._end_run, name, stale)))
        if self._supervising and "link_lost" not in self.book.open:
            ref = self._link_ref if self._last_frame is None else self._last_frame
            out.append((ref + self.link_timeout_s, 1, partial(self._raise_link, ref)))
        cond = self.profile.condition("signal_lost")
        for vital, (since, _why) in self._lost.items():
            alarm = self.book.open.get(f"signal_lost:{vital.value}")
            if alarm is None:
                out.append((since + cond.delay_s, 1, partial(self._raise_signal, vital)))
            elif alarm.priority is not Priority.HIGH:
                out.append((since + SIGNAL_LOST_HIGH_AFTER_S, 2,
                            partial(self.book.upgrade, alarm, since + SIGNAL_LOST_HIGH_AFTER_S)))
        interval = NIBP_INTERVAL_S.get(self.phase) if self.phase else None
        if interval and "nibp_overdue" not in self.book.open:
            ref = (self._phase_since if self._last_nibp is None
                   else max(self._phase_since, self._last_nibp))
            out.append((ref + interval + NIBP_GRACE_S, 1, partial(self._raise_nibp, ref)))
        return out + self.book.dues()

    def _raise_link(self, ref: float) -> None:
        self.book.raise_(self.profile.condition("link_lost"), "link_lost",
                         ref + self.link_timeout_s, self._link_text())

    def _link_text(self) -> str:
        why = f": {self._link_detail}" if self._link_detail else ""
        return f"Monitor link lost: no valid frame for {self.link_timeout_s:g} s{why}"

    def _raise_signal(self, vital: Vital) -> None:
        since, why = self._lost[vital]
        cond = self.profile.condition("signal_lost")
        self.book.raise_(cond, f"signal_lost:{vital.value}", since + cond.delay_s,
                         f"{parameter_label(vital.value)}: no valid value ({why})",
                         parameter=vital.value)

    def _raise_nibp(self, ref: float) -> None:
        interval = NIBP_INTERVAL_S[self.phase]  # type: ignore[index]
        grace = interval + NIBP_GRACE_S
        self.book.raise_(self.profile.condition("nibp_overdue"), "nibp_overdue", ref + grace,
                         f"NIBP overdue: none for {grace / 60:g} min",
                         parameter=Vital.NIBP_SYS.value)

    # -- what users do (``AlarmBook`` has the rules) -----------------------------------------
    def acknowledge(self, uid: str, *, by: str, now: float,
                    role: str | None = None) -> list[AlarmChange]:
        """``by`` has seen the alarm: no more escalation; a latched alarm that ended clears.

        The attending flag's uid needs ``role="attending"``. Acknowledging twice does nothing.
        """
        t = self._input(now)
        self.book.acknowledge(uid, by, t, role)
        return self._take()

    def acknowledge_all(self, *, by: str, now: float) -> list[AlarmChange]:
        """Acknowledge every alarm on the display (the bar's Acknowledge button)."""
        t = self._input(now)
        self.book.acknowledge_all(by, t)
        return self._take()

    def acknowledge_attending(self, *, by: str, role: str | None,
                              now: float) -> list[AlarmChange]:
        """The attending has been told: the flag comes down. Only an attending may do it."""
        t = self._input(now)
        self.book.acknowledge_attending(by, role, t)
        return self._take()

    def pause_audio(self, now: float, *, by: str,
                    minutes: int | None = None) -> list[AlarmChange]:
        """Silence alarm sound for 1, 2 or 3 minutes (default from settings); never longer."""
        t = self._input(now)
        self.book.pause_audio(t, by, minutes)
        return self._take()

    @property
    def audio_paused_until(self) -> float | None:
        return self.book.audio_paused_until

    def audio_pause_remaining(self, now: float) -> float:
        """Seconds of audio pause left (the countdown); 0 when sound is on."""
        return self.book.audio_pause_remaining(now)

    def add_response(self, uid: str, text: str, *, by: str, now: float) -> list[AlarmChange]:
        """The nurse's note on what was done, e.g. "repeated NIBP: 176/104"."""
        t = self._input(now)
        self.book.add_response(uid, text, by, t)
        return self._take()

    def override(self, condition: str, new_limit: float, *, by: str, reason: str,
                 now: float, apply: bool = True) -> LimitChange:
        """A per-patient limit, before infusion start only (see ``ThresholdProfile.override``).

        With ``apply=False`` the change is only checked (to store it first, then ``apply``).
        """
        change = self.profile.check_override(condition, new_limit, by=by, reason=reason,
                                             phase=self.phase,
                                             now=self.time_of(max(now, self._now)))
        if apply:
            self.profile.apply(change)
        return change

    def stop(self, now: float) -> list[AlarmChange]:
        """The recording ends: every alarm whose condition still holds ends now."""
        t = self._input(now)
        self._supervising = False
        for key in list(self.book.open):
            self.book.end(key, t, "recording stopped")
        self._runs.clear()
        self._lost.clear()
        return self._take()

    # -- what the display shows ---------------------------------------------------------------
    def active(self) -> list[ActiveAlarm]:
        """Alarms to annunciate now, most urgent first, then oldest first."""
        return self.book.active()

    def history(self) -> list[ActiveAlarm]:
        """Every alarm of the session (the attending flag included), in the order they started."""
        return self.book.history()

    def flag(self) -> ActiveAlarm | None:
        """The attending flag, if it is up."""
        flag = self.book.attending_flag
        return None if flag is None else self.book.snapshot(flag)
