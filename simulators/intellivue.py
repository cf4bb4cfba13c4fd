"""A simulated Philips IntelliVue on MIB/RS232: association, MDS Create event, poll results.

Frames are built with the app's own encoders (``infusion_monitor.devices.intellivue_*``), so both
sides of the wire share one description of it. Like a real monitor it sends nothing until a
client associates. It accepts a well-formed Association Request (a malformed one, or any one with
``refuse=True``, is refused), sends the MDS Create event and waits for its result. Then:

- an extended numerics poll with ``NOM_ATTR_TIME_PD_POLL`` gets a poll result every whole
  simulated second until its period ends (a new one replaces the running one);
- a single numerics poll, or an extended one without a period, gets one result at once;
- a poll of any other object (the client's keep-alive) gets an empty poll result.

Any valid message from the client is a keep-alive. After ``keepalive_timeout_s`` (120 s) without
one the monitor drops the association and stops sending; the client must associate again (OpenICE
issue 128: a real monitor stops after "a few minutes" without keep-alives).

File output (``start_unsolicited``) sends the numerics results from ``t`` without an association,
as if a client had polled all along: it is a capture of what the monitor sends, not a session.
"""

from __future__ import annotations

import enum
import math
from datetime import UTC, datetime

from infusion_monitor.devices.intellivue import (
    DEMO_DATA,
    INVALID,
    NOM_DIM_BEAT_PER_MIN,
    NOM_DIM_MMHG,
    NOM_DIM_PERCENT,
    NOM_ECG_CARD_BEAT_RATE,
    NOM_PLETH_PULS_RATE,
    NOM_PRESS_BLD_NONINV_DIA,
    NOM_PRESS_BLD_NONINV_MEAN,
    NOM_PRESS_BLD_NONINV_SYS,
    NOM_PULS_OXIM_SAT_O2,
)
from infusion_monitor.devices.intellivue_association import (
    SI_ABORT,
    SI_ASSOC_REQUEST,
    SI_DATA,
    SI_RELEASE_REQUEST,
    SYST_SERVER,
    UserInfo,
    association_request_problem,
    build_association_accept,
    build_refuse,
    build_release_response,
    parse_association,
)
from infusion_monitor.devices.intellivue_frames import (
    FLOAT_NAN,
    INVALID_ABS_TIME,
    TICKS_PER_S,
    Deframer,
    MessageError,
    check_frame,
    encode_abs_time,
    encode_float,
    encode_frame,
    float_word,
)
from infusion_monitor.devices.intellivue_messages import (
    NOM_ACT_POLL_MDIB_DATA_EXT,
    NOM_ATTR_GRP_METRIC_VAL_OBS,
    NOM_ATTR_NU_CMPD_VAL_OBS,
    NOM_ATTR_NU_VAL_OBS,
    NOM_ATTR_TIME_ABS,
    NOM_ATTR_TIME_REL,
    NOM_ATTR_TIME_STAMP_ABS,
    NOM_MOC_VMO_METRIC_NU,
    NOM_NOTI_MDS_CREAT,
    EventReportResult,
    PollRequest,
    build_mds_create_event,
    build_poll_reply,
    nu_compound,
    nu_observation,
    parse_data_message,
)
from simulators.output import Frame
from simulators.patient import NIBP_TAKES, PatientModel, Sample

#: Silence from the client after which the monitor drops the association (simulated s).
KEEPALIVE_TIMEOUT_S = 120.0
#: The monitor's minimum poll period, announced in its Accept (1 s, in 1/8 ms ticks).
MIN_POLL_TICKS = TICKS_PER_S


class State(enum.Enum):
    IDLE = "idle"  # waiting for an Association Request
    AWAIT_RESULT = "awaiting the MDS Create result"
    ASSOCIATED = "associated"


def _hundredths(t: float) -> float:
    """The monitor's clock has 1/100 s resolution (AbsoluteTime)."""
    return math.floor(t * 100) / 100


