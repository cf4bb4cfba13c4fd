"""Philips IntelliVue codec: byte-exact frames from public facts, the session, numerics, fuzzing."""

from __future__ import annotations

import itertools
import socket
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infusion_monitor.clock import ManualClock
from infusion_monitor.devices import intellivue, intellivue_messages
from infusion_monitor.devices.base import DeviceEvent, DeviceEventKind
from infusion_monitor.devices.intellivue import (
    CALIBRATION,
    DEMO_DATA,
    DEMO_MESSAGE,
    INVALID,
    KEEP_ALIVE_S,
    NOM_DIM_BEAT_PER_MIN,
    NOM_DIM_MMHG,
    NOM_DIM_PERCENT,
    NOM_ECG_CARD_BEAT_RATE,
    NOM_PLETH_PULS_RATE,
    NOM_PRESS_BLD_NONINV_DIA,
    NOM_PRESS_BLD_NONINV_MEAN,
    NOM_PRESS_BLD_NONINV_SYS,
    NOM_PULS_OXIM_SAT_O2,
    POLL_RENEW_S,
    QUESTIONABLE,
    RETRY_S,
    SILENCE_S,
    TEST_DATA,
    UNAVAILABLE,
    IntelliVueCodec,
    Phase,
)
from infusion_monitor.devices.intellivue_association import (
    SYST_SERVER,
    UserInfo,
    build_abort,
    build_association_accept,
    build_association_request,
    build_refuse,
    build_release_request,
    build_release_response,
)
from infusion_monitor.devices.intellivue_frames import (
    FLOAT_NAN,
    FLOAT_NEG_INF,
    FLOAT_NRES,
    FLOAT_POS_INF,
    GOOD_FCS,
    INVALID_ABS_TIME,
    Deframer,
    MessageError,
    check_frame,
    decode_abs_time,
    decode_float,
    encode_abs_time,
    encode_float,
    encode_frame,
    fcs16,
    float_word,
    frame_check,
    unescape,
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
    ManagedObject,
    PollReply,
    PollRequest,
    _parse_data_message,
    _parse_numerics,
    build_mds_create_event,
    build_mds_create_result,
    build_poll_reply,
    build_poll_request,
    nu_compound,
    nu_observation,
    parse_data_message,
    parse_numerics,
    scan_poll_reply,
)
from infusion_monitor.devices.link import SerialLink
from infusion_monitor.vitals import Quality, Reading, Vital

T0 = datetime(2026, 5, 4, 9, 0, 0, tzinfo=UTC)

# Public bytes (xeonfusion/VSCaptureMP DataConstants, part-cw/LNhealth ivue-request.scm).
VSCAPTURE_AARQ = bytes.fromhex(
    "0dec0508130100160102800014020002c1dc3180a0808001010000a280a003000001a48030800201"
    "01060452010001308006025101000000003080020102060c2a8648ce14020100000001013080060c"
    "2a8648ce140201000000020100000000000061803080020101a0806080a180060c2a8648ce140201"
    "00000003010000be802880060c2a8648ce1402010000000101020102814880000000400000000000"
    "00008000000020000000000000000001002c0001002880000000000003e8000009c4000003e8ffff"
    "ffff600000000001000cf00100088c0000000000000000000000000000000000000000000000"
)
VSCAPTURE_MDS_CREATE_RESULT = bytes.fromhex(
    "e10000020002001400010001000e002100000000000abd000d060000")
VSCAPTURE_POLL = bytes.fromhex(
    "e10000020001001c000000070016002100000000000000000c1600080001000100060000")
VSCAPTURE_EXT_POLL = bytes.fromhex(
    "e10000020001002800010007002200210000000000000000f13b0014000100010006000000010008"
    "f13e00040003a980")
VSCAPTURE_KEEP_ALIVE = bytes.fromhex(
    "e10000020001001c000800070016002100000000000000000c1600080007000100360811")
LNHEALTH_RELEASE = bytes.fromhex("0918c11661803080020101a08062808001" + "00" * 9)


def crc_x25(data: bytes) -> int:
    """CRC-16/X-25 computed bit by bit, independent of the codec's table."""
    crc = 0xFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return crc ^ 0xFFFF


def stuff(data: bytes) -> bytes:
    out = bytearray()
    for b in data:
        out += bytes([0x7D, b ^ 0x20]) if b in (0xC0, 0xC1, 0x7D) else bytes([b])
    return bytes(out)


def readings(events: list) -> list[Reading]:
    return [e for e in events if isinstance(e, Reading)]


def of_kind(events: list, kind: DeviceEventKind) -> list[DeviceEvent]:
    return [e for e in events if isinstance(e, DeviceEvent) and e.kind is kind]


def nu(physio: int, value: float | int | None, unit: int, state: int = 0, word: int | None = None
       ) -> bytes:
    if word is None:
        word = float_word(FLOAT_NAN) if value is None else encode_float(value)
    return nu_observation(physio, state, unit, word)


def poll_frame(objects: list, t: datetime | None = T0, rel: int = 0, seq: int = 0) -> bytes:
    abs_time = encode_abs_time(t) if t is not None else INVALID_ABS_TIME
    return encode_frame(build_poll_reply(1, 1, rel, abs_time, NOM_MOC_VMO_METRIC_NU,
                                         NOM_ATTR_GRP_METRIC_VAL_OBS, objects, sequence_no=seq))


