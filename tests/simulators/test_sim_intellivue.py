"""The simulated IntelliVue, sans-I/O in simulated time: association, polls, keep-alive timeout."""

from __future__ import annotations

import itertools
import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from infusion_monitor.devices.base import DeviceEventKind
from infusion_monitor.devices.intellivue import (
    DEMO_MESSAGE,
    KEEP_ALIVE_S,
    POLL_RENEW_S,
    RETRY_S,
    IntelliVueCodec,
    Phase,
)
from infusion_monitor.devices.intellivue_association import (
    SI_ACCEPT,
    SI_REFUSE,
    SI_RELEASE_RESPONSE,
    build_association_request,
    build_release_request,
    parse_association,
)
from infusion_monitor.devices.intellivue_frames import Deframer, check_frame, encode_frame
from infusion_monitor.devices.intellivue_messages import (
    NOM_ATTR_GRP_METRIC_VAL_OBS,
    NOM_ATTR_GRP_VMO_STATIC,
    NOM_MOC_VMO_AL_MON,
    NOM_MOC_VMO_METRIC_NU,
    NOM_NOTI_MDS_CREAT,
    EventReport,
    ManagedObject,
    PollReply,
    build_mds_create_result,
    build_poll_request,
    parse_data_message,
)
from infusion_monitor.vitals import Quality, Reading
from simulators.__main__ import main
from simulators.intellivue import KEEPALIVE_TIMEOUT_S, IntelliVueStream, State
from simulators.output import Frame
from simulators.patient import PatientModel

START = "2026-01-01T09:00:00Z"
EPOCH = 1767258000


def messages(frames: list[Frame]) -> list:
    """Each frame's message, parsed (association messages and data messages alike)."""
    out = []
    for frame in frames:
        ((raw, _),) = Deframer().feed(frame.data)
        payload, reason = check_frame(raw)
        assert payload is not None, reason
        out.append(parse_data_message(payload) if payload[0] == 0xE1
                   else parse_association(payload))
    return out


def stream(**kwargs) -> IntelliVueStream:
    s = IntelliVueStream(PatientModel("typical", 2), EPOCH, **kwargs)
    s.connection_made()
    return s


def associate(s: IntelliVueStream, t: float = 0.0) -> None:
    """Play a client up to the point where polls are answered."""
    s.receive_data(encode_frame(build_association_request()), t)
    accept, event = messages(s.frames_until(t))
    assert accept.kind == SI_ACCEPT and isinstance(event, EventReport)
    s.receive_data(encode_frame(build_mds_create_result(event.invoke_id, event.managed_object,
                                                        event.event_time)), t)
    assert s.state is State.ASSOCIATED


def ext_poll(period_s: float | None = 600, invoke_id: int = 1) -> bytes:
    ticks = None if period_s is None else round(period_s * 8000)
    return encode_frame(build_poll_request(invoke_id, 1, NOM_MOC_VMO_METRIC_NU,
                                           NOM_ATTR_GRP_METRIC_VAL_OBS, extended=True,
                                           period_ticks=ticks))


def keep_alive() -> bytes:
    return encode_frame(build_poll_request(9, 9, NOM_MOC_VMO_AL_MON, NOM_ATTR_GRP_VMO_STATIC))


# --- association --------------------------------------------------------------------------------


def test_silent_until_associated_and_polls_before_that_are_ignored() -> None:
    s = stream()
    s.receive_data(ext_poll(), 0)
    assert s.next_due() is None and s.frames_until(100) == []


def test_accepts_then_sends_the_mds_create_event_with_its_clock() -> None:
    s = stream()
    s.receive_data(encode_frame(build_association_request()), 12.345)
    accept, event = messages(s.frames_until(12.345))
    assert accept.kind == SI_ACCEPT and accept.user_info is not None
    assert accept.user_info.min_poll_ticks == 8000
    assert event.event_type == NOM_NOTI_MDS_CREAT and event.confirmed
    attrs = dict(event.attributes)
    assert attrs[0x0987] == bytes.fromhex("2026010109001234")  # BCD, 1/100 s
    assert int.from_bytes(attrs[0x098F], "big") == event.event_time == 98_720  # 12.34 s
    assert s.state is State.AWAIT_RESULT
    s.receive_data(ext_poll(), 13)
    assert s.frames_until(20) == []  # no result yet: the poll is ignored