class IntelliVueStream:
    """One simulated IntelliVue MIB port: the monitor side of the conversation (sans-I/O)."""

    protocol = "intellivue"

    def __init__(
        self,
        model: PatientModel,
        start_epoch: int,
        *,
        refuse: bool = False,
        demo: bool = False,
        abs_time_in_polls: bool = True,
        keepalive_timeout_s: float = KEEPALIVE_TIMEOUT_S,
    ) -> None:
        self.model = model
        self.start_epoch = start_epoch
        self.refuse = refuse
        self.demo = demo
        self.abs_time_in_polls = abs_time_in_polls
        self.keepalive_timeout_s = keepalive_timeout_s
        self.state = State.IDLE
        #: (simulated time, what) for every valid message received, for tests and logs.
        self.received: list[tuple[float, str]] = []
        self._deframer = Deframer()
        self._queue: list[Frame] = []
        self._next: float | None = None  # next periodic result
        self._until = 0.0  # the periodic poll's end
        self._poll = (0, 0, NOM_ATTR_GRP_METRIC_VAL_OBS)  # invoke id, poll number, group
        self._sequence = 0
        self._invoke_id = 0
        self._heard_at: float | None = None
        self._unsolicited = False
        self._last_nibp: tuple[int, int, int, int] | None = None  # what the client last got

    # -- MonitorStream ----------------------------------------------------------------------------
    def connection_made(self) -> None:
        """A new reader, or the cable back in: no association any more."""
        self._deframer.reset()
        self._drop()
        self._queue.clear()
        self._unsolicited = False

    def start_unsolicited(self, t: float) -> None:
        """Send the numerics every second from ``t`` with no association (file output)."""
        self._unsolicited = True
        self.state = State.ASSOCIATED
        self._next = math.ceil(t)
        self._until = math.inf

    def receive_data(self, data: bytes, t: float) -> None:
        self._expire(t)
        for raw, _reason in self._deframer.feed(bytes(data)):
            payload = check_frame(raw)[0] if raw is not None else None
            if not payload:
                continue  # a real monitor ignores a broken frame
            self._heard_at = t
            self._on_message(payload, t)

    def next_due(self) -> float | None:
        due = [f.t for f in self._queue]
        if self._next is not None:
            due.append(self._next)
        return min(due) if due else None

    def frames_until(self, t: float) -> list[Frame]:
        frames = [f for f in self._queue if f.t <= t]
        self._queue = [f for f in self._queue if f.t > t]
        while self._next is not None and self._next <= t:
            s = self._next
            if not self._unsolicited and self._silent_at(s):
                self.received.append((s, "keep-alive timeout: association dropped"))
                self._drop()
                break
            if s > self._until:
                self._next = None
                break
            frames.append(self._numerics(s, periodic=True))
            self._next = s + 1
        return sorted(frames, key=lambda f: f.t)

    # -- the session ------------------------------------------------------------------------------
    def _silent_at(self, t: float) -> bool:
        return self._heard_at is not None and t - self._heard_at > self.keepalive_timeout_s

    def _expire(self, t: float) -> None:
        """No keep-alive for too long: the association is gone before this message counts."""
        if self.state is not State.IDLE and not self._unsolicited and self._silent_at(t):
            self.received.append((t, "keep-alive timeout: association dropped"))
            self._drop()

    def _drop(self) -> None:
        self.state = State.IDLE
        self._next = None
        self._heard_at = None

    def _reply(self, t: float, data: bytes) -> None:
        self._queue.append(Frame(t=t, r_time=None, data=encode_frame(data),
                                 sample=self.model.sample(t), values={}))

    def _on_message(self, payload: bytes, t: float) -> None:
        if payload[0] == SI_DATA:
            try:
                message = parse_data_message(payload)
            except MessageError:
                self.received.append((t, "malformed data message"))
                return
            self._on_data(message, t)
            return
        try:
            association = parse_association(payload)
        except MessageError as exc:
            association, problem = None, str(exc)
        else:
            problem = association_request_problem(association)
        kind = payload[0] if association is None else association.kind
        if kind == SI_ASSOC_REQUEST:
            self._on_association_request(problem, t)
        elif kind == SI_RELEASE_REQUEST:
            self.received.append((t, "release request"))
            self._reply(t, build_release_response())
            self._drop()
        elif kind == SI_ABORT:
            self.received.append((t, "abort"))
            self._drop()

    def _on_association_request(self, problem: str, t: float) -> None:
        self.received.append((t, f"association request{': ' + problem if problem else ''}"))
        if self.refuse or problem:
            self._reply(t, build_refuse(0))
            self._drop()
            return
        self._drop()
        self._heard_at = t
        self.state = State.AWAIT_RESULT
        info = UserInfo(system_type=SYST_SERVER, min_poll_ticks=MIN_POLL_TICKS)
        self._reply(t, build_association_accept(info))
        tq = _hundredths(t)
        self._invoke_id = (self._invoke_id + 1) & 0xFFFF
        self._reply(t, build_mds_create_event(self._invoke_id, self._ticks(tq), [
            (NOM_ATTR_TIME_ABS, encode_abs_time(self._time(tq))),
            (NOM_ATTR_TIME_REL, self._ticks(tq).to_bytes(4, "big")),
        ]))

    def _on_data(self, message: object, t: float) -> None:
        if isinstance(message, EventReportResult):
            self.received.append((t, "MDS create result"))
            if self.state is State.AWAIT_RESULT and message.event_type == NOM_NOTI_MDS_CREAT:
                self.state = State.ASSOCIATED
        elif isinstance(message, PollRequest):
            self.received.append((t, f"poll of object class {message.obj_class}"))
            if self.state is State.ASSOCIATED:
                self._on_poll(message, t)

    def _on_poll(self, poll: PollRequest, t: float) -> None:
        extended = poll.action_type == NOM_ACT_POLL_MDIB_DATA_EXT
        if poll.obj_class != NOM_MOC_VMO_METRIC_NU:
            tq = _hundredths(t)
            self._reply(t, build_poll_reply(
                poll.invoke_id, poll.poll_number, self._ticks(tq), self._abs(tq),
                poll.obj_class, poll.attr_group, [], extended=extended))
        elif extended and poll.period_ticks:
            self._poll = (poll.invoke_id, poll.poll_number, poll.attr_group)
            self._until = t + poll.period_ticks / TICKS_PER_S
            if self._next is None:
                self._next = math.ceil(t)
        else:
            self._queue.append(self._numerics(_hundredths(t), periodic=False, poll=poll))

    # -- poll results -----------------------------------------------------------------------------
    def _time(self, t: float) -> datetime:
        return datetime.fromtimestamp(self.start_epoch + t, UTC)

    def _ticks(self, t: float) -> int:
        return round(t * TICKS_PER_S) & 0xFFFFFFFF

    def _abs(self, t: float) -> bytes:
        return encode_abs_time(self._time(t)) if self.abs_time_in_polls else INVALID_ABS_TIME

    def _numerics(self, t: float, *, periodic: bool, poll: PollRequest | None = None) -> Frame:
        """The poll result for simulated time ``t``, with what a correct decoder yields."""
        sample = self.model.sample(t)
        objects, values = self._observations(sample)
        if poll is None:
            invoke_id, number, group = self._poll
            extended, sequence = True, self._sequence
            self._sequence = (self._sequence + 1) & 0xFFFF
        else:
            invoke_id, number, group = poll.invoke_id, poll.poll_number, poll.attr_group
            extended, sequence = poll.action_type == NOM_ACT_POLL_MDIB_DATA_EXT, 0
        data = build_poll_reply(invoke_id, number, self._ticks(t), self._abs(t),
                                NOM_MOC_VMO_METRIC_NU, group, objects, extended=extended,
                                sequence_no=sequence)
        return Frame(t=t, r_time=self.start_epoch + t, data=encode_frame(data), sample=sample,
                     values=values)

    def _nu(self, physio: int, unit: int, value: float | None) -> bytes:
        if value is None:  # probe off: the monitor marks the value invalid
            return nu_observation(physio, INVALID, unit, float_word(FLOAT_NAN))
        return nu_observation(physio, DEMO_DATA if self.demo else 0, unit, encode_float(value))

    def _observations(self, sample: Sample) -> tuple[list, dict[str, float | None]]:
        """The numeric objects the monitor shows, and the values a decoder must yield.

        NIBP is the last finished measurement, repeated in every result with its time stamp,
        and counted as a value only the first time the client gets it (as the codec reports it).
        """
        objects = [
            (1, [(NOM_ATTR_NU_VAL_OBS, self._nu(NOM_ECG_CARD_BEAT_RATE, NOM_DIM_BEAT_PER_MIN,
                                                sample.hr))]),
            (2, [(NOM_ATTR_NU_VAL_OBS, self._nu(NOM_PLETH_PULS_RATE, NOM_DIM_BEAT_PER_MIN,
                                                sample.pr))]),
            (3, [(NOM_ATTR_NU_VAL_OBS, self._nu(NOM_PULS_OXIM_SAT_O2, NOM_DIM_PERCENT,
                                                sample.spo2))]),
        ]
        values: dict[str, float | None] = {"hr": sample.hr, "pr": sample.pr, "spo2": sample.spo2}
        nibp = sample.nibp
        if nibp is not None:
            shown_at = self._time(nibp.started + NIBP_TAKES)
            compound = nu_compound([
                self._nu(NOM_PRESS_BLD_NONINV_SYS, NOM_DIM_MMHG, nibp.sys),
                self._nu(NOM_PRESS_BLD_NONINV_DIA, NOM_DIM_MMHG, nibp.dia),
                self._nu(NOM_PRESS_BLD_NONINV_MEAN, NOM_DIM_MMHG, nibp.mean),
            ])
            objects.append((4, [(NOM_ATTR_NU_CMPD_VAL_OBS, compound),
                                (NOM_ATTR_TIME_STAMP_ABS, encode_abs_time(shown_at))]))
            key = (nibp.sys, nibp.dia, nibp.mean, nibp.started)
            if key != self._last_nibp:
                values.update(nibp_sys=nibp.sys, nibp_dia=nibp.dia, nibp_mean=nibp.mean)
                self._last_nibp = key
        return objects, values
