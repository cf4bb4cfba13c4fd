"""Philips IntelliVue data export: the remote operations (events, polls, poll results).

Both sides of the wire are described here, so the app's codec and the simulator share one
description of it. Structures and constants after the public implementations (facts, not code):
mindleaving/patient-monitor-datalogger (``CommandMessageCreator``), xeonfusion/VSCaptureMP
(``DataConstants``: the MDS create result and poll request bytes, reproduced exactly by the
encoders here) and part-cw/LNhealth ``modules/ivueparser`` (``ro_confirmedaction.scm``).

A message is ``SPpdu`` (``E1 00 00 02``), ``ROapdus`` {ro_type, length}, then an invoke/result
header {invoke_id, command_type, length} and the command. All fields big-endian.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

from infusion_monitor.devices.intellivue_frames import (
    Attributes,
    Cursor,
    MessageError,
    attribute_list,
    parse_attribute_list,
)

SPDU = bytes.fromhex("e1000002")  # session id 0xE100, presentation context 2
RO_INVOKE, RO_RESULT, RO_ERROR, RO_LINKED_RESULT = 1, 2, 3, 5
CMD_EVENT_REPORT, CMD_CONFIRMED_EVENT_REPORT, CMD_CONFIRMED_ACTION = 0, 1, 7
NOM_MOC_VMO_METRIC_NU = 6
NOM_MOC_VMS_MDS = 33
NOM_MOC_VMO_AL_MON = 54
NOM_PART_OBJ = 1
NOM_NOTI_MDS_CREAT = 0x0D06
NOM_ACT_POLL_MDIB_DATA = 0x0C16
NOM_ACT_POLL_MDIB_DATA_EXT = 0xF13B
NOM_ATTR_TIME_PD_POLL = 0xF13E
NOM_ATTR_GRP_METRIC_VAL_OBS = 0x0803
NOM_ATTR_GRP_VMO_STATIC = 0x0811
NOM_ATTR_NU_CMPD_VAL_OBS = 0x094B
NOM_ATTR_NU_VAL_OBS = 0x0950
NOM_ATTR_TIME_ABS = 0x0987
NOM_ATTR_TIME_REL = 0x098F
NOM_ATTR_TIME_STAMP_ABS = 0x0990
POLL_ACTIONS = (NOM_ACT_POLL_MDIB_DATA, NOM_ACT_POLL_MDIB_DATA_EXT)
NU_OBS_SIZE = 10
#: Attribute lists ``scan_poll_reply`` remembers at most (then it starts afresh).
KNOWN_MAX = 1024

_HH = struct.Struct(">HH").unpack_from
_HHH = struct.Struct(">HHH").unpack_from
_HHHH = struct.Struct(">HHHH").unpack_from
_HHHHH = struct.Struct(">HHHHH").unpack_from
_HI = struct.Struct(">HI").unpack_from
_HHI = struct.Struct(">HHI").unpack_from
#: NuObsValue: physio id, MeasurementState, unit code, FLOAT.
NU_OBS = struct.Struct(">HHHI")
_NU_OBS = NU_OBS.unpack_from


def _data(ro_type: int, body: bytes) -> bytes:
    return SPDU + struct.pack(">HH", ro_type, len(body)) + body


def _operation(ro_type: int, invoke_id: int, command: int, body: bytes) -> bytes:
    return _data(ro_type, struct.pack(">HHH", invoke_id & 0xFFFF, command, len(body)) + body)


def _mds() -> bytes:
    return struct.pack(">HHH", NOM_MOC_VMS_MDS, 0, 0)


def build_mds_create_event(invoke_id: int, event_time: int, attrs: Sequence[tuple[int, bytes]]
                           ) -> bytes:
    """The monitor's confirmed MDS Create event report, with the MDS attributes given."""
    info = _mds() + attribute_list(attrs)
    arg = _mds() + struct.pack(">IHH", event_time & 0xFFFFFFFF, NOM_NOTI_MDS_CREAT, len(info))
    return _operation(RO_INVOKE, invoke_id, CMD_CONFIRMED_EVENT_REPORT, arg + info)


def build_mds_create_result(invoke_id: int, managed_object: ManagedObject, current_time: int,
                            event_type: int = NOM_NOTI_MDS_CREAT) -> bytes:
    """The client's answer to the MDS Create event (or any confirmed event report): the same
    invoke id, object and event type, no attributes."""
    mo = managed_object
    body = struct.pack(">HHHIHH", mo.obj_class, mo.context, mo.handle,
                       current_time & 0xFFFFFFFF, event_type, 0)
    return _operation(RO_RESULT, invoke_id, CMD_CONFIRMED_EVENT_REPORT, body)