def test_malformed_request_is_refused() -> None:
    s = stream()
    bad_header = bytearray(build_association_request())
    bad_header[20] ^= 0x01  # inside the presentation header
    for request in (bytes(bad_header), b"\x0d\x03\x05\x01\x00"):
        s.receive_data(encode_frame(request), 1)
        assert [m.kind for m in messages(s.frames_until(1))] == [SI_REFUSE]
        assert s.state is State.IDLE
    assert "unexpected presentation header" in s.received[0][1]


def test_refuse_option_refuses_every_request() -> None:
    s = stream(refuse=True)
    for t in (0, 10, 20):
        s.receive_data(encode_frame(build_association_request()), t)
        assert [m.kind for m in messages(s.frames_until(t))] == [SI_REFUSE]
    s.receive_data(ext_poll(), 21)
    assert s.frames_until(30) == []


def test_release_is_answered_and_ends_the_association() -> None:
    s = stream()
    associate(s)
    s.receive_data(ext_poll(), 0.5)
    assert len(s.frames_until(3)) == 3
    s.receive_data(encode_frame(build_release_request()), 3.5)
    assert [m.kind for m in messages(s.frames_until(10))] == [SI_RELEASE_RESPONSE]
    assert s.state is State.IDLE and s.next_due() is None


def test_a_new_reader_must_associate_again() -> None:
    s = stream()
    associate(s)
    s.receive_data(ext_poll(), 0)
    s.connection_made()
    assert s.frames_until(100) == []
    s.receive_data(ext_poll(), 101)
    assert s.frames_until(200) == []


# --- polls ---------------------------------------------------------------------------------------


def test_extended_poll_sends_a_result_every_second_for_its_period() -> None:
    s = stream()
    associate(s)
    s.receive_data(ext_poll(period_s=10), 2.4)
    frames = s.frames_until(30)
    assert [f.t for f in frames] == list(range(3, 13))  # whole seconds, for 10 s
    assert [f.r_time for f in frames] == [EPOCH + t for t in range(3, 13)]
    replies = messages(frames)
    assert all(isinstance(r, PollReply) and r.obj_class == NOM_MOC_VMO_METRIC_NU
               for r in replies)
    assert [r.sequence_no for r in replies] == list(range(10))


def test_a_new_extended_poll_extends_the_period_without_doubling_results() -> None:
    s = stream()
    associate(s)
    s.receive_data(ext_poll(period_s=10), 0)
    s.frames_until(5)
    s.receive_data(ext_poll(period_s=10), 5.5)
    assert [f.t for f in s.frames_until(30)] == list(range(6, 16))


def test_single_poll_gets_one_result_and_a_keep_alive_an_empty_one() -> None:
    s = stream()
    associate(s)
    single = encode_frame(build_poll_request(4, 2, NOM_MOC_VMO_METRIC_NU, 0))
    s.receive_data(single + keep_alive(), 7.891)
    numerics, empty = s.frames_until(7.891)
    assert numerics.t == 7.89 and numerics.r_time == EPOCH + 7.89
    assert set(numerics.values) == {"hr", "pr", "spo2"}
    reply = messages([empty])[0]
    assert reply.obj_class == NOM_MOC_VMO_AL_MON and reply.objects == () and empty.values == {}
    assert s.next_due() is None


def test_keep_alive_timeout_stops_the_results_after_120_s() -> None:
    s = stream()
    associate(s)
    s.receive_data(ext_poll(period_s=3600), 0.2)
    times = [f.t for f in s.frames_until(1000)]
    assert times[-1] == 120  # last message at 0.2 s: nothing after 120.2 s
    assert times == list(range(1, 121))
    assert s.state is State.IDLE
    assert s.received[-1] == (121, "keep-alive timeout: association dropped")
    s.receive_data(ext_poll(), 1001)
    assert s.frames_until(2000) == []  # the client must associate again