def vitals_frame(hr=72, pr=71, spo2=97, nibp=None, t=T0, state=0, stamp=None) -> bytes:
    objects = [
        (1, [(NOM_ATTR_NU_VAL_OBS, nu(NOM_ECG_CARD_BEAT_RATE, hr, NOM_DIM_BEAT_PER_MIN, state))]),
        (2, [(NOM_ATTR_NU_VAL_OBS, nu(NOM_PLETH_PULS_RATE, pr, NOM_DIM_BEAT_PER_MIN, state))]),
        (3, [(NOM_ATTR_NU_VAL_OBS, nu(NOM_PULS_OXIM_SAT_O2, spo2, NOM_DIM_PERCENT, state))]),
    ]
    if nibp is not None:
        sys_, dia, mean = nibp
        attrs = [(NOM_ATTR_NU_CMPD_VAL_OBS, nu_compound([
            nu(NOM_PRESS_BLD_NONINV_SYS, sys_, NOM_DIM_MMHG, state),
            nu(NOM_PRESS_BLD_NONINV_DIA, dia, NOM_DIM_MMHG, state),
            nu(NOM_PRESS_BLD_NONINV_MEAN, mean, NOM_DIM_MMHG, state),
        ]))]
        if stamp is not None:
            attrs.append((NOM_ATTR_TIME_STAMP_ABS, encode_abs_time(stamp)))
        objects.append((4, attrs))
    return poll_frame(objects, t)


def mds_create_frame(invoke_id: int = 7, event_time: int = 0x1234, t: datetime = T0,
                     rel: int = 0x1234) -> bytes:
    return encode_frame(build_mds_create_event(invoke_id, event_time, [
        (NOM_ATTR_TIME_ABS, encode_abs_time(t)),
        (NOM_ATTR_TIME_REL, rel.to_bytes(4, "big")),
    ]))


def sent_messages(codec: IntelliVueCodec) -> list[bytes]:
    """The user data of every frame the codec queued (each checked)."""
    out = []
    for raw, reason in Deframer().feed(codec.data_to_send()):
        assert raw is not None, reason
        payload, reason = check_frame(raw)
        assert payload is not None, reason
        out.append(payload)
    return out


def polling_codec(t: float = 0.0) -> IntelliVueCodec:
    """A codec that has associated and answered the MDS Create event, at tick time ``t``."""
    codec = IntelliVueCodec()
    codec.connection_made()
    codec.tick(t)
    codec.receive_data(encode_frame(build_association_accept()) + mds_create_frame())
    codec.data_to_send()
    assert codec.phase is Phase.POLLING
    return codec


# --- FLOAT, CRC, stuffing ---------------------------------------------------------------------


@pytest.mark.parametrize(("word", "value"), [
    (0xFD007D00, 32.0),  # the manual's vectors
    (0xFF000140, 32.0),
    (0x01000140, 3200.0),
    (0x00000048, 72.0),
    (0xFF0003CF, 97.5),  # exactly 97.5, not 97.50000000000001
    (0x00FFFFFF, -1.0),  # negative mantissa
    (0xFE7FFFFD, 83886.05),  # the largest mantissa that is a value
])
def test_float_vectors(word: int, value: float) -> None:
    assert decode_float(word) == (value, "")


@pytest.mark.parametrize(("mantissa", "name"), [
    (FLOAT_NAN, "NaN"), (FLOAT_NRES, "not resolvable"),
    (FLOAT_POS_INF, "+INF"), (FLOAT_NEG_INF, "-INF"),
])
@pytest.mark.parametrize("exponent", [0, -1, 2])
def test_float_specials_are_never_values(mantissa: int, name: str, exponent: int) -> None:
    assert decode_float(float_word(mantissa, exponent)) == (None, name)


@given(st.integers(-8_000_000, 8_000_000), st.integers(0, 3))
def test_float_round_trip(scaled: int, decimals: int) -> None:
    value = scaled / 10**decimals
    assert decode_float(encode_float(value))[0] == value


def test_crc_check_values() -> None:
    assert ~fcs16(b"123456789") & 0xFFFF == 0x906E  # CRC-16/X-25 check value
    assert frame_check(b"123456789") == b"\x6e\x90"  # one's complement, low byte first
    assert fcs16(b"123456789" + frame_check(b"123456789")) == GOOD_FCS == 0xF0B8


@given(st.binary(max_size=300))
def test_fcs_over_data_and_fcs_is_the_good_value(data: bytes) -> None:
    assert fcs16(data + frame_check(data)) == 0xF0B8
    assert ~fcs16(data) & 0xFFFF == crc_x25(data)


def test_escaping_of_c0_c1_7d() -> None:
    frame = encode_frame(bytes([0xC0, 0xC1, 0x7D, 0x00]))
    body = bytes([0x11, 0x01, 0x00, 0x04, 0xC0, 0xC1, 0x7D, 0x00])
    assert frame == b"\xc0" + stuff(body + crc_x25(body).to_bytes(2, "little")) + b"\xc1"
    assert frame[1:12] == bytes.fromhex("1101000 47de07de17d5d00".replace(" ", ""))
    assert frame.count(0xC0) == 1 and frame.count(0xC1) == 1
    assert Deframer().feed(frame) == [(body + crc_x25(body).to_bytes(2, "little"), "")]


def test_an_fcs_that_needs_escaping_is_escaped() -> None:
    data = next(bytes([a, b]) for a in range(256) for b in range(256)
                if set(frame_check(bytes([0x11, 1, 0, 2, a, b]))) & {0xC0, 0xC1, 0x7D})
    frame = encode_frame(data)
    assert frame.count(0xC0) == 1 and frame.count(0xC1) == 1
    (raw, _), = Deframer().feed(frame)
    assert check_frame(raw) == (data, "")


# --- byte-exact requests, after the public implementations ----------------------------------


def test_association_request_matches_vscapture() -> None:
    info = UserInfo(min_poll_ticks=0x3E8, max_mtu_rx=0x9C4, max_mtu_tx=0x3E8,
                    ext_options=0x8C000000)
    assert build_association_request(info) == VSCAPTURE_AARQ