def build_poll_request(invoke_id: int, poll_number: int, obj_class: int, attr_group: int,
                       *, extended: bool = False, period_ticks: int | None = None) -> bytes:
    """A single (0x0C16) or extended (0xF13B) poll; an extended one may carry a period."""
    req = struct.pack(">HHHH", poll_number & 0xFFFF, NOM_PART_OBJ, obj_class, attr_group)
    if extended:
        attrs = [] if period_ticks is None else [(NOM_ATTR_TIME_PD_POLL,
                                                  struct.pack(">I", period_ticks))]
        req += attribute_list(attrs)
    action = NOM_ACT_POLL_MDIB_DATA_EXT if extended else NOM_ACT_POLL_MDIB_DATA
    arg = _mds() + struct.pack(">IHH", 0, action, len(req)) + req
    return _operation(RO_INVOKE, invoke_id, CMD_CONFIRMED_ACTION, arg)


def nu_observation(physio_id: int, state: int, unit: int, word: int) -> bytes:
    """NuObsValue: physio id, MeasurementState, unit code, FLOAT (10 bytes)."""
    return NU_OBS.pack(physio_id, state, unit, word)


def nu_compound(observations: Sequence[bytes]) -> bytes:
    """NuObsValueCmp: count, length, then the 10-byte NuObsValues (NIBP sys, dia, mean)."""
    body = b"".join(observations)
    return struct.pack(">HH", len(observations), len(body)) + body


def build_poll_reply(invoke_id: int, poll_number: int, rel_time: int, abs_time: bytes,
                     obj_class: int, attr_group: int,
                     objects: Sequence[tuple[int, Sequence[tuple[int, bytes]]]],
                     *, extended: bool = True, sequence_no: int = 0) -> bytes:
    """The monitor's poll result: one context holding ``(handle, attributes)`` objects."""
    polls = b"".join(struct.pack(">H", h) + attribute_list(a) for h, a in objects)
    context = struct.pack(">HHH", 0, len(objects), len(polls)) + polls
    reply = struct.pack(">H", poll_number & 0xFFFF)
    if extended:
        reply += struct.pack(">H", sequence_no & 0xFFFF)
    reply += struct.pack(">I", rel_time & 0xFFFFFFFF) + abs_time
    reply += struct.pack(">HHH", NOM_PART_OBJ, obj_class, attr_group)
    reply += struct.pack(">HH", 1, len(context)) + context
    action = NOM_ACT_POLL_MDIB_DATA_EXT if extended else NOM_ACT_POLL_MDIB_DATA
    body = _mds() + struct.pack(">HH", action, len(reply)) + reply
    return _operation(RO_RESULT, invoke_id, CMD_CONFIRMED_ACTION, body)


@dataclass(frozen=True, slots=True)
class ManagedObject:
    obj_class: int
    context: int = 0
    handle: int = 0


@dataclass(frozen=True, slots=True)
class EventReport:
    """An event report from the monitor (the MDS Create event carries the MDS attributes)."""

    invoke_id: int
    confirmed: bool
    managed_object: ManagedObject
    event_time: int
    event_type: int
    attributes: Attributes


@dataclass(frozen=True, slots=True)
class EventReportResult:
    invoke_id: int
    event_type: int


@dataclass(frozen=True, slots=True)
class PollRequest:
    invoke_id: int
    action_type: int
    poll_number: int
    obj_class: int
    attr_group: int
    period_ticks: int | None = None


@dataclass(frozen=True, slots=True)
class ObservationPoll:
    context_id: int
    handle: int
    attributes: Attributes


@dataclass(frozen=True, slots=True)
class PollReply:
    invoke_id: int
    action_type: int
    poll_number: int
    sequence_no: int
    rel_time: int
    abs_time: bytes
    obj_class: int
    attr_group: int
    objects: tuple[ObservationPoll, ...]


@dataclass(frozen=True, slots=True)
class RemoteError:
    invoke_id: int
    error_value: int


@dataclass(frozen=True, slots=True)
class OtherOperation:
    ro_type: int
    command: int


DataMessage = (
    EventReport | EventReportResult | PollRequest | PollReply | RemoteError | OtherOperation
)


def parse_data_message(payload: bytes) -> DataMessage:
    """Decode a data-export message; raises MessageError when a length or field is wrong."""
    scan = scan_poll_reply(payload)
    if scan is None:
        return _parse_data_message(payload)
    *head, objects = scan
    return PollReply(*head, tuple(ObservationPoll(*o) for o in objects))