def test_keep_alives_keep_the_results_coming() -> None:
    s = stream()
    associate(s)
    s.receive_data(ext_poll(period_s=3600), 0)
    times = []
    for t in range(100, 1001, 100):  # one keep-alive every 100 s (< 120 s)
        times += [f.t for f in s.frames_until(t) if f.values]
        s.receive_data(keep_alive(), t)
    assert times == list(range(1001))
    assert s.state is State.ASSOCIATED


def test_timeout_checked_before_a_late_message_counts() -> None:
    s = stream()
    associate(s)
    s.receive_data(keep_alive(), KEEPALIVE_TIMEOUT_S + 1)  # too late: the association is gone
    assert s.state is State.IDLE
    assert s.frames_until(KEEPALIVE_TIMEOUT_S + 1) == []


# --- with the app's codec ----------------------------------------------------------------------


class Session:
    """The app's codec and the simulated monitor, wired together in simulated time."""

    def __init__(self, codec: IntelliVueCodec, s: IntelliVueStream) -> None:
        self.codec, self.stream = codec, s
        self.events: list = []
        self.frames: list[Frame] = []
        self.t = 0.0
        codec.connection_made()

    def run_until(self, end: float, step: float = 0.25) -> None:
        while self.t < end:
            out = self.codec.data_to_send()
            if out:
                self.stream.receive_data(out, self.t)
            for frame in self.stream.frames_until(self.t):
                self.frames.append(frame)
                self.events += self.codec.receive_data(frame.data)
            self.t += step
            if self.t == int(self.t):
                self.codec.tick(self.t)

    def readings(self) -> list[Reading]:
        return [e for e in self.events if isinstance(e, Reading)]

    def decoded(self) -> Counter:
        return Counter((r.vital.value, r.value, r.t_device) for r in self.readings())

    def truth(self) -> Counter:
        out: Counter = Counter()
        for f in self.frames:
            for vital, value in (f.values or {}).items():
                if value is not None:
                    out[(vital, float(value), datetime.fromtimestamp(f.r_time, UTC))] += 1
        return out


@pytest.mark.parametrize("abs_time", [True, False], ids=["absolute", "relative"])
def test_codec_decodes_exactly_what_the_frames_say_for_30_minutes(abs_time: bool) -> None:
    session = Session(IntelliVueCodec(), stream(abs_time_in_polls=abs_time))
    session.run_until(1800)
    assert session.decoded() == session.truth()
    assert sum(session.truth().values()) > 5000
    nibp = [f.t for f in session.frames if "nibp_sys" in (f.values or {})]
    assert nibp == [90, 390, 690, 990, 1290, 1590]  # each measurement once
    hr_times = sorted(r.t_device for r in session.readings() if r.vital.value == "hr")
    assert len(hr_times) == 1799 and hr_times[-1] == datetime.fromtimestamp(EPOCH + 1799, UTC)
    # One association all along; the numerics poll renewed every 540 s; keep-alives every 5 s.
    assert session.codec.associations == 1
    polls = [t for t, what in session.stream.received if what == "poll of object class 6"]
    assert polls[0] == 0.25 and len(polls) == 4
    assert all(POLL_RENEW_S <= b - a <= POLL_RENEW_S + 2 for a, b in itertools.pairwise(polls))
    alive = [t for t, what in session.stream.received if what == "poll of object class 54"]
    assert len(alive) >= 1795 // 5
    assert max(b - a for a, b in itertools.pairwise(alive)) == KEEP_ALIVE_S


def test_without_keep_alives_the_monitor_stops_after_120_s() -> None:
    """Negative control: a client that never ticks gets data for 120 s, then nothing."""

    class Silent(IntelliVueCodec):
        def tick(self, monotonic: float) -> None:
            pass

    session = Session(Silent(), stream())
    session.run_until(600)
    times = sorted({r.t_device for r in session.readings()})
    last_message = max(t for t, what in session.stream.received if "timeout" not in what)
    assert last_message < 1
    assert times[-1] == datetime.fromtimestamp(EPOCH + 120, UTC)
    assert session.stream.state is State.IDLE