def test_connection_made_queues_our_association_request() -> None:
    codec = IntelliVueCodec()
    codec.connection_made()
    (aarq,) = sent_messages(codec)
    assert aarq == build_association_request()
    assert aarq[:2] == b"\x0d\xec"
    profile = aarq.index(bytes.fromhex("00010028"))  # NOM_POLL_PROFILE_SUPPORT, 40 bytes
    # revision 0, min poll 1 s (8000 ticks), MTU 1000/1000 for RS232, then the NU 1-s option
    assert aarq[profile + 4: profile + 20] == bytes.fromhex("80000000 00001f40 000003e8 000003e8"
                                                            .replace(" ", ""))
    assert bytes.fromhex("f001000880000000") in aarq


def test_data_export_requests_match_vscapture() -> None:
    assert build_mds_create_result(1, ManagedObject(33), 0x000ABD00) == VSCAPTURE_MDS_CREATE_RESULT
    assert build_poll_request(0, 1, NOM_MOC_VMO_METRIC_NU, 0) == VSCAPTURE_POLL
    assert build_poll_request(1, 1, NOM_MOC_VMO_METRIC_NU, 0, extended=True,
                              period_ticks=0x3A980) == VSCAPTURE_EXT_POLL
    assert build_poll_request(8, 7, NOM_MOC_VMO_AL_MON,
                              NOM_ATTR_GRP_VMO_STATIC) == VSCAPTURE_KEEP_ALIVE
    assert build_release_request() == LNHEALTH_RELEASE


# --- framing: aborts, resync, limits -------------------------------------------------------------


def test_escape_c1_aborts_a_frame_silently() -> None:
    codec = IntelliVueCodec()
    good = vitals_frame(hr=61)
    events = codec.receive_data(good[:30] + b"\x7d\xc1" + good)
    assert [r.value for r in readings(events) if r.vital is Vital.HR] == [61]
    assert of_kind(events, DeviceEventKind.FRAME_REJECTED) == []
    assert codec.stats.frames_rejected == 0


def test_a_new_start_aborts_the_frame_in_progress() -> None:
    codec = IntelliVueCodec()
    good = vitals_frame(hr=62)
    events = codec.receive_data(good[:30] + good)
    assert [r.value for r in readings(events) if r.vital is Vital.HR] == [62]
    cut = good[1:30].replace(b"\x7d\x5d", b"}").replace(b"\x7d\xe0", b"C").replace(
        b"\x7d\xe1", b"C")  # unstuffed length of what arrived before the new start
    assert [e.detail for e in of_kind(events, DeviceEventKind.FRAME_REJECTED)] == [
        f"frame cut off by a new start ({len(cut)} bytes)"]


def test_overlong_frame_is_rejected_then_resync() -> None:
    codec = IntelliVueCodec()
    events = codec.receive_data(b"\xc0" + b"\x00" * 1001 + b"\xc1" + vitals_frame(hr=63))
    assert [e.detail for e in of_kind(events, DeviceEventKind.FRAME_REJECTED)] == [
        "frame longer than 1000 bytes"]
    assert [r.value for r in readings(events) if r.vital is Vital.HR] == [63]


def test_bad_fcs_and_bad_header_are_rejected() -> None:
    frame = bytearray(vitals_frame())
    frame[10] ^= 0x01
    body = bytes([0x12, 0x01, 0x00, 0x00])
    other = b"\xc0" + stuff(body + crc_x25(body).to_bytes(2, "little")) + b"\xc1"
    codec = IntelliVueCodec()
    events = codec.receive_data(bytes(frame) + other)
    assert readings(events) == []
    details = [e.detail for e in of_kind(events, DeviceEventKind.FRAME_REJECTED)]
    assert details[0].startswith("FCS mismatch")
    assert details[1] == "not a data-export frame (header 12 01)"


def test_valid_frame_with_nonsense_content_is_rejected_not_raised() -> None:
    codec = IntelliVueCodec()
    events = codec.receive_data(encode_frame(b"\xe1\x00\x00\x02\x00\x02\xff\xff"))
    (rejected,) = of_kind(events, DeviceEventKind.FRAME_REJECTED)
    assert rejected.detail.startswith("malformed message")
    assert codec.stats.frames_ok == 0


# --- numerics ---------------------------------------------------------------------------------


def test_hand_built_poll_result_decodes_to_exact_readings_and_qualities() -> None:
    objects = [
        (1, [(NOM_ATTR_NU_VAL_OBS, nu(NOM_ECG_CARD_BEAT_RATE, None, NOM_DIM_BEAT_PER_MIN,
                                      word=0x00000048))]),  # 72, exponent 0
        (2, [(NOM_ATTR_NU_VAL_OBS, nu(NOM_PLETH_PULS_RATE, None, NOM_DIM_BEAT_PER_MIN,
                                      QUESTIONABLE, word=0xFF0002CB))]),  # 71.5, questionable
        (3, [(NOM_ATTR_NU_VAL_OBS, nu(NOM_PULS_OXIM_SAT_O2, None, NOM_DIM_PERCENT,
                                      word=0xFD017A2C))]),  # 96.812
        (4, [(NOM_ATTR_NU_CMPD_VAL_OBS, nu_compound([
            nu(NOM_PRESS_BLD_NONINV_SYS, None, NOM_DIM_MMHG, word=0x0000007B),
            nu(NOM_PRESS_BLD_NONINV_DIA, None, NOM_DIM_MMHG, word=0x0000004F),
            nu(NOM_PRESS_BLD_NONINV_MEAN, None, NOM_DIM_MMHG, word=0x0000005D),
        ])), (NOM_ATTR_TIME_STAMP_ABS, encode_abs_time(T0 - timedelta(seconds=30)))]),
        (5, [(NOM_ATTR_NU_VAL_OBS, nu(0x5000, 12, 0x0200))]),  # an unknown numeric: ignored
    ]
    t = datetime(2026, 5, 4, 9, 0, 1, 250_000, tzinfo=UTC)
    events = IntelliVueCodec().receive_data(poll_frame(objects, t))
    assert [(r.vital, r.value, r.quality, r.t_device) for r in readings(events)] == [
        (Vital.HR, 72.0, Quality.OK, t),
        (Vital.PR, 71.5, Quality.QUESTIONABLE, t),
        (Vital.SPO2, 96.812, Quality.OK, t),
        (Vital.NIBP_SYS, 123.0, Quality.OK, t),
        (Vital.NIBP_DIA, 79.0, Quality.OK, t),
        (Vital.NIBP_MEAN, 93.0, Quality.OK, t),
    ]
    assert [r.unit for r in readings(events)] == ["/min", "/min", "%", "mmHg", "mmHg", "mmHg"]
    assert [e for e in events if not isinstance(e, Reading)] == []


