"""Nonin codec: byte-exact frames of formats #2 and #7, HR math, ACK/NAK, strict sync, fuzzing."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infusion_monitor.devices.base import DeviceEvent, DeviceEventKind, WaveformBlock
from infusion_monitor.devices.nonin import (
    ACK,
    ARTIFACT,
    GREEN_PERFUSION,
    HOLD_PACKETS,
    MISSING_HR,
    MISSING_SPO2,
    NAK,
    OUT_OF_TRACK,
    RED_PERFUSION,
    SELECT_RETRY_S,
    SENSOR_ALARM,
    SENSOR_DISCONNECTED,
    YELLOW_PERFUSION,
    NoninCodec,
    RepeatThinner,
    SelectDecoder,
    build_packet,
    decode_frame,
    encode_frame,
    select_command,
)
from infusion_monitor.devices.registry import get_protocol
from infusion_monitor.vitals import Quality, Reading, Vital

PLETH8 = list(range(100, 125))
PLETH16 = [0x8000 + 300 * i for i in range(25)]


def readings(events: list) -> list[Reading]:
    return [e for e in events if isinstance(e, Reading)]


def blocks(events: list) -> list[WaveformBlock]:
    return [e for e in events if isinstance(e, WaveformBlock)]


def of_kind(events: list, kind: DeviceEventKind) -> list[DeviceEvent]:
    return [e for e in events if isinstance(e, DeviceEvent) and e.kind is kind]


def values(events: list) -> list[tuple[Vital, float]]:
    return [(r.vital, r.value) for r in readings(events)]


def packet(fmt: int = 7, hr: int = 72, spo2: int = 97, status: int | list[int] = GREEN_PERFUSION,
           pleth: list[int] | None = None) -> bytes:
    pleth = pleth if pleth is not None else (PLETH8 if fmt == 2 else PLETH16)
    return build_packet(fmt, hr=hr, spo2=spo2, pleth=pleth, status=status)


def hand_frame(*head: int) -> bytes:
    """A frame built straight from the public facts: four bytes and their sum mod 256."""
    return bytes([*head, sum(head) % 256])


# --- frames, byte for byte ------------------------------------------------------------------------


def test_select_command_bytes():
    assert select_command(7) == bytes.fromhex("027002020703")
    assert select_command(2) == bytes.fromhex("027002020203")
    codec = NoninCodec()
    codec.connection_made()
    assert codec.data_to_send() == bytes.fromhex("027002020703")
    codec2 = NoninCodec(data_format=2)
    codec2.connection_made()
    assert codec2.data_to_send() == bytes.fromhex("027002020203")
    with pytest.raises(ValueError, match="#8"):
        NoninCodec(data_format=8)


def test_frame_encoding_follows_the_public_layouts():
    # Format #2: 01, STATUS (bit 7 always set), PLETH, X, CHK
    assert encode_frame(2, GREEN_PERFUSION | 0x01, 0x80, 0x00) == hand_frame(0x01, 0x83, 0x80, 0)
    # Format #7: STATUS, PLETH MSB, PLETH LSB, X, CHK
    assert encode_frame(7, 0x02, 0x1234, 97) == hand_frame(0x82, 0x12, 0x34, 97)
    f = decode_frame(hand_frame(0x82, 0x12, 0x34, 97))
    assert f is not None and (f.data_format, f.status, f.pleth, f.x) == (7, 0x82, 0x1234, 97)
    assert decode_frame(hand_frame(0x02, 0x12, 0x34, 97)) is None  # bit 7 of STATUS clear
    assert decode_frame(hand_frame(0x01, 0x03, 0x80, 0)) is None  # format #2, bit 7 clear
    bad = bytearray(hand_frame(0x82, 0x12, 0x34, 97))
    bad[4] ^= 0x01
    assert decode_frame(bad) is None


def hand_packet_format2(hr_msb: int, hr_lsb: int, spo2: int) -> bytes:
    frames = []
    for i in range(25):
        status = 0x80 | GREEN_PERFUSION | (0x01 if i == 0 else 0)
        x = {0: hr_msb, 1: hr_lsb, 2: spo2, 3: 0x21}.get(i, 0)
        frames.append(hand_frame(0x01, status, 100 + i, x))
    return b"".join(frames)


def test_hand_built_format2_packet_decodes():
    codec = NoninCodec()
    events = codec.receive_data(hand_packet_format2(0, 72, 97))
    assert values(events) == [(Vital.PR, 72), (Vital.SPO2, 97)]
    assert all(r.t_device is None and r.quality is Quality.OK for r in readings(events))
    [block] = blocks(events)
    assert block.wave == "pleth" and block.rate_hz == 75.0 and block.unit == ""
    assert block.samples == tuple(range(100, 125)) and block.quality is Quality.OK
    assert (codec.stats.frames_ok, codec.stats.frames_rejected, codec.stats.readings) == (25, 0, 2)


@pytest.mark.parametrize(("msb", "lsb", "hr"), [
    (0, 0x48, 72), (0, 0x7F, 127), (1, 0x00, 128), (1, 0x48, 200), (2, 0x2C, 300),
    (0xFC | 1, 0x80 | 0x05, 133),  # only MSB bits 0-1 and LSB bits 0-6 count
])
def test_heart_rate_from_msb_and_lsb(msb: int, lsb: int, hr: int):
    events = NoninCodec().receive_data(hand_packet_format2(msb, lsb, 97))
    assert values(events)[0] == (Vital.PR, hr)


@pytest.mark.parametrize("fmt", [2, 7])
def test_encoder_round_trip_with_hr_above_127(fmt: int):
    codec = NoninCodec()
    events = codec.receive_data(packet(fmt, hr=245, spo2=88))
    assert values(events) == [(Vital.PR, 245), (Vital.SPO2, 88)]
    assert blocks(events)[0].samples == tuple(PLETH8 if fmt == 2 else PLETH16)


def test_both_formats_in_one_stream():
    events = NoninCodec().receive_data(packet(2, hr=70) + packet(7, hr=71))
    assert [b.samples for b in blocks(events)] == [tuple(PLETH8), tuple(PLETH16)]
    assert [v for k, v in values(events) if k is Vital.PR] == [70, 71]


# --- missing values, thinning ---------------------------------------------------------------------


def test_missing_codes_give_no_reading_and_one_status_event_per_change():
    codec = NoninCodec()
    seq = [packet(hr=70), packet(hr=MISSING_HR, spo2=MISSING_SPO2),
           packet(hr=MISSING_HR, spo2=MISSING_SPO2), packet(hr=70)]
    per = [codec.receive_data(p) for p in seq]
    assert [values(ev) for ev in per] == [
        [(Vital.PR, 70), (Vital.SPO2, 97)], [], [], [(Vital.PR, 70), (Vital.SPO2, 97)],
    ]
    status = [[(e.vital, e.detail) for e in of_kind(ev, DeviceEventKind.PARAMETER_STATUS)]
              for ev in per]
    assert status == [[], [(Vital.PR, "no value"), (Vital.SPO2, "no value")], [],
                      [(Vital.PR, "valid"), (Vital.SPO2, "valid")]]


def test_repeats_are_thinned_to_one_a_second_and_changes_kept():
    codec = NoninCodec()
    hrs = [70, 70, 70, 70, 71, 71, 70, 70, 70, 70, 70]
    kept = [[v for k, v in values(codec.receive_data(packet(hr=hr))) if k is Vital.PR]
            for hr in hrs]
    assert kept == [[70], [], [], [70], [71], [], [70], [], [], [70], []]


def test_thinner_rule():
    thin = RepeatThinner(every=3)
    assert [thin.keep(Vital.SPO2, v) for v in (97, 97, 97, 97, None, 97, 98, 98)] == [
        True, False, False, True, False, True, True, False]
    thin.reset()
    assert thin.keep(Vital.SPO2, 98)


def test_a_reconnect_forgets_repeats():
    codec = NoninCodec()
    codec.receive_data(packet(hr=70))
    codec.connection_lost()
    assert values(codec.receive_data(packet(hr=70)))[0] == (Vital.PR, 70)


# --- status bits ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("bit", "name"), [
    (ARTIFACT, "artifact"), (OUT_OF_TRACK, "out of track"), (RED_PERFUSION, "low perfusion"),
])
def test_signal_conditions_start_and_end_once(bit: int, name: str):
    codec = NoninCodec()
    statuses = [GREEN_PERFUSION] * 25
    statuses[7] = bit  # one frame is enough
    kinds = [GREEN_PERFUSION] + [statuses] * 2 + [GREEN_PERFUSION] * (HOLD_PACKETS + 1)
    seq = [packet(hr=60 + i, status=s) for i, s in enumerate(kinds)]  # each HR is kept
    per = [codec.receive_data(p) for p in seq]
    events = [[e.detail for e in ev if isinstance(e, DeviceEvent)] for ev in per]
    assert events[1] == [name]
    assert events[1 + 1 + HOLD_PACKETS] == [f"{name} cleared"]
    assert sum(len(e) for e in events) == 2
    quality = [{r.quality for r in readings(ev)} for ev in per]
    assert quality[0] == {Quality.OK} and quality[1] == {Quality.QUESTIONABLE}
    assert quality[1 + HOLD_PACKETS] == {Quality.QUESTIONABLE}  # still within the hold
    assert quality[2 + HOLD_PACKETS] == {Quality.OK}
    pleth = [blocks(ev)[0].quality for ev in per]
    expected = Quality.ARTIFACT if bit in (ARTIFACT, OUT_OF_TRACK) else Quality.OK
    assert pleth[:4] == [Quality.OK, expected, expected, Quality.OK]


@pytest.mark.parametrize(("bit", "name"), [
    (SENSOR_DISCONNECTED, "sensor disconnected"), (SENSOR_ALARM, "sensor alarm"),
])
def test_probe_conditions_are_probe_off_for_spo2_and_pr(bit: int, name: str):
    codec = NoninCodec()
    codec.receive_data(packet())
    events = codec.receive_data(packet(hr=MISSING_HR, spo2=MISSING_SPO2, status=bit))
    probe = of_kind(events, DeviceEventKind.PROBE_OFF)
    assert [(e.vital, e.detail) for e in probe] == [(Vital.SPO2, name), (Vital.PR, name)]
    assert blocks(events)[0].quality is Quality.ARTIFACT
    # Probe-off events come after the parameter statuses, so a tile shows why it is empty.
    kinds = [e.kind for e in events if isinstance(e, DeviceEvent)]
    assert kinds == [DeviceEventKind.PARAMETER_STATUS] * 2 + [DeviceEventKind.PROBE_OFF] * 2


def test_yellow_and_green_perfusion_are_not_a_problem():
    codec = NoninCodec()
    events = codec.receive_data(packet(status=YELLOW_PERFUSION) + packet(status=0))
    assert [e for e in events if isinstance(e, DeviceEvent)] == []
    assert {r.quality for r in readings(events)} == {Quality.OK}


# --- sync -----------------------------------------------------------------------------------------


def test_frames_count_only_from_a_sync_frame_on():
    codec = NoninCodec()
    events = codec.receive_data(packet(hr=60)[37:] + packet(hr=61) + packet(hr=62))
    assert codec.stats.frames_ok == 50 and codec.stats.frames_rejected == 0
    assert [v for k, v in values(events) if k is Vital.PR] == [61, 62]


def test_checksum_failure_gives_nothing_from_that_frame():
    good = packet(hr=61)
    bad = bytearray(packet(hr=62))
    bad[5 * 4 + 2] ^= 0x40  # frame 4's pleth LSB
    codec = NoninCodec()
    events = codec.receive_data(good + bytes(bad) + packet(hr=63))
    assert [b.samples for b in blocks(events)] == [tuple(PLETH16), tuple(PLETH16[:4]),
                                                  tuple(PLETH16)]
    assert [v for k, v in values(events) if k is Vital.PR] == [61, 62, 63]
    [rejected] = of_kind(events, DeviceEventKind.FRAME_REJECTED)
    assert "sync lost" in rejected.detail and "after frame 4" in rejected.detail
    assert codec.stats.frames_ok == 25 + 4 + 25


def test_a_partial_packet_without_frame_2_gives_pr_but_no_spo2():
    cut = packet(hr=66)[:10]  # frames 0 and 1, then the next packet's sync frame
    events = NoninCodec().receive_data(packet(hr=65) + cut + packet(hr=67, spo2=90))
    assert values(events) == [(Vital.PR, 65), (Vital.SPO2, 97), (Vital.PR, 66),
                              (Vital.PR, 67), (Vital.SPO2, 90)]
    assert [len(b.samples) for b in blocks(events)] == [25, 2, 25]


def test_missing_sync_bit_at_a_packet_start_loses_sync():
    codec = NoninCodec()
    no_sync = packet(hr=70, status=[GREEN_PERFUSION] * 25)
    no_sync = encode_frame(7, GREEN_PERFUSION, PLETH16[0], 0) + no_sync[5:]  # frame 0 unsynced
    events = codec.receive_data(packet() + no_sync + packet(hr=80))
    assert [len(b.samples) for b in blocks(events)] == [25, 25]
    assert [v for k, v in values(events) if k is Vital.PR] == [72, 80]
    assert "no sync bit" in of_kind(events, DeviceEventKind.FRAME_REJECTED)[0].detail


def test_a_mixed_format_candidate_is_not_a_lock():
    mixed = packet(2)[:5] + packet(7)[5:]
    codec = NoninCodec()
    assert codec.receive_data(mixed) == [] and codec.stats.frames_ok == 0


def test_long_noise_is_reported_once_per_375_bytes():
    codec = NoninCodec()
    events = codec.receive_data(bytes(1000))
    assert [e.detail for e in of_kind(events, DeviceEventKind.FRAME_REJECTED)] == [
        "no frame in sync in 375 bytes"] * 2


# --- ACK, NAK, retries ----------------------------------------------------------------------------


def test_ack_is_taken_and_nothing_more_is_sent():
    codec = NoninCodec()
    codec.connection_made()
    codec.data_to_send()
    events = codec.receive_data(bytes([ACK]) + packet())
    assert codec.data_to_send() == b"" and codec.stats.frames_ok == 25
    assert len(readings(events)) == 2


def test_nak_for_7_falls_back_to_2_and_nak_for_both_is_a_device_error():
    codec = NoninCodec()
    codec.connection_made()
    assert codec.data_to_send() == select_command(7)
    assert codec.receive_data(bytes([NAK])) == []
    assert codec.data_to_send() == select_command(2)
    [error] = codec.receive_data(bytes([NAK]))
    assert error.kind is DeviceEventKind.DEVICE_ERROR
    assert "the oximeter refused data format #7 and #2" in error.detail
    for t in (0.0, 5.0, 10.0, 20.0):  # refused: no more selects on tick
        codec.tick(t)
    assert codec.data_to_send() == b""


def test_nak_for_format_2_only():
    codec = NoninCodec(data_format=2)
    codec.connection_made()
    codec.data_to_send()
    [error] = codec.receive_data(bytes([NAK]))
    assert "refused data format #2:" in error.detail


def test_an_answer_between_packets_keeps_sync():
    codec = NoninCodec()
    codec.connection_made()
    codec.receive_data(bytes([ACK]) + packet(hr=70))
    codec.tick(0.0)
    codec.tick(SELECT_RETRY_S)  # no new frames for 3 s: asks again
    assert codec.data_to_send().endswith(select_command(7))
    events = codec.receive_data(packet(hr=71) + bytes([ACK]) + packet(hr=72))
    assert of_kind(events, DeviceEventKind.FRAME_REJECTED) == []
    assert codec.stats.frames_ok == 75


def test_a_nak_in_unreadable_data_still_counts_as_the_answer():
    """A unit sending a format we do not read: its NAK arrives amid bytes we cannot frame."""
    codec = NoninCodec()
    codec.connection_made()
    codec.data_to_send()
    codec.receive_data(bytes([0x83, 0x44, 0x12, NAK, 0x99, 0x42, 0x10, 0x00]))
    assert codec.data_to_send() == select_command(2)


def test_no_answer_outside_a_select():
    codec = NoninCodec()  # never asked: an ACK byte at a frame boundary is a broken frame
    events = codec.receive_data(packet() + bytes([ACK]) + packet())
    assert len(of_kind(events, DeviceEventKind.FRAME_REJECTED)) == 1


def test_select_is_repeated_while_nothing_valid_arrives():
    codec = NoninCodec()
    codec.connection_made()
    first = codec.data_to_send()
    for t in (0.0, 1.0, 2.9):
        codec.tick(t)
        assert codec.data_to_send() == b""
    codec.tick(3.0)
    assert codec.data_to_send() == first
    for i, t in enumerate(range(4, 20)):
        codec.receive_data(packet(hr=60 + i % 2))
        codec.tick(float(t))
        assert codec.data_to_send() == b""


def test_select_decoder_finds_split_and_embedded_commands():
    decoder = SelectDecoder()
    stream = b"\x00\x02" + select_command(7) + b"\x02\x70\x02\x02\x09\x04" + select_command(13)
    assert decoder.feed(stream[:5]) + decoder.feed(stream[5:17]) + decoder.feed(stream[17:]) == [
        7, 13]
    assert decoder.feed(b"") == []


def test_registry_creates_this_codec_with_its_line_settings():
    info = get_protocol("nonin")
    codec = info.create()
    assert isinstance(codec, NoninCodec) and codec.data_format == 7
    assert info.serial == NoninCodec.serial
    assert (info.serial.baudrate, info.serial.parity, info.serial.bytesize) == (9600, "N", 8)


# --- property tests -------------------------------------------------------------------------------

status_st = st.sampled_from([GREEN_PERFUSION, YELLOW_PERFUSION, RED_PERFUSION, ARTIFACT,
                             OUT_OF_TRACK, SENSOR_ALARM, SENSOR_DISCONNECTED, 0])


@st.composite
def packets(draw) -> bytes:
    fmt = draw(st.sampled_from([2, 7]))
    top = 255 if fmt == 2 else 65535
    return build_packet(
        fmt, hr=draw(st.integers(0, 511)), spo2=draw(st.integers(0, 127)),
        pleth=draw(st.lists(st.integers(0, top), min_size=25, max_size=25)),
        status=draw(st.lists(status_st, min_size=25, max_size=25)),
    )


def decoded(events: list) -> list:
    """Readings and pleth blocks: what the codec takes from the frames."""
    return [e for e in events if isinstance(e, Reading | WaveformBlock)]


@given(st.binary(max_size=3000))
@settings(max_examples=300)
def test_any_bytes_raise_nothing_and_yield_nothing(data):
    codec = NoninCodec()
    codec.connection_made()
    events = codec.receive_data(data) + codec.receive_data(data)
    assert decoded(events) == [] and codec.stats.frames_ok == 0
    assert codec.stats.bytes_in == 2 * len(data)


def test_a_megabyte_of_random_bytes_yields_nothing():
    codec = NoninCodec()
    events = codec.receive_data(random.Random(2).randbytes(1_000_000))
    assert decoded(events) == [] and codec.stats.frames_ok == 0
    assert codec.stats.frames_rejected >= 1_000_000 // 375 - 1


@given(st.binary(max_size=500), st.lists(packets(), min_size=1, max_size=4))
def test_resync_after_garbage(garbage, pks):
    clean = decoded(NoninCodec().receive_data(b"".join(pks)))
    assert decoded(NoninCodec().receive_data(garbage + b"".join(pks))) == clean


@given(st.lists(packets(), min_size=3, max_size=3), st.data())
def test_single_byte_mutation_gives_nothing_from_that_frame(pks, data):
    """Any one changed byte fails its frame's checksum (the sum moves by 1..255, never 0 mod
    256). The packet keeps the frames before it; the next packet decodes as if nothing happened.
    """
    first, second, third = pks
    pos = data.draw(st.integers(0, len(second) - 1))
    new = data.draw(st.integers(0, 255).filter(lambda b: b != second[pos]))
    mutated = second[:pos] + bytes([new]) + second[pos + 1 :]
    frame = pos // 5
    expected = decoded(NoninCodec().receive_data(first + second[: 5 * frame] + third))
    codec = NoninCodec()
    events = codec.receive_data(first + mutated + third)
    assert decoded(events) == expected
    assert codec.stats.frames_ok == 50 + frame and codec.stats.frames_rejected == 1


@given(st.lists(packets(), min_size=1, max_size=5), st.binary(max_size=200), st.booleans(),
       st.data())
def test_chunking_does_not_change_events(pks, garbage, asking, data):
    stream = (bytes([NAK, ACK]) if asking else b"") + garbage + b"".join(pks)

    def fresh() -> NoninCodec:
        codec = NoninCodec()
        if asking:
            codec.connection_made()
        return codec

    whole = fresh().receive_data(stream)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=20)))
    codec = fresh()
    pieces = []
    for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        pieces += codec.receive_data(stream[a:b])
    assert pieces == whole
    assert codec.data_to_send() == fresh_sent(stream, asking)


def fresh_sent(stream: bytes, asking: bool) -> bytes:
    codec = NoninCodec()
    if asking:
        codec.connection_made()
    codec.receive_data(stream)
    return codec.data_to_send()