def test_codec_reassociates_after_the_monitor_dropped_it() -> None:
    session = Session(IntelliVueCodec(), stream())
    session.run_until(100)
    session.stream.connection_made()  # cable out and back: the monitor forgot us
    session.run_until(300)
    assert session.codec.associations == 2 and session.codec.phase is Phase.POLLING
    hr = sorted(r.t_device for r in session.readings() if r.vital.value == "hr")
    gap = max(b - a for a, b in itertools.pairwise(hr))
    assert 10 <= gap.total_seconds() <= 20  # silence noticed after 12 s, then re-associated
    assert hr[-1] == datetime.fromtimestamp(EPOCH + 299, UTC)


def test_refusing_monitor_gives_one_device_error_and_no_readings() -> None:
    session = Session(IntelliVueCodec(), stream(refuse=True))
    session.run_until(65)
    errors = [e for e in session.events if getattr(e, "kind", None) is DeviceEventKind.DEVICE_ERROR]
    assert len(errors) == 1 and "refused the association" in errors[0].detail
    assert session.readings() == []
    requests = [t for t, what in session.stream.received if what == "association request"]
    assert requests[0] == 0 and len(requests) == 7  # retried every 10 s
    assert all(b - a == RETRY_S for a, b in itertools.pairwise(requests[1:]))


def test_demo_mode_values_are_marked_demo() -> None:
    session = Session(IntelliVueCodec(), stream(demo=True))
    session.run_until(100)
    assert {r.quality for r in session.readings()} == {Quality.DEMO}
    assert session.decoded() == session.truth()
    errors = [e.detail for e in session.events
              if getattr(e, "kind", None) is DeviceEventKind.DEVICE_ERROR]
    assert errors == [DEMO_MESSAGE]


def test_closing_releases_and_the_monitor_stops() -> None:
    session = Session(IntelliVueCodec(), stream())
    session.run_until(20)
    session.codec.closing()
    session.run_until(40)
    assert session.stream.state is State.IDLE
    assert ("release request" in [what for _, what in session.stream.received])
    last = max(r.t_device for r in session.readings())
    assert last <= datetime.fromtimestamp(EPOCH + 21, UTC)


# --- file output (no association) ------------------------------------------------------------


def test_file_output_decodes_to_the_truth(tmp_path: Path) -> None:
    out, truth = tmp_path / "ivue.raw", tmp_path / "truth.jsonl"
    assert main(["--protocol", "intellivue", "--scenario", "artifact", "--seed", "4",
                 "--out", str(out), "--truth", str(truth), "--start", START,
                 "--duration", "1300"]) == 0
    rows = [json.loads(line) for line in truth.read_text().splitlines()]
    assert [r["t"] for r in rows] == list(range(1300))
    assert all(r["r_time"] == EPOCH + r["t"] for r in rows)
    expected: Counter = Counter()
    for r in rows:
        for vital, value in r["values"].items():
            if value is not None:
                expected[(vital, float(value), datetime.fromtimestamp(r["r_time"], UTC))] += 1
    codec = IntelliVueCodec()
    events = codec.receive_data(out.read_bytes())
    got = Counter((e.vital.value, e.value, e.t_device) for e in events if isinstance(e, Reading))
    assert got == expected
    assert codec.stats.frames_rejected == 0 and codec.stats.frames_ok == 1300
    # The artifact scenario's probe-off (1200-1220 s): SpO2 and PR invalid, reported once each.
    status = [(e.vital.value, e.detail) for e in events
              if getattr(e, "kind", None) is DeviceEventKind.PARAMETER_STATUS]
    assert status == [("pr", "invalid"), ("spo2", "invalid"), ("pr", "valid"), ("spo2", "valid")]


def test_the_mds_result_must_match_the_event() -> None:
    s = stream()
    s.receive_data(encode_frame(build_association_request()), 0)
    s.frames_until(0)
    wrong = build_mds_create_result(1, ManagedObject(33), 0, event_type=0x0D07)
    s.receive_data(encode_frame(wrong), 1)
    assert s.state is State.AWAIT_RESULT