def test_linked_poll_result_parts_are_decoded() -> None:
    """A long extended-poll result comes as linked results (ro_type 5, 2 more header bytes)."""
    objects = [(1, [(NOM_ATTR_NU_VAL_OBS, nu(NOM_ECG_CARD_BEAT_RATE, 64, NOM_DIM_BEAT_PER_MIN))])]
    rors = build_poll_reply(1, 1, 0, encode_abs_time(T0), NOM_MOC_VMO_METRIC_NU,
                            NOM_ATTR_GRP_METRIC_VAL_OBS, objects)
    body = b"\x01\x01" + rors[8:]  # linked id {state RORLS_FIRST, count 1}, then as a result
    linked = rors[:4] + b"\x00\x05" + len(body).to_bytes(2, "big") + body
    events = IntelliVueCodec().receive_data(encode_frame(linked))
    assert [(r.vital, r.value, r.t_device) for r in readings(events)] == [(Vital.HR, 64.0, T0)]


def test_state_bits_give_no_reading_and_one_status_event_per_change() -> None:
    codec = IntelliVueCodec()
    states = [0, INVALID, INVALID, UNAVAILABLE, CALIBRATION, 0]
    per_frame = [codec.receive_data(vitals_frame(hr=70 + i, state=s,
                                                 t=T0 + timedelta(seconds=i)))
                 for i, s in enumerate(states)]
    hr = [[r.value for r in readings(ev) if r.vital is Vital.HR] for ev in per_frame]
    assert hr == [[70], [], [], [], [], [75]]
    status = [[e.detail for e in of_kind(ev, DeviceEventKind.PARAMETER_STATUS)
               if e.vital is Vital.HR] for ev in per_frame]
    assert status == [[], ["invalid"], [], ["unavailable"], ["calibrating"], ["valid"]]


@pytest.mark.parametrize(("mantissa", "detail"), [
    (FLOAT_NAN, "no value (NaN)"), (FLOAT_NRES, "no value (not resolvable)"),
    (FLOAT_POS_INF, "no value (+INF)"), (FLOAT_NEG_INF, "no value (-INF)"),
])
def test_nan_nres_and_inf_never_become_readings(mantissa: int, detail: str) -> None:
    objects = [(1, [(NOM_ATTR_NU_VAL_OBS, nu(NOM_ECG_CARD_BEAT_RATE, None, NOM_DIM_BEAT_PER_MIN,
                                             word=float_word(mantissa)))])]
    events = IntelliVueCodec().receive_data(poll_frame(objects))
    assert readings(events) == []
    assert [(e.vital, e.detail) for e in of_kind(events, DeviceEventKind.PARAMETER_STATUS)] == [
        (Vital.HR, detail)]


def test_a_value_in_an_unexpected_unit_is_not_stored() -> None:
    kpa = 3843  # NOM_DIM_KILO_PASCAL
    objects = [
        (1, [(NOM_ATTR_NU_VAL_OBS, nu(NOM_PULS_OXIM_SAT_O2, 0.97, 512))]),  # dimensionless
        (2, [(NOM_ATTR_NU_CMPD_VAL_OBS, nu_compound([
            nu(NOM_PRESS_BLD_NONINV_SYS, 16.4, kpa), nu(NOM_PRESS_BLD_NONINV_DIA, 10.5, kpa),
            nu(NOM_PRESS_BLD_NONINV_MEAN, 12.5, kpa)]))]),
    ]
    events = IntelliVueCodec().receive_data(poll_frame(objects))
    assert readings(events) == []
    details = {e.vital: e.detail for e in of_kind(events, DeviceEventKind.PARAMETER_STATUS)}
    assert details[Vital.SPO2] == "unexpected unit code 512 (expected 544)"
    assert details[Vital.NIBP_SYS] == "unexpected unit code 3843 (expected 3872)"
    assert len(details) == 4


def test_demo_data_is_marked_and_reported_once() -> None:
    codec = IntelliVueCodec()
    first = codec.receive_data(vitals_frame(state=DEMO_DATA, nibp=(120, 80, 93)))
    assert {r.quality for r in readings(first)} == {Quality.DEMO}
    assert len(readings(first)) == 6
    assert [e.detail for e in of_kind(first, DeviceEventKind.DEVICE_ERROR)] == [DEMO_MESSAGE]
    again = codec.receive_data(vitals_frame(state=DEMO_DATA, t=T0 + timedelta(seconds=1)))
    assert of_kind(again, DeviceEventKind.DEVICE_ERROR) == []
    real = codec.receive_data(vitals_frame(t=T0 + timedelta(seconds=2)))
    assert {r.quality for r in readings(real)} == {Quality.OK}
    test = codec.receive_data(vitals_frame(state=TEST_DATA, t=T0 + timedelta(seconds=3)))
    assert {r.quality for r in readings(test)} == {Quality.DEMO}
    assert "TEST" in of_kind(test, DeviceEventKind.DEVICE_ERROR)[0].detail


