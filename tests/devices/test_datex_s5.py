"""GE Datex-Ohmeda S/5 codec: a real capture, byte-exact requests, NIBP dedupe, fuzzing."""

from __future__ import annotations

import csv
import struct
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from infusion_monitor.devices.base import DeviceEvent, DeviceEventKind
from infusion_monitor.devices.datex_s5 import (
    DRI_LEVELS,
    NOT_UPDATED,
    OVER_RANGE,
    BasicValues,
    DatexS5Codec,
    RequestDecoder,
    build_displayed_values,
    build_start_request,
    decode_capture,
    encode_frame,
    parse_request,
)
from infusion_monitor.vitals import Reading, Vital

FIXTURES = Path(__file__).parent.parent / "fixtures" / "datex-s5"
T0 = 1_625_282_059  # 2021-07-03 03:14:19 UTC, the capture's first r_time


def readings(events: list) -> list[Reading]:
    return [e for e in events if isinstance(e, Reading)]


def of_kind(events: list, kind: DeviceEventKind) -> list[DeviceEvent]:
    return [e for e in events if isinstance(e, DeviceEvent) and e.kind is kind]


def unframe(frame: bytes) -> bytes:
    """The unescaped record (without checksum) of one encoded frame."""
    assert frame[0] == frame[-1] == 0x7E
    body, out, i = frame[1:-1], bytearray(), 0
    while i < len(body):
        if body[i] == 0x7D:
            out.append(body[i + 1] ^ 0x20)
            i += 2
        else:
            out.append(body[i])
            i += 1
    assert sum(out[:-1]) & 0xFF == out[-1]
    return bytes(out[:-1])


# --- the real capture -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def capture():
    return decode_capture((FIXTURES / "AS3Rawoutput1.raw").read_bytes())


def test_capture_yields_123_heart_rates_and_nothing_else(capture):
    hr = capture.readings
    assert len(hr) == 123
    assert {r.vital for r in hr} == {Vital.HR}
    assert {r.value for r in hr} == {78}
    assert all(r.t_received is None for r in hr)
    assert hr[0].t_device == datetime(2021, 7, 3, 3, 14, 19, tzinfo=UTC)
    assert hr[-1].t_device == datetime(2021, 7, 3, 6, 11, 19, tzinfo=UTC)
    assert capture.stats.frames_ok == 123
    assert capture.stats.frames_rejected == 2
    assert capture.stats.readings == 123
    assert capture.stats.bytes_in == 108_282
    rejected = of_kind(capture.events, DeviceEventKind.FRAME_REJECTED)
    assert [e.detail for e in rejected] == [
        "checksum mismatch (112 bytes)", "checksum mismatch (285 bytes)",
    ]


def test_capture_reports_each_missing_parameter_once(capture):
    status = {e.vital: e.detail for e in of_kind(capture.events, DeviceEventKind.PARAMETER_STATUS)}
    assert len(of_kind(capture.events, DeviceEventKind.PARAMETER_STATUS)) == 5
    assert status == {
        Vital.PR: "not updated", Vital.SPO2: "invalid",
        Vital.NIBP_SYS: "invalid", Vital.NIBP_DIA: "invalid", Vital.NIBP_MEAN: "invalid",
    }


def test_capture_matches_vscapture_export(capture):
    """VSCapture's CSV (a subset of the sessions) agrees row by row.

    Its Time column is r_time in UTC (VSCapture does not call ToLocalTime), month/day/year: all
    107 rows land exactly on one of our timestamps, which an hour-offset local time would not.
    """
    ours = {r.t_device: r.value for r in capture.readings}
    with (FIXTURES / "AS3DataExport.csv").open(encoding="utf-8-sig", newline="") as f:
        rows = [row for row in csv.DictReader(f) if row["Time"] != "Time"]
    assert len(rows) == 107
    for row in rows:
        t = datetime.strptime(row["Time"], "%m/%d/%Y %H:%M:%S").replace(tzinfo=UTC)
        assert ours[t] == float(row["ECG_HR"])
        for column in ("NIBP_Systolic", "NIBP_Diastolic", "NIBP_Mean", "SpO2"):
            assert row[column] == "-"


# --- round trip through the simulator's encoder --------------------------------------------------


