"""Masimo ASCII 1 codec: published lines byte-exactly, EXC/ALARM events, strictness, fuzzing."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infusion_monitor.devices.base import DeviceEvent, DeviceEventKind, WaveformBlock
from infusion_monitor.devices.masimo import (
    EXC_CONDITIONS,
    EXC_SENSOR_OFF,
    EXC_SET_MODE,
    MAX_LINE,
    MasimoCodec,
    build_line,
    parse_line,
)
from infusion_monitor.devices.registry import get_protocol
from infusion_monitor.vitals import Quality, Reading, Vital

#: The Rad-8 line in protocols.md (a published capture).
RAD8 = (b"02/22/16 22:47:45 SN=0000056661 SPO2=098% BPM=097 PI=03.60% SPCO=--.-% SPMET=--.-% "
        b"DESAT=-- PIDELTA=+-- ALARM=0000 EXC=000800\r\n")
#: OpenICE's Radical-7 and Radical-5 example lines (mdpnp poxrad_discrete.h).
RADICAL7 = (b"12/01/05 11:56:29 SN=0123456789 SPO2=098% BPM=240 PI=20.00% SPCO=01.0% "
            b"SPMET=00.5% DESAT=01 PIDELTA=-02 PVI=027 ALARM=0000 EXC=000820\r\n")
RADICAL5 = b"09/15/10 15:10:29 SPO2=097% BPM=064 PI=11.82% ALARM=20 EXC=800\r\n"
T0 = datetime(2026, 1, 1, 9, 0, 0, tzinfo=UTC)


def readings(events: list) -> list[Reading]:
    return [e for e in events if isinstance(e, Reading)]


def values(events: list) -> dict[Vital, float]:
    return {r.vital: r.value for r in readings(events)}


def of_kind(events: list, kind: DeviceEventKind) -> list[DeviceEvent]:
    return [e for e in events if isinstance(e, DeviceEvent) and e.kind is kind]


def line(second: int = 0, **kwargs) -> bytes:
    fields = {"spo2": 97, "bpm": 72, "pi": 2.5} | kwargs
    return build_line(T0.replace(second=second), **fields)


def decode(*chunks: bytes) -> tuple[MasimoCodec, list]:
    codec = MasimoCodec()
    events = []
    for chunk in chunks:
        events += codec.receive_data(chunk)
    return codec, events


# --- published lines ------------------------------------------------------------------------------


def test_protocols_md_example_decodes_and_set_mode_is_not_an_error():
    codec, events = decode(RAD8)
    assert [(r.vital, r.value, r.quality) for r in readings(events)] == [
        (Vital.SPO2, 98, Quality.OK), (Vital.PR, 97, Quality.OK), (Vital.PI, 3.6, Quality.OK),
    ]
    assert {r.t_device for r in readings(events)} == {datetime(2016, 2, 22, 22, 47, 45,
                                                                tzinfo=UTC)}
    assert [e for e in events if not isinstance(e, Reading)] == []  # EXC 0x800: no event
    assert (codec.stats.frames_ok, codec.stats.frames_rejected, codec.stats.readings) == (1, 0, 3)
    assert codec.stats.bytes_in == len(RAD8)


def test_encoder_reproduces_the_published_line_byte_for_byte():
    t = datetime(2016, 2, 22, 22, 47, 45, tzinfo=UTC)
    assert build_line(t, spo2=98, bpm=97, pi=3.6, exc=0x800, alarm=0) == RAD8


def test_radical7_line_with_pvi_and_sensor_off_bit():
    _, events = decode(RADICAL7)
    assert values(events) == {Vital.SPO2: 98, Vital.PR: 240, Vital.PI: 20.0, Vital.PVI: 27}
    # EXC 0x820 = SET mode + sensor off: values sent with a probe problem are questionable.
    assert {r.quality for r in readings(events)} == {Quality.QUESTIONABLE}
    probe = of_kind(events, DeviceEventKind.PROBE_OFF)
    assert [(e.vital, e.detail) for e in probe] == [(Vital.SPO2, "sensor off"),
                                                    (Vital.PR, "sensor off")]
    assert probe[0].t_device == datetime(2005, 12, 1, 11, 56, 29, tzinfo=UTC)


def test_radical5_line_with_fewer_fields_and_an_alarm():
    _, events = decode(RADICAL5)
    assert values(events) == {Vital.SPO2: 97, Vital.PR: 64, Vital.PI: 11.82}
    status = of_kind(events, DeviceEventKind.PARAMETER_STATUS)
    assert [(e.vital, e.detail) for e in status] == [(None, "device alarm: alarm silenced")]


def test_keys_not_positions_are_read():
    shuffled = b"01/01/26 09:00:00 BPM=061 EXC=000800 PI=01.25% SPO2=095%\r\n"
    _, events = decode(shuffled)
    assert values(events) == {Vital.SPO2: 95, Vital.PR: 61, Vital.PI: 1.25}


def test_lf_only_and_cr_only_terminators():
    body = RAD8.rstrip(b"\r\n")
    for eol in (b"\n", b"\r"):
        codec, events = decode(body + eol + body + eol)
        assert codec.stats.frames_ok == 2 and len(readings(events)) == 6


# --- dashes and availability ----------------------------------------------------------------------


def test_dashes_give_no_value_and_one_status_event_per_change():
    frames = [
        line(0),
        line(1, spo2=None, pi=None),
        line(2, spo2=None, pi=None),  # unchanged: no event
        line(3),
    ]
    codec = MasimoCodec()
    per_line = [codec.receive_data(f) for f in frames]
    assert [sorted(v.value for v in values(ev)) for ev in per_line] == [
        ["pi", "pr", "spo2"], ["pr"], ["pr"], ["pi", "pr", "spo2"],
    ]
    status = [[(e.vital, e.detail) for e in of_kind(ev, DeviceEventKind.PARAMETER_STATUS)]
              for ev in per_line]
    assert status == [
        [], [(Vital.SPO2, "no value"), (Vital.PI, "no value")], [],
        [(Vital.SPO2, "valid"), (Vital.PI, "valid")],
    ]


def test_pvi_is_tracked_only_when_sent():
    _, events = decode(line(0), line(1, with_pvi=True, pvi=None), line(2, with_pvi=True, pvi=12))
    assert [r.value for r in readings(events) if r.vital is Vital.PVI] == [12]
    pvi = [e.detail for e in of_kind(events, DeviceEventKind.PARAMETER_STATUS)
           if e.vital is Vital.PVI]
    assert pvi == ["no value", "valid"]


def test_status_memory_survives_a_reconnect():
    codec, _ = decode(line(0), line(1, spo2=None))
    codec.connection_lost()
    codec.connection_made()
    events = codec.receive_data(line(2, spo2=None))
    assert of_kind(events, DeviceEventKind.PARAMETER_STATUS) == []
    assert codec.data_to_send() == b""  # ASCII 1 is one-way: nothing is ever sent


# --- EXC and ALARM --------------------------------------------------------------------------------


@pytest.mark.parametrize(("bit", "name", "probe"), EXC_CONDITIONS)
def test_each_exc_bit_starts_and_ends_once(bit: int, name: str, probe: bool):
    codec = MasimoCodec()
    seq = [codec.receive_data(line(i, exc=EXC_SET_MODE | (bit if 1 <= i <= 3 else 0)))
           for i in range(6)]
    non_readings = [[(e.kind, e.vital, e.detail) for e in ev if isinstance(e, DeviceEvent)]
                    for ev in seq]
    start = ([(DeviceEventKind.PROBE_OFF, Vital.SPO2, name),
              (DeviceEventKind.PROBE_OFF, Vital.PR, name)] if probe
             else [(DeviceEventKind.PARAMETER_STATUS, None, name)])
    end = [(DeviceEventKind.PARAMETER_STATUS, None, f"{name} cleared")]
    assert non_readings == [[], start, [], [], end, []]
    quality = [{r.quality for r in readings(ev)} for ev in seq]
    assert quality == [{Quality.OK}] + [{Quality.QUESTIONABLE}] * 3 + [{Quality.OK}] * 2


def test_exc_bits_outside_the_known_conditions_change_nothing():
    _, events = decode(line(0, exc=0x1000 | EXC_SET_MODE), line(1, exc=EXC_SET_MODE))
    assert [e for e in events if not isinstance(e, Reading)] == []
    assert {r.quality for r in readings(events)} == {Quality.OK}


def test_alarm_changes_are_recorded_with_their_names():
    _, events = decode(line(0), line(1, alarm=0x12), line(2, alarm=0x12), line(3, alarm=0))
    details = [e.detail for e in of_kind(events, DeviceEventKind.PARAMETER_STATUS)]
    assert details == ["device alarm: SpO2 low, alarm active", "device alarms cleared"]


def test_probe_off_follows_the_no_value_status_so_the_tile_says_why():
    _, events = decode(line(0), line(1, spo2=None, bpm=None, pi=None, exc=0x820))
    kinds = [(e.kind, e.vital) for e in events if isinstance(e, DeviceEvent)]
    assert kinds[-2:] == [(DeviceEventKind.PROBE_OFF, Vital.SPO2),
                          (DeviceEventKind.PROBE_OFF, Vital.PR)]
    assert readings(events[3:]) == []


# --- what is not a frame --------------------------------------------------------------------------


@pytest.mark.parametrize(("bad", "reason"), [
    (RAD8[:42], "no BPM="),  # truncated (the rest lost)
    (RAD8.replace(b"02/22/16", b"13/45/16"), "impossible date"),
    (RAD8.replace(b"BPM=097", b"PR=097"), "no BPM="),
    (RAD8.replace(b"SPO2=098%", b"SPO2=9x8%"), "bad SPO2 value"),
    (RAD8.replace(b"EXC=000800", b"EXC=0008Z0"), "bad EXC value"),
    (RAD8.replace(b" SN=", b" SN "), "not a KEY=VALUE pair"),
    (RAD8.replace(b"BPM", b"BPM=099 BPM"), "sent twice"),
    (RAD8.replace(b"SN=", b"SN=\xff"), "not ASCII"),
    (RAD8.replace(b"SN=", b"SN=\x01"), "control characters"),
    (b"22:47:45 02/22/16 SPO2=098% BPM=097", "no date and time"),
])
def test_malformed_lines_are_rejected_without_readings(bad: bytes, reason: str):
    codec, events = decode(b"\r\n" + bad.rstrip(b"\r\n") + b"\r\n")
    assert readings(events) == []
    assert codec.stats.frames_ok == 0 and codec.stats.frames_rejected == 1
    [rejected] = of_kind(events, DeviceEventKind.FRAME_REJECTED)
    assert reason in rejected.detail


def test_a_fragment_before_the_first_line_end_is_dropped_without_a_rejection():
    codec, _ = decode(RAD8[40:] + RAD8)
    assert codec.stats.frames_ok == 1 and codec.stats.frames_rejected == 0
    # After an unplug the same holds: the cut line is dropped, the next one decoded.
    codec.receive_data(RAD8[:70])
    codec.connection_lost()
    assert len(readings(codec.receive_data(RAD8[30:] + RAD8))) == 3
    assert codec.stats.frames_rejected == 0


def test_overlong_lines_are_rejected_per_max_line_bytes_then_resync():
    _, events = decode(b"\r\n" + b"A" * (3 * (MAX_LINE + 1) + 7) + b"\r\n" + RAD8)
    rejected = of_kind(events, DeviceEventKind.FRAME_REJECTED)
    assert [e.detail for e in rejected] == [f"line longer than {MAX_LINE} bytes"] * 3
    assert values(events) == {Vital.SPO2: 98, Vital.PR: 97, Vital.PI: 3.6}


def test_text_in_another_output_mode_is_reported_once():
    printer = b"SpO2  98 %   Pulse  97 bpm   PI 3.6\r\n"
    codec, events = decode(b"\r\n" + printer * 2)
    assert of_kind(events, DeviceEventKind.DEVICE_ERROR) == []  # two lines: not yet
    events = codec.receive_data(printer * 5)
    [error] = of_kind(events, DeviceEventKind.DEVICE_ERROR)
    assert "set the Rad-8 serial output to ASCII 1" in error.detail
    assert codec.stats.frames_rejected == 7
    # A reconnect may say it again.
    codec.connection_made()
    assert len(of_kind(codec.receive_data(printer * 3), DeviceEventKind.DEVICE_ERROR)) == 1
    # A good line in between restarts the count: two odd lines, a good one, two odd ones.
    _, events = decode(b"\r\n" + printer * 2 + RAD8 + printer * 2)
    assert of_kind(events, DeviceEventKind.DEVICE_ERROR) == []


def test_registry_creates_this_codec_with_its_line_settings():
    info = get_protocol("masimo")
    codec = info.create()
    assert isinstance(codec, MasimoCodec) and codec.name == "masimo"
    assert info.serial == MasimoCodec.serial
    assert (info.serial.baudrate, info.serial.parity, info.serial.bytesize) == (9600, "N", 8)


# --- property tests -------------------------------------------------------------------------------

line_st = st.builds(
    lambda s, spo2, bpm, pi, pvi, exc, alarm: build_line(
        T0.replace(second=s), spo2=spo2, bpm=bpm, pi=None if pi is None else pi / 100,
        pvi=pvi, with_pvi=pvi is not None or s % 2 == 0, exc=exc, alarm=alarm),
    st.integers(0, 59), st.none() | st.integers(0, 100), st.none() | st.integers(0, 300),
    st.none() | st.integers(0, 2000), st.none() | st.integers(0, 99),
    st.integers(0, 0xFFFFFF), st.integers(0, 0xFFFF),
)


@given(st.binary(max_size=3000))
@settings(max_examples=300)
def test_any_bytes_raise_nothing_and_yield_no_readings(data):
    codec = MasimoCodec()
    events = codec.receive_data(data) + codec.receive_data(b"\r\n" + data + b"\r\n")
    assert readings(events) == [] and codec.stats.frames_ok == 0
    assert codec.stats.bytes_in == 2 * len(data) + 4


def test_a_megabyte_of_random_bytes_is_never_a_frame():
    data = random.Random(1).randbytes(1_000_000)
    codec, events = decode(data)
    assert codec.stats.frames_ok == 0 and readings(events) == []
    assert codec.stats.frames_rejected > 1000  # noise is reported, line by line


@given(st.binary(max_size=600), line_st)
def test_resync_after_garbage(garbage, good):
    clean = readings(MasimoCodec().receive_data(good))
    _, events = decode(garbage + b"\r\n" + good)
    assert readings(events) == clean


@given(line_st, st.data())
@settings(max_examples=500)
def test_a_damaged_line_yields_nothing_and_the_next_one_everything(good, data):
    """ASCII 1 has no checksum, so a changed digit is a different value. What a parser can
    promise: a byte changed to a non-printable one, or a changed separator (``/``, ``:``, ``=``,
    space), fails the well-formedness check; such a line yields nothing, and the next line
    decodes in full. (A damaged space once let ``PIDELTA=+--!PVI=000`` pass as one pair.)
    """
    body = good[:-2]
    separators = [i for i, b in enumerate(body) if b in b"/:= "]
    pos = data.draw(st.sampled_from(separators) | st.integers(0, len(body) - 1))
    pool = st.integers(0, 255) if pos in separators else st.integers(0, 0x1F) | st.integers(
        0x7F, 0xFF)
    new = data.draw(pool.filter(lambda b: b not in (body[pos], 0x0D, 0x0A)))
    damaged = body[:pos] + bytes([new]) + body[pos + 1 :] + b"\r\n"
    assert isinstance(parse_line(damaged[:-2]), str)
    codec = MasimoCodec()
    before = codec.receive_data(b"\r\n" + damaged)
    assert readings(before) == [] and codec.stats.frames_rejected == 1
    follow = line(5, spo2=91)
    assert values(codec.receive_data(follow))[Vital.SPO2] == 91


@given(st.lists(line_st, min_size=1, max_size=6), st.binary(max_size=200), st.data())
def test_chunking_does_not_change_events(lines, garbage, data):
    stream = garbage + b"".join(lines) + b"X" * (MAX_LINE + 20)
    whole = MasimoCodec().receive_data(stream)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=20)))
    codec = MasimoCodec()
    pieces = []
    for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        pieces += codec.receive_data(stream[a:b])
    assert pieces == whole


def test_probe_off_with_dashes_stores_no_value_but_the_events():
    """A probe-off line has dashes: nothing to store, but the probe-off is recorded."""
    _, events = decode(line(0), line(1, spo2=None, bpm=None, pi=None,
                                     exc=EXC_SET_MODE | EXC_SENSOR_OFF))
    assert len(readings(events)) == 3
    assert not any(isinstance(e, WaveformBlock) for e in events)
    assert len(of_kind(events, DeviceEventKind.PROBE_OFF)) == 2