def test_nibp_is_emitted_once_per_measurement() -> None:
    codec = IntelliVueCodec()
    stamp1, stamp2 = T0 - timedelta(minutes=5), T0

    def nibp(i: int, values: tuple, stamp: datetime | None) -> list[float]:
        ev = codec.receive_data(vitals_frame(nibp=values, stamp=stamp,
                                             t=T0 + timedelta(seconds=i)))
        return [r.value for r in readings(ev) if r.vital.value.startswith("nibp")]

    assert nibp(0, (120, 80, 93), stamp1) == [120, 80, 93]
    assert nibp(1, (120, 80, 93), stamp1) == []  # repeated in every result
    assert nibp(2, (120, 80, 93), stamp2) == [120, 80, 93]  # same values, new measurement
    assert nibp(3, (131, 85, 100), stamp2) == [131, 85, 100]  # new values
    codec.connection_lost()
    codec.connection_made()
    assert nibp(4, (131, 85, 100), stamp2) == []  # survives a reconnect


def test_relative_time_is_anchored_to_the_mds_create_event() -> None:
    codec = IntelliVueCodec()
    codec.connection_made()
    codec.receive_data(encode_frame(build_association_accept()))
    codec.receive_data(mds_create_frame(t=T0, rel=1_000_000))
    rel = 1_000_000 + 5 * 8000 + 4000  # 5.5 s later, in 1/8 ms ticks
    events = codec.receive_data(poll_frame(
        [(1, [(NOM_ATTR_NU_VAL_OBS, nu(NOM_ECG_CARD_BEAT_RATE, 70, NOM_DIM_BEAT_PER_MIN))])],
        t=None, rel=rel))
    assert [r.t_device for r in readings(events)] == [T0 + timedelta(seconds=5.5)]


def test_relative_time_wraps_around() -> None:
    codec = IntelliVueCodec()
    codec.receive_data(mds_create_frame(t=T0, rel=2**32 - 8000))  # 1 s before the wrap
    events = codec.receive_data(poll_frame(
        [(1, [(NOM_ATTR_NU_VAL_OBS, nu(NOM_ECG_CARD_BEAT_RATE, 70, NOM_DIM_BEAT_PER_MIN))])],
        t=None, rel=8000))
    assert [r.t_device for r in readings(events)] == [T0 + timedelta(seconds=2)]


def test_without_any_time_the_reading_has_no_device_time() -> None:
    events = IntelliVueCodec().receive_data(poll_frame(
        [(1, [(NOM_ATTR_NU_VAL_OBS, nu(NOM_ECG_CARD_BEAT_RATE, 70, NOM_DIM_BEAT_PER_MIN))])],
        t=None))
    assert [(r.value, r.t_device) for r in readings(events)] == [(70.0, None)]


# --- the session ------------------------------------------------------------------------------


def test_mds_create_event_is_answered_with_its_result_then_the_numerics_poll() -> None:
    codec = IntelliVueCodec()
    codec.connection_made()
    codec.tick(100.0)
    codec.data_to_send()
    codec.receive_data(encode_frame(build_association_accept()))
    assert codec.phase is Phase.AWAIT_MDS and codec.data_to_send() == b""
    events = codec.receive_data(mds_create_frame(invoke_id=0x0203, event_time=0xABCDEF))
    assert events == []
    result, poll = sent_messages(codec)
    assert result == build_mds_create_result(0x0203, ManagedObject(33), 0xABCDEF)
    request = parse_data_message(poll)
    assert isinstance(request, PollRequest)
    assert (request.obj_class, request.attr_group, request.period_ticks) == (
        NOM_MOC_VMO_METRIC_NU, NOM_ATTR_GRP_METRIC_VAL_OBS, 600 * 8000)
    assert codec.phase is Phase.POLLING and codec.associations == 1


def test_keep_alives_and_poll_renewal_follow_the_tick_clock() -> None:
    codec = polling_codec(t=0.0)
    sent: dict[float, list] = {}
    for i in range(1, int(POLL_RENEW_S) + 2):
        codec.receive_data(vitals_frame(t=T0 + timedelta(seconds=i)))  # the monitor talks
        codec.tick(float(i))
        msgs = [parse_data_message(m) for m in sent_messages(codec)]
        if msgs:
            sent[float(i)] = [(m.obj_class, m.period_ticks) for m in msgs]
    keep_alives = [t for t, msgs in sent.items() if (NOM_MOC_VMO_AL_MON, None) in msgs]
    assert keep_alives[:3] == [5.0, 10.0, 15.0]
    assert all(b - a == KEEP_ALIVE_S for a, b in itertools.pairwise(keep_alives))
    renewals = [t for t, msgs in sent.items() if (NOM_MOC_VMO_METRIC_NU, 600 * 8000) in msgs]
    assert renewals == [POLL_RENEW_S]


def test_the_poll_is_renewed_on_the_monitors_clock_when_it_runs_faster() -> None:
    codec = polling_codec(t=0.0)
    # The monitor's clock runs 100 times faster than the link's (a sped-up simulator).
    for i in range(1, 9):
        codec.receive_data(vitals_frame(t=T0 + timedelta(seconds=100 * i)))
        codec.tick(float(i))
        msgs = [parse_data_message(m) for m in sent_messages(codec)]
        renewed = any(m.obj_class == NOM_MOC_VMO_METRIC_NU for m in msgs)
        assert renewed == (i == 7)  # 600 s of monitor time after the first result (>= 540)


def test_the_accepts_min_poll_period_slows_the_keep_alive() -> None:
    codec = IntelliVueCodec()
    codec.connection_made()
    codec.tick(0.0)
    slow = UserInfo(system_type=SYST_SERVER, min_poll_ticks=8 * 8000)
    codec.receive_data(encode_frame(build_association_accept(slow)) + mds_create_frame())
    codec.data_to_send()
    alive = []
    for i in range(1, 20):
        codec.receive_data(vitals_frame(t=T0 + timedelta(seconds=i)))
        codec.tick(float(i))
        if sent_messages(codec):
            alive.append(i)
    assert alive == [8, 16]


