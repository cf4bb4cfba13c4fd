"""Philips IntelliVue MIB/RS232 Data Export: association, keep-alive polls, numerics.

The session (protocols.md; OpenICE ``AbstractIntellivueRunner``; mindleaving
``CommandMessageCreator``): ``connection_made`` queues an Association Request. After the Accept
the monitor sends an MDS Create event, which is answered with its result and one *extended* poll
of the numerics with ``NOM_ATTR_TIME_PD_POLL``: for that period the monitor sends a poll result
every second by itself (``POLL_EXT_PERIOD_NU_1SEC``, asked for in the association). The poll is
renewed before the period ends (OpenICE: a 10-min period, re-asserted after 9 min). Every
``KEEP_ALIVE_S`` a single poll of the alarm monitor's static attributes goes out as the keep-alive
(OpenICE and mindleaving, "as suggested by the manual"): without a message from the client the
monitor stops sending after a few minutes (OpenICE issue 128). A refused association is reported
once as a device error and retried every ``RETRY_S``; a quiet line after the association
(``SILENCE_S``) or an Abort starts a new one; ``closing`` queues a Release Request.

Device time: a poll result's ``abs_time_stamp`` when it is set, else its relative time (1/8 ms
ticks) anchored to the MDS Create event's absolute and relative time. IntelliVue's absolute time
carries no time zone; it is read as UTC. A monitor whose clock is set to local time gives
``t_device`` offset by its zone; the receipt time the app stamps is unaffected.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from infusion_monitor.devices.base import (
    Codec,
    CodecResult,
    DeviceEvent,
    DeviceEventKind,
    Event,
    SerialSettings,
)
from infusion_monitor.devices.intellivue_association import (
    SI_ABORT,
    SI_ACCEPT,
    SI_DATA,
    SI_REFUSE,
    SI_RELEASE_REQUEST,
    SI_RELEASE_RESPONSE,
    AssociationMessage,
    build_association_request,
    build_release_request,
    build_release_response,
    parse_association,
)
from infusion_monitor.devices.intellivue_frames import (
    TICKS_PER_S,
    Attributes,
    Deframer,
    MessageError,
    check_frame,
    decode_abs_time,
    decode_float,
    encode_frame,
    ticks_to_timedelta,
)
from infusion_monitor.devices.intellivue_messages import (
    NOM_ATTR_GRP_METRIC_VAL_OBS,
    NOM_ATTR_GRP_VMO_STATIC,
    NOM_ATTR_NU_CMPD_VAL_OBS,
    NOM_ATTR_NU_VAL_OBS,
    NOM_ATTR_TIME_ABS,
    NOM_ATTR_TIME_REL,
    NOM_ATTR_TIME_STAMP_ABS,
    NOM_MOC_VMO_AL_MON,
    NOM_MOC_VMO_METRIC_NU,
    NOM_NOTI_MDS_CREAT,
    EventReport,
    NuObservation,
    build_mds_create_result,
    build_poll_request,
    parse_data_message,
    parse_numerics,
    scan_poll_reply,
)
from infusion_monitor.vitals import NIBP, Quality, Reading, Vital

#: A keep-alive goes out this often (s). OpenICE asserts one after 8 s without a message,
#: VSCaptureMP every 6 s; never faster than the monitor's ``min_poll_period``.
KEEP_ALIVE_S = 5.0
#: Period asked for in the extended numerics poll (s), and when it is renewed (OpenICE).
POLL_PERIOD_S = 600.0
POLL_RENEW_S = 540.0
#: The monitor's announced minimum poll period slows the keep-alive, up to this (s).
KEEP_ALIVE_MAX_S = 30.0
#: No valid frame for this long after the Accept: the association is gone; start a new one.
SILENCE_S = 12.0
#: An unanswered or refused association request is sent again after this long.
RETRY_S = 10.0

# MeasurementState bits (protocols.md).
INVALID = 0x8000
QUESTIONABLE = 0x4000
UNAVAILABLE = 0x2000
CALIBRATION = 0x1000
TEST_DATA = 0x0800
DEMO_DATA = 0x0400

# Physiological ids (SCADA codes) and units (protocols.md).
NOM_ECG_CARD_BEAT_RATE = 0x4182
NOM_PLETH_PULS_RATE = 0x4822
NOM_PRESS_BLD_NONINV = 0x4A04  # the compound NIBP object
NOM_PRESS_BLD_NONINV_SYS = 0x4A05
NOM_PRESS_BLD_NONINV_DIA = 0x4A06
NOM_PRESS_BLD_NONINV_MEAN = 0x4A07
NOM_PULS_OXIM_SAT_O2 = 0x4BB8
NOM_DIM_BEAT_PER_MIN = 2720
NOM_DIM_MMHG = 3872
NOM_DIM_PERCENT = 544

PHYSIO_VITALS = {
    NOM_ECG_CARD_BEAT_RATE: Vital.HR,
    NOM_PLETH_PULS_RATE: Vital.PR,
    NOM_PULS_OXIM_SAT_O2: Vital.SPO2,
    NOM_PRESS_BLD_NONINV_SYS: Vital.NIBP_SYS,
    NOM_PRESS_BLD_NONINV_DIA: Vital.NIBP_DIA,
    NOM_PRESS_BLD_NONINV_MEAN: Vital.NIBP_MEAN,
}
VITAL_PHYSIO = {v: k for k, v in PHYSIO_VITALS.items()}
UNITS = {
    Vital.HR: NOM_DIM_BEAT_PER_MIN, Vital.PR: NOM_DIM_BEAT_PER_MIN,
    Vital.SPO2: NOM_DIM_PERCENT,
    Vital.NIBP_SYS: NOM_DIM_MMHG, Vital.NIBP_DIA: NOM_DIM_MMHG, Vital.NIBP_MEAN: NOM_DIM_MMHG,
}
_ORDER = (Vital.HR, Vital.PR, Vital.SPO2, *NIBP)
VALID = "valid"
REFUSED_MESSAGE = (
    "IntelliVue refused the association{reason}; check the monitor's Data Export settings "
    "(MIB/RS232 port set to Data Export, no other client connected)"
)
DEMO_MESSAGE = "monitor in DEMO mode: values are not patient data"
TEST_MESSAGE = "monitor sends TEST data: values are not patient data"


class Phase(enum.Enum):
    """Where the association stands."""

    IDLE = "idle"  # no port, or released by us
    ASSOCIATING = "associating"  # request sent
    AWAIT_MDS = "awaiting MDS create"  # accepted; the MDS Create event comes next
    POLLING = "polling"
    REFUSED = "refused"  # retried after RETRY_S
    RELEASED = "released by the monitor"  # retried after RETRY_S


def judge(obs: NuObservation, vital: Vital) -> tuple[str, float | None, Quality]:
    """(status, value, quality) of one observation; only status "valid" carries a value."""
    if obs.state & INVALID:
        return "invalid", None, Quality.OK
    if obs.state & UNAVAILABLE:
        return "unavailable", None, Quality.OK
    if obs.state & CALIBRATION:
        return "calibrating", None, Quality.OK
    value, special = decode_float(obs.word)
    if value is None:
        return f"no value ({special})", None, Quality.OK
    if obs.unit != UNITS[vital]:
        return f"unexpected unit code {obs.unit} (expected {UNITS[vital]})", None, Quality.OK
    if obs.state & (DEMO_DATA | TEST_DATA):
        return VALID, value, Quality.DEMO
    if obs.state & QUESTIONABLE:
        return VALID, value, Quality.QUESTIONABLE
    return VALID, value, Quality.OK


# The numerics by physio id, in reporting order. The decoding keys on the integer id: ``Vital``
# is an enum, whose hash is a Python call.
_REPORTED = tuple(VITAL_PHYSIO[v] for v in _ORDER)
_NIBP_IDS = _SYS, _DIA, _MEAN = tuple(VITAL_PHYSIO[v] for v in NIBP)
#: Numeric attribute values remembered, per attribute id, with their judged observations: a
#: monitor repeats the same few (and the last NIBP in every poll result).
ASSESSED_MAX = 4096


class Assessment(NamedTuple):
    """One NuObsValue of a vital we record, judged."""

    physio_id: int
    vital: Vital
    status: str
    value: float | None
    quality: Quality
    state: int
    measurement: tuple[str, float | None]  # (status, value): one NIBP from the next


def assess(obs: NuObservation) -> Assessment | None:
    """Judge one NuObsValue for the vital its physio id names; None if it is not one we record."""
    vital = PHYSIO_VITALS.get(obs.physio_id)
    if vital is None:
        return None
    status, value, quality = judge(obs, vital)
    return Assessment(obs.physio_id, vital, status, value, quality, obs.state, (status, value))


class IntelliVueCodec(Codec):
    """Associates with an IntelliVue, keeps the association alive and decodes its numerics."""

    name = "intellivue"
    serial = SerialSettings(baudrate=115200, bytesize=8, parity="N", stopbits=1)

    def __init__(self, poll_period_s: float = POLL_PERIOD_S, keep_alive_s: float = KEEP_ALIVE_S
                 ) -> None:
        super().__init__()
        self.poll_period_s = poll_period_s
        self.keep_alive_s = keep_alive_s
        self.refusals = 0  # association refusals seen (each one retried)
        self.associations = 0  # MDS Create events answered
        self._deframer = Deframer()
        self._phase = Phase.IDLE
        self._now: float | None = None  # the last tick's clock; None before the first
        self._phase_since: float | None = None  # None: "from the next tick"
        self._heard_at: float | None = None  # tick time of the last valid frame, this phase
        self._heard = False  # a valid frame since the last tick (stamped by the next one)
        self._keepalive_at: float | None = None
        self._poll_at: float | None = None
        self._poll_device_start: datetime | None = None  # monitor time of the poll's first result
        self._last_device_t: datetime | None = None
        self._min_poll_s = 0.0
        self._invoke_id = 0
        self._poll_number = 0
        self._anchor: tuple[datetime, int] | None = None  # MDS create: absolute, relative time
        # Survive connection_lost(): a reconnect repeats neither an NIBP nor an event.
        self._status: dict[int, str] = {}  # by physio id
        self._known_attributes: dict[bytes, Attributes] = {}  # for scan_poll_reply
        self._assessed: dict[int, dict[bytes, tuple[Assessment, ...]]] = {
            NOM_ATTR_NU_VAL_OBS: {}, NOM_ATTR_NU_CMPD_VAL_OBS: {}}
        self._last_nibp: tuple[object, ...] | None = None
        self._mode_reported: str | None = None
        self._refusal_reported = False

    @property
    def phase(self) -> Phase:
        return self._phase

    # -- the link's hooks ---------------------------------------------------------------------
    def connection_made(self) -> None:
        self._deframer.reset()
        self._associate()

    def connection_lost(self) -> None:
        self._deframer.reset()
        self._set_phase(Phase.IDLE)

    def closing(self) -> None:
        """Release the association, so the monitor is free for the next client at once."""
        if self._phase is not Phase.IDLE:
            self._send_message(build_release_request())
            self._set_phase(Phase.IDLE)

    def tick(self, monotonic: float) -> None:
        """Retries, the silence check, keep-alives and poll renewal, on the link's clock."""
        self._now = monotonic
        if self._phase_since is None:
            self._phase_since = monotonic
        if self._heard:  # stamped now, not at the previous tick: a stalled reader catches up
            self._heard, self._heard_at = False, monotonic
        age = monotonic - self._phase_since
        phase = self._phase
        if phase is Phase.ASSOCIATING and age >= RETRY_S:
            self._associate()
        elif phase in (Phase.REFUSED, Phase.RELEASED) and age >= RETRY_S:
            self._associate()
        elif phase in (Phase.AWAIT_MDS, Phase.POLLING):
            heard = max(self._heard_at or self._phase_since, self._phase_since)
            if monotonic - heard >= SILENCE_S:
                self._associate()
            elif phase is Phase.POLLING:
                self._keep_polling(monotonic)

    def receive_data(self, data: bytes) -> list[Event]:
        data = bytes(data)
        self.stats.bytes_in += len(data)
        events: list[Event] = []
        for raw, reason in self._deframer.feed(data):
            payload, reason = check_frame(raw) if raw is not None else (None, reason)
            if payload is None:
                self._reject(events, reason)
                continue
            try:
                self._on_message(payload, events)
            except MessageError as exc:
                self._reject(events, f"malformed message: {exc}")
        if events:
            self.stats.readings += sum(isinstance(e, Reading) for e in events)
        return events

    # -- session --------------------------------------------------------------------------------
    def _set_phase(self, phase: Phase) -> None:
        self._phase = phase
        self._phase_since = self._now
        self._heard_at = None

    def _send_message(self, user_data: bytes) -> None:
        self._send(encode_frame(user_data))

    def _next_invoke(self) -> int:
        self._invoke_id = (self._invoke_id + 1) & 0xFFFF
        return self._invoke_id

    def _associate(self) -> None:
        self._send_message(build_association_request())
        self._set_phase(Phase.ASSOCIATING)

    def _poll(self) -> None:
        """Ask for the numerics every second for ``poll_period_s`` (the extended poll)."""
        self._poll_number = (self._poll_number + 1) & 0xFFFF
        self._send_message(build_poll_request(
            self._next_invoke(), self._poll_number, NOM_MOC_VMO_METRIC_NU,
            NOM_ATTR_GRP_METRIC_VAL_OBS, extended=True,
            period_ticks=round(self.poll_period_s * TICKS_PER_S),
        ))
        self._poll_at = self._now
        self._poll_device_start = None

    def _keep_alive(self) -> None:
        """The cheapest request there is: the alarm monitor's static attributes."""
        self._poll_number = (self._poll_number + 1) & 0xFFFF
        self._send_message(build_poll_request(
            self._next_invoke(), self._poll_number, NOM_MOC_VMO_AL_MON, NOM_ATTR_GRP_VMO_STATIC,
        ))

    def _keep_polling(self, now: float) -> None:
        interval = max(self.keep_alive_s, self._min_poll_s)
        if self._keepalive_at is None or now - self._keepalive_at >= interval:
            self._keep_alive()
            self._keepalive_at = now
        if self._poll_at is None:
            self._poll_at = now
        elif now - self._poll_at >= POLL_RENEW_S or self._device_poll_age() >= POLL_RENEW_S:
            self._poll()

    def _device_poll_age(self) -> float:
        """Seconds the current poll has run on the *monitor's* clock (it may run faster)."""
        start, last = self._poll_device_start, self._last_device_t
        return 0.0 if start is None or last is None else (last - start).total_seconds()

    def _reject(self, events: list[Event], detail: str) -> None:
        self.stats.frames_rejected += 1
        events.append(DeviceEvent(DeviceEventKind.FRAME_REJECTED, detail=detail))

    def _on_message(self, payload: bytes, events: list[Event]) -> None:
        """Parse first (a MessageError leaves no trace), then act."""
        if not payload:
            raise MessageError("empty message")
        if payload[0] == SI_DATA:
            # A poll result (every second) as plain tuples; any other message as a DataMessage
            # (parse_data_message gives a PollReply only when scan_poll_reply reads one).
            scan = scan_poll_reply(payload, self._known_attributes)
            if scan is not None:
                message = None
                self._on_poll_reply(scan[4], scan[5], scan[8], events)  # parses, then emits
            else:
                message = parse_data_message(payload)
            self.stats.frames_ok += 1
            self._heard = True
            if isinstance(message, EventReport):
                self._on_event_report(message)
            return
        association = parse_association(payload)
        self.stats.frames_ok += 1
        self._heard = True
        self._on_association(association, events)

    def _on_association(self, msg: AssociationMessage, events: list[Event]) -> None:
        if msg.kind == SI_ACCEPT and self._phase is Phase.ASSOCIATING:
            info = msg.user_info
            if info is not None and info.min_poll_ticks:
                self._min_poll_s = min(info.min_poll_ticks / TICKS_PER_S, KEEP_ALIVE_MAX_S)
            self._set_phase(Phase.AWAIT_MDS)
        elif msg.kind == SI_REFUSE and self._phase is Phase.ASSOCIATING:
            self.refusals += 1
            self._set_phase(Phase.REFUSED)
            if not self._refusal_reported:
                self._refusal_reported = True
                reason = msg.refuse_reason
                text = "" if reason is None else f" (refuse reason {reason})"
                events.append(DeviceEvent(DeviceEventKind.DEVICE_ERROR,
                                          REFUSED_MESSAGE.format(reason=text)))
        elif msg.kind == SI_ABORT and self._phase is not Phase.IDLE:
            events.append(DeviceEvent(DeviceEventKind.DEVICE_ERROR,
                                      "IntelliVue aborted the association; associating again"))
            self._associate()
        elif msg.kind == SI_RELEASE_REQUEST and self._phase is not Phase.IDLE:
            self._send_message(build_release_response())
            events.append(DeviceEvent(DeviceEventKind.DEVICE_ERROR,
                                      f"IntelliVue ended the association; retrying in "
                                      f"{RETRY_S:g} s"))
            self._set_phase(Phase.RELEASED)
        elif msg.kind == SI_RELEASE_RESPONSE:
            pass  # the answer to our closing(): nothing left to do

    def _on_event_report(self, report: EventReport) -> None:
        """Answer a confirmed report; the MDS Create event also starts the polling."""
        if report.confirmed:
            self._send_message(build_mds_create_result(
                report.invoke_id, report.managed_object, report.event_time, report.event_type))
        if report.event_type != NOM_NOTI_MDS_CREAT:
            return
        attrs = dict(report.attributes)
        t_abs = decode_abs_time(attrs.get(NOM_ATTR_TIME_ABS, b""))
        rel = attrs.get(NOM_ATTR_TIME_REL)
        if t_abs is not None:
            rel0 = int.from_bytes(rel, "big") if rel and len(rel) == 4 else report.event_time
            self._anchor = (t_abs, rel0)
        self.associations += 1
        self._refusal_reported = False
        self._set_phase(Phase.POLLING)
        self._keepalive_at = self._now
        self._poll()

    # -- numerics -------------------------------------------------------------------------------
    def _reply_time(self, rel_time: int, abs_time: bytes) -> datetime | None:
        t = decode_abs_time(abs_time)
        if t is None and self._anchor is not None:
            t0, rel0 = self._anchor
            t = t0 + ticks_to_timedelta((rel_time - rel0) & 0xFFFFFFFF)
        return t

    def _on_poll_reply(self, rel_time: int, abs_time: bytes,
                       objects: Sequence[tuple[int, int, Attributes]], events: list[Event]
                       ) -> None:
        """A poll result's numerics: ``objects`` are (context id, handle, attributes)."""
        found: dict[int, Assessment] = {}  # by physio id: one value per vital per reply
        nibp_stamp: bytes | None = None
        states, valid = 0, False  # the MeasurementState bits of the valid values
        assessed = self._assessed
        nibp_seen = False
        for _context, _handle, attributes in objects:
            nibp_here, stamp = False, None
            for attr_id, value in attributes:
                seen = assessed.get(attr_id)
                if seen is None:  # not a numeric
                    if attr_id == NOM_ATTR_TIME_STAMP_ABS:
                        stamp = value  # the object's last one, as dict(attributes) would keep
                    continue
                observations = seen.get(value)
                if observations is None:
                    observations = self._assess(attr_id, value)
                for obs in observations:
                    physio = obs.physio_id
                    if physio not in found:
                        found[physio] = obs
                        nibp_here = nibp_here or physio in _NIBP_IDS
                        if obs.status == VALID:
                            states |= obs.state
                            valid = True
            if nibp_here:  # the time stamp of the NIBP object, if it has one
                nibp_seen = True
                if stamp is not None:
                    nibp_stamp = stamp
        t_device = self._reply_time(rel_time, abs_time)
        if t_device is not None:
            self._last_device_t = t_device
            if self._poll_device_start is None:
                self._poll_device_start = t_device
        if valid:
            self._report_mode(states, t_device, events)
        reported = self._status
        for physio in _REPORTED:
            obs = found.get(physio)
            if obs is not None:
                if obs.status != reported.get(physio):
                    self._report_status(physio, obs.vital, obs.status, t_device, events)
                if obs.value is not None and physio not in _NIBP_IDS:
                    events.append(Reading(obs.vital, obs.value, obs.quality, t_device))
        if nibp_seen:
            self._decode_nibp(found, nibp_stamp, t_device, events)

    def _assess(self, attr_id: int, value: bytes) -> tuple[Assessment, ...]:
        """Judge a numeric attribute's observations (raises MessageError) and remember them."""
        judged = (assess(obs) for obs in parse_numerics(attr_id, value))
        observations = tuple(obs for obs in judged if obs is not None)
        seen = self._assessed[attr_id]
        if len(seen) >= ASSESSED_MAX:
            seen.clear()
        seen[value] = observations
        return observations

    def _report_status(self, physio: int, vital: Vital, status: str, t: datetime | None,
                       events: list[Event]) -> None:
        previous = self._status.get(physio)
        if status != previous and not (previous is None and status == VALID):
            events.append(DeviceEvent(DeviceEventKind.PARAMETER_STATUS, detail=status,
                                      vital=vital, t_device=t))
        self._status[physio] = status

    def _report_mode(self, states: int, t: datetime | None, events: list[Event]) -> None:
        """One device error when DEMO or TEST data starts; again only after real data.

        ``states``: the MeasurementState bits of this reply's valid values (there are some).
        """
        mode = "demo" if states & DEMO_DATA else "test" if states & TEST_DATA else None
        if mode is not None and mode != self._mode_reported:
            text = DEMO_MESSAGE if mode == "demo" else TEST_MESSAGE
            events.append(DeviceEvent(DeviceEventKind.DEVICE_ERROR, text, t_device=t))
        self._mode_reported = mode

    def _decode_nibp(self, found: dict[int, Assessment], stamp: bytes | None,
                     t: datetime | None, events: list[Event]) -> None:
        """Emit NIBP once per measurement: new values, or the same values with a new time stamp.

        The monitor repeats the last measurement in every poll result (as the S/5 does); the
        NIBP object's own ``NOM_ATTR_TIME_STAMP_ABS`` tells two equal measurements apart.
        """
        sys_, dia, mean = parts = found.get(_SYS), found.get(_DIA), found.get(_MEAN)
        key = (sys_ and sys_.measurement, dia and dia.measurement, mean and mean.measurement,
               stamp)
        if key == self._last_nibp or not any(obs and obs.status == VALID for obs in parts):
            return
        self._last_nibp = key
        for obs in parts:
            if obs is not None and obs.value is not None:
                events.append(Reading(obs.vital, obs.value, obs.quality, t_device=t))


def decode_capture(data: bytes) -> CodecResult:
    """Decode a whole raw capture with a fresh codec (for ``infusion-monitor import``)."""
    codec = IntelliVueCodec()
    events = codec.receive_data(data)
    return CodecResult(events=events, stats=codec.stats)