#: A poll result as plain tuples: the ``PollReply`` fields in order, its objects last as
#: ``(context_id, handle, attributes)``. Cheaper to build than the dataclasses, for the codec.
PollScan = tuple[int, int, int, int, int, bytes, int, int, list[tuple[int, int, Attributes]]]


def scan_poll_reply(m: bytes, known: dict[bytes, Attributes] | None = None) -> PollScan | None:
    """A poll result, the message that comes every second, read straight off the bytes.

    None for any other message and for anything that does not fit: ``_parse_data_message``
    then decides, with its exact error. Each length is checked against the end of the structure
    that holds it, as ``Cursor.sub`` does, so both give the same result wherever this one gives
    one (tests/devices/test_intellivue.py checks that on arbitrary and mutated messages).

    ``known`` remembers attribute lists already read (up to ``KNOWN_MAX``): a monitor repeats
    most of them from one result to the next, and the same value objects hash faster.
    """
    n = len(m)
    if n < 8:
        return None
    session, _context, ro_type, ro_len = _HHHH(m, 0)
    ro_end = 8 + ro_len
    if session != 0xE100 or ro_end > n:
        return None
    if ro_type == RO_RESULT:
        p = 8
    elif ro_type == RO_LINKED_RESULT:
        p = 10  # linked id: state, count
    else:
        return None
    if p + 6 > ro_end:
        return None
    invoke_id, command, body_len = _HHH(m, p)
    p += 6
    body_end = p + body_len
    if command != CMD_CONFIRMED_ACTION or body_end > ro_end or p + 10 > body_end:
        return None
    action, reply_len = _HH(m, p + 6)  # after the managed object
    p += 10
    reply_end = p + reply_len
    if action not in POLL_ACTIONS or reply_end > body_end:
        return None
    extended = action == NOM_ACT_POLL_MDIB_DATA_EXT
    if p + (28 if extended else 26) > reply_end:
        return None
    if extended:
        poll_number, sequence_no, rel_time = _HHI(m, p)
        p += 8
    else:
        (poll_number, rel_time), sequence_no = _HI(m, p), 0
        p += 6
    abs_time = m[p : p + 8]
    _partition, code, group, contexts, info_len = _HHHHH(m, p + 8)
    p += 18
    info_end = p + info_len
    if info_end > reply_end:
        return None
    objects = []
    for _ in range(contexts):
        if p + 6 > info_end:
            return None
        context_id, count, polls_len = _HHH(m, p)
        p += 6
        polls_end = p + polls_len
        if polls_end > info_end:
            return None
        for _ in range(count):
            if p + 6 > polls_end:
                return None
            handle, attr_count, attrs_len = _HHH(m, p)
            attrs_end = p + 6 + attrs_len
            if attrs_end > polls_end:
                return None
            if known is None:
                attrs = _attributes(m, p + 6, attr_count, attrs_end)
            else:  # the attribute list as sent (count, length, attributes) is the key
                key = m[p + 2 : attrs_end]
                attrs = known.get(key)
                if attrs is None:
                    attrs = _attributes(m, p + 6, attr_count, attrs_end)
                    if len(known) >= KNOWN_MAX:
                        known.clear()
                    if attrs is not None:
                        known[key] = attrs
            if attrs is None:
                return None
            objects.append((context_id, handle, attrs))
            p = attrs_end
        p = polls_end
    return (invoke_id, action, poll_number, sequence_no, rel_time, abs_time, code, group,
            objects)


def _attributes(m: bytes, p: int, count: int, end: int) -> Attributes | None:
    """``count`` attributes {id, length, value} from ``p``, within ``end``; None if they overrun."""
    attrs = []
    while count:
        if p + 4 > end:
            return None
        attr_id, size = _HH(m, p)
        p += 4 + size
        if p > end:
            return None
        attrs.append((attr_id, m[p - size : p]))
        count -= 1
    return tuple(attrs)


def _parse_data_message(payload: bytes) -> DataMessage:
    """Any data-export message, field by field through a bounds-checked ``Cursor``."""
    c = Cursor(payload)
    if c.u16() != 0xE100:
        raise MessageError("not a data-export message (session id)")
    c.u16()  # presentation context id
    ro_type, length = c.u16(), c.u16()
    ro = c.sub(length)
    if ro_type == RO_ERROR:
        invoke_id, error = ro.u16(), ro.u16()
        return RemoteError(invoke_id, error)
    if ro_type == RO_LINKED_RESULT:
        ro.take(2)  # linked id: state, count (each part is a complete poll result)
    if ro_type not in (RO_INVOKE, RO_RESULT, RO_LINKED_RESULT):
        return OtherOperation(ro_type, -1)
    invoke_id, command = ro.u16(), ro.u16()
    body = ro.sub(ro.u16())
    if ro_type == RO_INVOKE:
        return _parse_invoke(invoke_id, command, body)
    return _parse_result(invoke_id, command, body, ro_type)