def test_silence_after_the_association_starts_a_new_one() -> None:
    codec = polling_codec(t=0.0)
    codec.tick(1.0)  # the MDS Create event was heard before this tick
    codec.tick(SILENCE_S)
    assert all(m[0] != 0x0D for m in sent_messages(codec))
    codec.tick(SILENCE_S + 1.5)
    assert sent_messages(codec) == [build_association_request()]
    assert codec.phase is Phase.ASSOCIATING


def test_a_reader_that_stalled_does_not_mistake_fresh_data_for_silence() -> None:
    codec = polling_codec(t=0.0)
    codec.tick(1.0)
    codec.receive_data(vitals_frame())  # arrives after a 30-s stall of the reader thread
    codec.tick(31.0)
    assert all(m[0] != 0x0D for m in sent_messages(codec))
    assert codec.phase is Phase.POLLING


def test_unanswered_association_request_is_sent_again() -> None:
    codec = IntelliVueCodec()
    codec.connection_made()
    codec.data_to_send()
    codec.tick(0.0)
    codec.tick(RETRY_S - 0.5)
    assert codec.data_to_send() == b""
    codec.tick(RETRY_S)
    assert sent_messages(codec) == [build_association_request()]


def test_refused_association_is_a_clear_device_error_reported_once_and_retried() -> None:
    codec = IntelliVueCodec()
    codec.connection_made()
    codec.tick(0.0)
    codec.data_to_send()
    events = codec.receive_data(encode_frame(build_refuse(0)))
    (error,) = events
    assert error.kind is DeviceEventKind.DEVICE_ERROR
    assert error.detail.startswith("IntelliVue refused the association (refuse reason 0)")
    assert "check the monitor's Data Export settings" in error.detail
    assert codec.phase is Phase.REFUSED and codec.refusals == 1
    codec.tick(RETRY_S - 1)
    assert codec.data_to_send() == b""
    codec.tick(RETRY_S)
    assert sent_messages(codec) == [build_association_request()]
    assert codec.receive_data(encode_frame(build_refuse(0))) == []  # not again and again
    assert codec.refusals == 2 and readings(events) == []


def test_abort_from_the_monitor_starts_a_new_association() -> None:
    codec = polling_codec()
    events = codec.receive_data(encode_frame(build_abort()))
    assert [e.kind for e in events] == [DeviceEventKind.DEVICE_ERROR]
    assert sent_messages(codec) == [build_association_request()]


def test_release_request_from_the_monitor_is_answered() -> None:
    codec = polling_codec()
    codec.receive_data(encode_frame(build_release_request()))
    assert sent_messages(codec) == [build_release_response()]
    assert codec.phase is Phase.RELEASED


def test_closing_releases_the_association_only_when_there_is_one() -> None:
    idle = IntelliVueCodec()
    idle.closing()
    assert idle.data_to_send() == b""
    codec = polling_codec()
    codec.closing()
    assert sent_messages(codec) == [build_release_request()]
    codec.closing()
    assert codec.data_to_send() == b""


def test_link_sends_the_release_request_when_stopped() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    received = bytearray()
    connected = threading.Event()

    def peer() -> None:
        conn, _ = server.accept()
        connected.set()
        conn.settimeout(5)
        with conn:
            while chunk := conn.recv(4096):
                received.extend(chunk)
                if b"\x0d\xec" in received:  # the association request: accept it
                    del received[:]
                    conn.sendall(encode_frame(build_association_accept()) + mds_create_frame())

    thread = threading.Thread(target=peer, daemon=True)
    thread.start()
    codec = IntelliVueCodec()
    link = SerialLink(f"socket://127.0.0.1:{server.getsockname()[1]}", codec,
                      on_events=lambda events: None, clock=ManualClock())
    link.start()
    deadline = time.monotonic() + 5
    while codec.phase is not Phase.POLLING and time.monotonic() < deadline:
        time.sleep(0.01)
    assert codec.phase is Phase.POLLING
    link.stop()
    thread.join(5)
    server.close()
    assert encode_frame(build_release_request()) in bytes(received)


# --- property tests ----------------------------------------------------------------------------

value_st = st.none() | st.integers(20, 250)
state_st = st.sampled_from([0, 0, 0, INVALID, QUESTIONABLE, UNAVAILABLE, DEMO_DATA])
frame_st = st.builds(
    lambda hr, pr, spo2, nibp, state, i: vitals_frame(hr, pr, spo2, nibp,
                                                      T0 + timedelta(seconds=i), state),
    value_st, value_st, st.none() | st.integers(50, 100),
    st.none() | st.tuples(st.integers(60, 250), st.integers(30, 150), st.integers(40, 200)),
    state_st, st.integers(0, 10_000),
)


@given(st.binary(max_size=3000))
@settings(max_examples=300)
def test_any_bytes_raise_nothing(data: bytes) -> None:
    codec = polling_codec()
    codec.receive_data(data)
    codec.receive_data(b"\xc0" + data + b"\xc1")
    codec.receive_data(encode_frame(data))  # valid framing, arbitrary content
    codec.receive_data(encode_frame(b"\xe1\x00\x00\x02" + data))
    codec.tick(5.0)


@given(st.binary(max_size=500), frame_st)
def test_resync_after_garbage(garbage: bytes, frame: bytes) -> None:
    clean = readings(IntelliVueCodec().receive_data(frame))
    assert readings(IntelliVueCodec().receive_data(garbage + frame)) == clean