def test_displayed_values_round_trip_with_scaling():
    codec = DatexS5Codec()
    values = BasicValues(hr=72, pr=71, spo2=97.5, nibp_sys=121.25, nibp_dia=80, nibp_mean=93.75)
    events = codec.receive_data(build_displayed_values(T0, values))
    got = {r.vital: r.value for r in readings(events)}
    assert got == {
        Vital.HR: 72, Vital.PR: 71, Vital.SPO2: 97.5,
        Vital.NIBP_SYS: 121.25, Vital.NIBP_DIA: 80, Vital.NIBP_MEAN: 93.75,
    }
    assert all(r.t_device == datetime.fromtimestamp(T0, UTC) for r in readings(events))
    assert not of_kind(events, DeviceEventKind.PARAMETER_STATUS)  # first valid: no event
    assert codec.stats.frames_ok == 1 and codec.stats.readings == 6


def test_escaped_bytes_in_a_record_decode():
    r_time = 0x607E7D7E  # 2021-04, with both special bytes in the header
    frame = build_displayed_values(r_time, BasicValues(hr=0x7E, pr=0x7D), r_nbr=0x7E)
    assert frame.count(0x7E) == 2 and b"\x7d\x5e" in frame and b"\x7d\x5d" in frame
    events = DatexS5Codec().receive_data(frame)
    assert [(r.vital, r.value, r.t_device) for r in readings(events)] == [
        (Vital.HR, 126, datetime.fromtimestamp(r_time, UTC)),
        (Vital.PR, 125, datetime.fromtimestamp(r_time, UTC)),
    ]


def test_sentinels_give_no_reading_and_one_event_per_change():
    codec = DatexS5Codec()
    frames = [
        BasicValues(hr=70, spo2=98),
        BasicValues(hr=None, spo2=98),  # hr invalid
        BasicValues(hr=None, spo2=98),  # unchanged status: no event
        BasicValues(hr=NOT_UPDATED, spo2=OVER_RANGE),
        BasicValues(hr=71, spo2=99),
    ]
    per_frame = [codec.receive_data(build_displayed_values(T0 + 5 * i, v, r_nbr=i))
                 for i, v in enumerate(frames)]
    hr_status = [
        [e.detail for e in of_kind(ev, DeviceEventKind.PARAMETER_STATUS) if e.vital is Vital.HR]
        for ev in per_frame
    ]
    assert hr_status == [[], ["invalid"], [], ["not updated"], ["valid"]]
    hr = [[r.value for r in readings(ev) if r.vital is Vital.HR] for ev in per_frame]
    assert hr == [[70], [], [], [], [71]]
    spo2_status = [
        e.detail for ev in per_frame for e in of_kind(ev, DeviceEventKind.PARAMETER_STATUS)
        if e.vital is Vital.SPO2
    ]
    assert spo2_status == ["over range", "valid"]


# --- NIBP dedupe ----------------------------------------------------------------------------------


def nibp_triples(codec: DatexS5Codec, *values: BasicValues, start: int = 0) -> list[tuple]:
    out = []
    for i, v in enumerate(values):
        events = codec.receive_data(build_displayed_values(T0 + 5 * (start + i), v))
        triple = tuple(r.value for r in readings(events) if r.vital.value.startswith("nibp"))
        if triple:
            out.append(triple)
    return out


def test_nibp_is_emitted_once_per_measurement():
    codec = DatexS5Codec()
    bp = BasicValues(nibp_sys=120, nibp_dia=80, nibp_mean=93)
    other = BasicValues(nibp_sys=130, nibp_dia=85, nibp_mean=100)
    # While the cuff inflates, the S/5 keeps showing the previous result with the bit set.
    other_measuring = BasicValues(nibp_sys=130, nibp_dia=85, nibp_mean=100, nibp_measuring=True)
    got = nibp_triples(codec, bp, bp, bp, other, other, other_measuring, other_measuring, bp, bp)
    assert got == [(120, 80, 93), (130, 85, 100), (120, 80, 93)]
    # A new measurement that gives identical values is told apart by the "measuring" bit.
    bp_measuring = BasicValues(nibp_sys=120, nibp_dia=80, nibp_mean=93, nibp_measuring=True)
    got = nibp_triples(codec, bp_measuring, bp_measuring, bp, bp, start=20)
    assert got == [(120, 80, 93)]