def _managed_object(c: Cursor) -> ManagedObject:
    return ManagedObject(c.u16(), c.u16(), c.u16())


def _parse_invoke(invoke_id: int, command: int, c: Cursor) -> DataMessage:
    if command in (CMD_EVENT_REPORT, CMD_CONFIRMED_EVENT_REPORT):
        mo = _managed_object(c)
        event_time, event_type = c.u32(), c.u16()
        info = c.sub(c.u16())
        attrs: Attributes = ()
        if event_type == NOM_NOTI_MDS_CREAT:
            _managed_object(info)
            attrs = parse_attribute_list(info)
        return EventReport(invoke_id, command == CMD_CONFIRMED_EVENT_REPORT, mo, event_time,
                           event_type, attrs)
    if command == CMD_CONFIRMED_ACTION:
        _managed_object(c)
        c.u32()  # scope
        action = c.u16()
        arg = c.sub(c.u16())
        if action in POLL_ACTIONS:
            poll_number, _partition, code, group = arg.u16(), arg.u16(), arg.u16(), arg.u16()
            period = None
            if action == NOM_ACT_POLL_MDIB_DATA_EXT:
                raw = dict(parse_attribute_list(arg)).get(NOM_ATTR_TIME_PD_POLL)
                period = Cursor(raw).u32() if raw is not None else None
            return PollRequest(invoke_id, action, poll_number, code, group, period)
    return OtherOperation(RO_INVOKE, command)


def _parse_result(invoke_id: int, command: int, c: Cursor, ro_type: int) -> DataMessage:
    if command == CMD_CONFIRMED_EVENT_REPORT:
        _managed_object(c)
        c.u32()  # current time
        return EventReportResult(invoke_id, c.u16())
    if command == CMD_CONFIRMED_ACTION:
        _managed_object(c)
        action = c.u16()
        reply = c.sub(c.u16())
        if action in POLL_ACTIONS:
            return _parse_poll_reply(invoke_id, action, reply)
    return OtherOperation(ro_type, command)


def _parse_poll_reply(invoke_id: int, action: int, c: Cursor) -> PollReply:
    poll_number = c.u16()
    sequence_no = c.u16() if action == NOM_ACT_POLL_MDIB_DATA_EXT else 0
    rel_time, abs_time = c.u32(), c.take(8)
    _partition, code, group = c.u16(), c.u16(), c.u16()
    contexts, length = c.u16(), c.u16()
    info = c.sub(length)
    objects = []
    for _ in range(contexts):
        context_id, count = info.u16(), info.u16()
        polls = info.sub(info.u16())
        for _ in range(count):
            handle = polls.u16()
            objects.append(ObservationPoll(context_id, handle, parse_attribute_list(polls)))
    return PollReply(invoke_id, action, poll_number, sequence_no, rel_time, abs_time, code,
                     group, tuple(objects))


@dataclass(frozen=True, slots=True)
class NuObservation:
    physio_id: int
    state: int
    unit: int
    word: int  # the FLOAT, undecoded


def parse_numerics(attr_id: int, value: bytes) -> list[NuObservation]:
    """The NuObsValue(s) in a NU_VAL_OBS or compound NU_CMPD_VAL_OBS attribute."""
    if attr_id == NOM_ATTR_NU_VAL_OBS:
        if len(value) >= NU_OBS_SIZE:
            return [NuObservation(*_NU_OBS(value))]
    elif attr_id == NOM_ATTR_NU_CMPD_VAL_OBS:
        if len(value) >= 4:
            count, length = _HH(value)
            if count * NU_OBS_SIZE <= length <= len(value) - 4:
                return [NuObservation(*_NU_OBS(value, i))
                        for i in range(4, 4 + count * NU_OBS_SIZE, NU_OBS_SIZE)]
    else:
        return []
    return _parse_numerics(attr_id, value)  # too short: raises its exact MessageError


def _parse_numerics(attr_id: int, value: bytes) -> list[NuObservation]:
    c = Cursor(value)
    if attr_id == NOM_ATTR_NU_VAL_OBS:
        count = 1
    elif attr_id == NOM_ATTR_NU_CMPD_VAL_OBS:
        count = c.u16()
        c = c.sub(c.u16())
    else:
        return []
    return [NuObservation(c.u16(), c.u16(), c.u16(), c.u32()) for _ in range(count)]