@given(frame_st, st.data())
def test_single_byte_mutation_gives_nothing_then_resync(frame: bytes, data) -> None:
    pos = data.draw(st.integers(1, len(frame) - 2))
    new = data.draw(st.integers(0, 255).filter(lambda b: b != frame[pos]))
    mutated = frame[:pos] + bytes([new]) + frame[pos + 1:]
    codec = IntelliVueCodec()
    events = codec.receive_data(mutated)
    assert readings(events) == [] and codec.stats.frames_ok == 0
    rejected = [DeviceEventKind.FRAME_REJECTED] * codec.stats.frames_rejected
    assert [e.kind for e in events] == rejected
    follow = vitals_frame(hr=99, t=T0 + timedelta(days=1))
    assert [r.value for r in readings(codec.receive_data(follow)) if r.vital is Vital.HR] == [99]


@given(st.lists(frame_st, min_size=1, max_size=5), st.binary(max_size=200), st.data())
def test_chunking_does_not_change_events(frames: list[bytes], garbage: bytes, data) -> None:
    stream = garbage + mds_create_frame() + b"".join(frames)
    whole = IntelliVueCodec().receive_data(stream)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=20)))
    codec = IntelliVueCodec()
    pieces: list = []
    for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        pieces += codec.receive_data(stream[a:b])
    assert pieces == whole


# --- the fast paths against simple references ----------------------------------------------------
# The codec finds frames with bytes.find, checks the FCS with binascii.crc_hqx, reads poll results
# with struct and remembers what repeats. Each must do exactly what the plain version does.


def fcs_register(data: bytes, fcs: int = 0xFFFF) -> int:
    """The PPP FCS register, bit by bit (RFC 1662 without its table)."""
    for b in data:
        fcs ^= b
        for _ in range(8):
            fcs = (fcs >> 1) ^ 0x8408 if fcs & 1 else fcs >> 1
    return fcs


def unstuff(data: bytes) -> bytes:
    """7D escapes the next byte (XOR 0x20); an escape with nothing after it is dropped."""
    out, escaped = bytearray(), False
    for b in data:
        if escaped:
            out.append(b ^ 0x20)
            escaped = False
        elif b == 0x7D:
            escaped = True
        else:
            out.append(b)
    return bytes(out)


class ByteDeframer:
    """The framing rules one byte at a time (protocols.md): the reference for ``Deframer``."""

    def __init__(self, max_frame: int = 1000) -> None:
        self.max = max_frame
        self.buf = bytearray()
        self.in_frame = self.escaped = self.overflow = False

    def reset(self) -> None:
        self.buf.clear()
        self.in_frame = self.escaped = self.overflow = False

    def add(self, b: int) -> None:
        if not self.overflow:
            self.buf.append(b)
            if len(self.buf) > self.max:
                self.overflow = True
                self.buf.clear()

    def feed(self, data: bytes) -> list[tuple[bytes | None, str]]:
        out: list[tuple[bytes | None, str]] = []
        for b in data:
            if b == 0xC0:  # a new start, even after an escape
                if self.in_frame and self.overflow:
                    out.append((None, f"frame longer than {self.max} bytes"))
                elif self.in_frame and (self.buf or self.escaped):
                    out.append((None, f"frame cut off by a new start ({len(self.buf)} bytes)"))
                self.reset()
                self.in_frame = True
            elif not self.in_frame:
                continue
            elif b == 0xC1:
                if not self.escaped:  # 7D C1 aborts silently
                    out.append((None, f"frame longer than {self.max} bytes") if self.overflow
                               else (bytes(self.buf), ""))
                self.reset()
            elif self.escaped:
                self.add(b ^ 0x20)
                self.escaped = False
            elif b == 0x7D:
                self.escaped = True
            else:
                self.add(b)
        return out


def abs_time_reference(raw: bytes) -> datetime | None:
    if len(raw) != 8 or raw == INVALID_ABS_TIME:
        return None
    digits = [(b >> 4) * 10 + (b & 0x0F) for b in raw]
    if any(b >> 4 > 9 or b & 0x0F > 9 for b in raw):
        return None
    try:
        return datetime(digits[0] * 100 + digits[1], *digits[2:7], digits[7] * 10_000, tzinfo=UTC)
    except ValueError:
        return None


def outcome(parse, *args) -> object:
    """What a parser gives: its result, or the MessageError it raises."""
    try:
        return parse(*args)
    except MessageError as exc:
        return f"MessageError: {exc}"


# Bytes that mean something to the framing, often; anything else sometimes.
wire_byte_st = st.sampled_from([0xC0, 0xC1, 0x7D, 0x5D, 0xE0, 0xE1, 0x00]) | st.integers(0, 255)
wire_st = st.lists(wire_byte_st, max_size=300).map(bytes)


@given(st.binary(max_size=600), st.integers(0, 0xFFFF))
@settings(max_examples=300)
def test_fcs_equals_the_bitwise_register(data: bytes, init: int) -> None:
    assert fcs16(data, init) == fcs_register(data, init)
    assert fcs16(bytearray(data), init) == fcs_register(data, init)


@given(st.binary(max_size=300) | wire_st)
@settings(max_examples=300)
def test_check_frame_uses_the_same_fcs(raw: bytes) -> None:
    """``check_frame`` folds the FCS check into crc_hqx; a frame passes as the register says."""
    for candidate in (raw, raw + frame_check(raw)):
        mismatch = check_frame(candidate)[1].startswith("FCS mismatch")
        assert mismatch == (len(candidate) >= 6 and fcs_register(candidate) != GOOD_FCS)


@given(wire_st)
@settings(max_examples=500)
def test_unescape_equals_the_byte_loop(data: bytes) -> None:
    assert unescape(data) == unstuff(data)
    assert unescape(bytearray(data)) == unstuff(data)