def test_nothing_is_emitted_while_the_cuff_is_measuring():
    codec = DatexS5Codec()
    measuring = BasicValues(nibp_sys=141, nibp_dia=90, nibp_mean=107, nibp_measuring=True)
    assert nibp_triples(codec, measuring, measuring, measuring) == []
    done = BasicValues(nibp_sys=141, nibp_dia=90, nibp_mean=107)
    assert nibp_triples(codec, done, done, start=3) == [(141, 90, 107)]


def test_nibp_memory_survives_reconnect():
    codec = DatexS5Codec()
    bp = BasicValues(nibp_sys=120, nibp_dia=80, nibp_mean=93)
    assert nibp_triples(codec, bp) == [(120, 80, 93)]
    codec.receive_data(build_displayed_values(T0, bp)[:100])  # cut off by the unplug
    codec.connection_lost()
    codec.connection_made()
    assert nibp_triples(codec, bp, bp, start=1) == []
    assert codec.stats.frames_rejected == 0  # the partial frame was dropped, not rejected


# --- requests, byte-exact -------------------------------------------------------------------------


def test_start_request_bytes():
    frame = build_start_request(interval_s=5, dri_level=9)
    record = unframe(frame)
    assert len(record) == 49
    assert record[:4] == bytes([49, 0, 0, 9])  # r_len u16, r_nbr, r_dri_level
    assert record[14:16] == b"\x00\x00"  # r_maintype PHDB
    assert record[16:22] == bytes([0, 0, 0, 0, 0, 0xFF])  # {0, type 0}, {0, 0xFF end}
    # type displayed, interval 5 s, class mask 0 = basic (bit 0 would *deny* basic)
    assert record[40:49] == bytes([1, 5, 0, 0, 0, 0, 0, 0, 0])
    assert frame == b"\x7e" + record + bytes([sum(record) & 0xFF]) + b"\x7e"
    assert parse_request(record) == (5, 9)
    assert parse_request(unframe(build_start_request(dri_level=11, stop=True))) == (0, 11)


def test_request_escaping():
    # Interval 0x7E and DRI level 0x7D put both special bytes in the record.
    frame = build_start_request(interval_s=0x7E, dri_level=0x7D)
    assert frame[1:6] == bytes([49, 0, 0, 0x7D, 0x5D])
    assert b"\x7d\x5e" in frame
    assert 0x7E not in frame[1:-1]
    assert parse_request(unframe(frame)) == (0x7E, 0x7D)
    # A checksum that is itself 0x7E is escaped too.
    record = bytes([0x7E])
    assert encode_frame(record) == b"\x7e\x7d\x5e\x7d\x5e\x7e"


def test_connection_made_queues_a_request_per_dri_level():
    codec = DatexS5Codec()
    codec.connection_made()
    sent = codec.data_to_send()
    assert codec.data_to_send() == b""
    assert RequestDecoder().feed(sent) == [(5, level) for level in DRI_LEVELS]
    assert sent == b"".join(build_start_request(5, level) for level in DRI_LEVELS)
    codec.request_stop()
    assert RequestDecoder().feed(codec.data_to_send()) == [(0, level) for level in DRI_LEVELS]


def test_request_decoder_ignores_garbage_and_other_records():
    decoder = RequestDecoder()
    stream = (b"\x01\x02" + build_start_request(10, 8) + b"\x7e\x00\x7e"
              + build_displayed_values(T0, BasicValues(hr=60)) + build_start_request(0, 7))
    assert decoder.feed(stream[:7]) + decoder.feed(stream[7:]) == [(10, 8), (0, 7)]


def test_unknown_maintype_and_bad_descriptor_raise_nothing():
    record = bytearray(unframe(build_displayed_values(T0, BasicValues(hr=60))))
    alarm = bytearray(record)
    alarm[14] = 4  # an alarm record: valid but not ours
    bad = bytearray(record)
    bad[16:18] = struct.pack("<h", 200)  # subrecord would run past the record's end
    codec = DatexS5Codec()
    events = codec.receive_data(encode_frame(bytes(alarm)) + encode_frame(bytes(bad)))
    assert readings(events) == []
    assert codec.stats.frames_ok == 1 and codec.stats.frames_rejected == 1