@given(st.lists(wire_byte_st, max_size=400).map(bytes), st.integers(0, 40), st.data())
@settings(max_examples=500)
def test_deframer_equals_the_byte_by_byte_rules(stream: bytes, max_frame: int, data) -> None:
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=12)))
    fast, slow = Deframer(max_frame), ByteDeframer(max_frame)
    for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        assert fast.feed(stream[a:b]) == slow.feed(stream[a:b])


@given(st.lists(frame_st | wire_st, max_size=6).map(b"".join), st.data())
@settings(max_examples=200)
def test_deframer_on_real_frames_in_any_chunks(stream: bytes, data) -> None:
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=30)))
    fast, slow = Deframer(), ByteDeframer()
    for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        assert fast.feed(stream[a:b]) == slow.feed(stream[a:b])


@given(st.binary(min_size=8, max_size=8) | st.builds(
    lambda s: encode_abs_time(T0 + timedelta(seconds=s / 100)), st.integers(-10**10, 10**10)))
@settings(max_examples=300)
def test_abs_time_equals_the_plain_decoding(raw: bytes) -> None:
    assert decode_abs_time(raw) == abs_time_reference(raw)


# Poll results with any mix of attributes, as sent, linked, or damaged anywhere.
physio_st = st.sampled_from([NOM_ECG_CARD_BEAT_RATE, NOM_PLETH_PULS_RATE, NOM_PULS_OXIM_SAT_O2,
                             NOM_PRESS_BLD_NONINV_SYS, NOM_PRESS_BLD_NONINV_DIA,
                             NOM_PRESS_BLD_NONINV_MEAN, 0x5000])
nu_st = st.builds(nu_observation, physio_st,
                  st.sampled_from([0, 0, QUESTIONABLE, DEMO_DATA, TEST_DATA, INVALID]),
                  st.sampled_from([NOM_DIM_BEAT_PER_MIN, NOM_DIM_MMHG, NOM_DIM_PERCENT, 512]),
                  st.integers(0, 250).map(encode_float) | st.integers(0, 0xFFFFFFFF))
attribute_st = st.one_of(
    st.tuples(st.just(NOM_ATTR_NU_VAL_OBS), nu_st | st.binary(max_size=14)),
    st.tuples(st.just(NOM_ATTR_NU_CMPD_VAL_OBS),
              st.lists(nu_st, max_size=4).map(nu_compound) | st.binary(max_size=40)),
    st.tuples(st.just(NOM_ATTR_TIME_STAMP_ABS), st.binary(min_size=8, max_size=8)),
    st.tuples(st.integers(0, 0xFFFF), st.binary(max_size=12)),
)
reply_st = st.builds(
    lambda rel, t, objects, extended, seq: build_poll_reply(
        3, 4, rel, t, NOM_MOC_VMO_METRIC_NU, NOM_ATTR_GRP_METRIC_VAL_OBS, objects,
        extended=extended, sequence_no=seq),
    st.integers(0, 0xFFFFFFFF), st.binary(min_size=8, max_size=8),
    st.lists(st.tuples(st.integers(0, 0xFFFF), st.lists(attribute_st, max_size=3)), max_size=5),
    st.booleans(), st.integers(0, 0xFFFF))


def as_linked(rors: bytes) -> bytes:
    body = b"\x01\x01" + rors[8:]
    return rors[:4] + b"\x00\x05" + len(body).to_bytes(2, "big") + body


@st.composite
def damaged(draw, messages: st.SearchStrategy[bytes]) -> bytes:
    msg = bytearray(draw(messages))
    for _ in range(draw(st.integers(1, 3))):
        if not msg:
            break
        pos = draw(st.integers(0, len(msg) - 1))
        action = draw(st.sampled_from(["set", "cut", "insert"]))
        if action == "set":
            msg[pos] = draw(st.integers(0, 255))
        elif action == "cut":
            del msg[pos:]
        else:
            msg.insert(pos, draw(st.integers(0, 255)))
    return bytes(msg)


message_st = st.one_of(
    reply_st, reply_st.map(as_linked), damaged(reply_st), damaged(reply_st.map(as_linked)),
    st.binary(max_size=60).map(lambda b: b"\xe1\x00\x00\x02" + b),
)


@given(message_st)
@settings(max_examples=1000)
def test_poll_result_reading_equals_the_cursor_parser(payload: bytes) -> None:
    """Same message or same MessageError; and the struct path reads every poll result."""
    reference = outcome(_parse_data_message, payload)
    assert outcome(parse_data_message, payload) == reference
    assert (scan_poll_reply(payload) is not None) == isinstance(reference, PollReply)
    known: dict = {}
    assert scan_poll_reply(payload, known) == scan_poll_reply(payload, known) == scan_poll_reply(
        payload)


@given(st.sampled_from([NOM_ATTR_NU_VAL_OBS, NOM_ATTR_NU_CMPD_VAL_OBS, NOM_ATTR_TIME_STAMP_ABS]),
       nu_st | st.lists(nu_st, max_size=4).map(nu_compound) | st.binary(max_size=50))
@settings(max_examples=500)
def test_numerics_equal_the_cursor_parser(attr_id: int, value: bytes) -> None:
    assert outcome(parse_numerics, attr_id, value) == outcome(_parse_numerics, attr_id, value)


@given(st.lists(frame_st | (reply_st | damaged(reply_st)).map(encode_frame), min_size=1,
                max_size=8))
@settings(max_examples=100)
def test_what_the_codec_remembers_never_changes_what_it_reports(frames: list[bytes]) -> None:
    """Caches emptied at every second entry give the same events as caches that keep all."""
    stream = b"".join(frames) * 2
    expected = IntelliVueCodec().receive_data(stream)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(intellivue_messages, "KNOWN_MAX", 1)
        mp.setattr(intellivue, "ASSESSED_MAX", 1)
        assert IntelliVueCodec().receive_data(stream) == expected