def test_overlong_frame_is_rejected_then_resync():
    codec = DatexS5Codec()
    good = build_displayed_values(T0, BasicValues(hr=60))
    events = codec.receive_data(b"\x7e" + b"\x00" * 5000 + good)
    assert [e.detail for e in of_kind(events, DeviceEventKind.FRAME_REJECTED)] == [
        "frame longer than 4096 bytes"
    ]
    assert [r.value for r in readings(events)] == [60]


# --- property tests -------------------------------------------------------------------------------

values_st = st.builds(
    BasicValues,
    hr=st.none() | st.integers(20, 250),
    pr=st.none() | st.integers(20, 250),
    spo2=st.none() | st.integers(5000, 10000).map(lambda v: v / 100),
    nibp_sys=st.none() | st.integers(6000, 25000).map(lambda v: v / 100),
    nibp_dia=st.none() | st.integers(3000, 15000).map(lambda v: v / 100),
    nibp_mean=st.none() | st.integers(4000, 20000).map(lambda v: v / 100),
    nibp_measuring=st.booleans(),
)


@given(st.binary(max_size=3000))
@settings(max_examples=300)
def test_any_bytes_raise_nothing(data):
    codec = DatexS5Codec()
    codec.receive_data(data)
    codec.receive_data(b"\x7e" + data + b"\x7e")
    assert codec.stats.bytes_in == 2 * len(data) + 2


@given(values_st, st.data())
def test_single_byte_mutation_gives_no_readings_then_resync(values, data):
    """Any one-byte change inside a frame (except to a flag) fails its checksum or length check.

    A byte changed to another byte shifts the 8-bit sum by 1..255, never 0 mod 256. A change that
    turns a byte into an escape (0x7D), or an escape into a plain byte, moves the unescaped length
    by one, so r_len no longer matches. Mutations into 0x7E split the frame and are covered by the
    resync part of the test.
    """
    frame = build_displayed_values(T0, values, r_nbr=1)
    pos = data.draw(st.integers(1, len(frame) - 2))
    new = data.draw(st.integers(0, 255).filter(lambda b: b not in (frame[pos], 0x7E)))
    mutated = frame[:pos] + bytes([new]) + frame[pos + 1 :]
    codec = DatexS5Codec()
    events = codec.receive_data(mutated)
    assert readings(events) == []
    assert codec.stats.frames_rejected == 1 and codec.stats.frames_ok == 0
    # Resync: whatever came before, the next good frame decodes in full.
    follow = build_displayed_values(T0 + 5, BasicValues(hr=61), r_nbr=2)
    after = codec.receive_data(follow)
    assert [(r.vital, r.value) for r in readings(after)] == [(Vital.HR, 61)]


@given(st.binary(max_size=500), values_st)
def test_resync_after_garbage(garbage, values):
    clean = DatexS5Codec().receive_data(build_displayed_values(T0, values))
    codec = DatexS5Codec()
    events = codec.receive_data(garbage + build_displayed_values(T0, values))
    assert readings(events) == readings(clean)


@given(st.lists(values_st, min_size=1, max_size=6), st.binary(max_size=200), st.data())
def test_chunking_does_not_change_events(values_list, garbage, data):
    stream = garbage + b"".join(
        build_displayed_values(T0 + 5 * i, v, r_nbr=i) for i, v in enumerate(values_list)
    )
    whole = DatexS5Codec().receive_data(stream)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=20)))
    codec = DatexS5Codec()
    pieces = []
    for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True):
        pieces += codec.receive_data(stream[a:b])
    assert pieces == whole


def test_start_request_is_repeated_while_the_line_stays_quiet():
    codec = DatexS5Codec()
    codec.connection_made()
    first = codec.data_to_send()
    assert len(RequestDecoder().feed(first)) == 5
    for t in (0.0, 1.0, 9.9):
        codec.tick(t)
        assert codec.data_to_send() == b""
    codec.tick(10.0)
    assert codec.data_to_send() == first  # lost on the way? ask again
    # Data flowing: no more requests, however long it runs.
    for i, t in enumerate(range(11, 60)):
        codec.receive_data(build_displayed_values(T0 + 5 * i, BasicValues(hr=70)))
        codec.tick(float(t))
        assert codec.data_to_send() == b""
    # Quiet again for 10 s: ask again.
    codec.tick(60.0)
    codec.tick(70.0)
    assert codec.data_to_send() == first
