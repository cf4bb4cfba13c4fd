"""The serial link over pyserial's real ``socket://`` handler, against a scripted peer."""

from __future__ import annotations

import os
import socket
import sys
import threading
import time
from collections.abc import Callable

import pytest
import serial

from infusion_monitor.clock import ManualClock
from infusion_monitor.devices.base import DeviceEventKind
from infusion_monitor.devices.datex_s5 import (
    BasicValues,
    DatexS5Codec,
    RequestDecoder,
    build_displayed_values,
)
from infusion_monitor.devices.link import LinkState, SerialLink
from infusion_monitor.vitals import Reading, Vital

T0 = 1_780_000_000


class Peer:
    """A TCP 'monitor': accepts one client at a time and answers the start request."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.requests: list[tuple[int, int]] = []
        self.conn: socket.socket | None = None
        self.accepted = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"socket://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        try:
            self.conn, _ = self.server.accept()
        except OSError:
            return
        self.accepted.set()
        decoder = RequestDecoder()
        self.conn.settimeout(0.1)
        while True:
            try:
                data = self.conn.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            if not data:
                return
            self.requests += decoder.feed(data)

    def send(self, data: bytes) -> None:
        assert self.conn is not None
        self.conn.sendall(data)

    def drop(self) -> None:
        """Close the client connection, like a cable pulled at the converter."""
        if self.conn is not None:
            self.conn.close()

    def relisten(self) -> None:
        self.accepted.clear()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.drop()
        self.server.close()


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.01)


@pytest.fixture
def peer():
    p = Peer()
    yield p
    p.close()


class Collector:
    def __init__(self) -> None:
        self.events: list = []
        self.states: list[LinkState] = []
        self.lock = threading.Lock()

    def on_events(self, events) -> None:
        with self.lock:
            self.events.extend(events)

    def on_state(self, state, _detail) -> None:
        with self.lock:
            self.states.append(state)

    def kinds(self) -> list[DeviceEventKind]:
        with self.lock:
            return [e.kind for e in self.events if not isinstance(e, Reading)]

    def readings(self) -> list[Reading]:
        with self.lock:
            return [e for e in self.events if isinstance(e, Reading)]


def make_link(url: str, got: Collector, clock=None) -> SerialLink:
    return SerialLink(url, DatexS5Codec(), on_events=got.on_events, on_state=got.on_state,
                      clock=clock or ManualClock(), backoff_s=(0.05, 0.1))


def test_link_sends_start_request_and_delivers_readings(peer):
    got = Collector()
    link = make_link(peer.url, got)
    link.start()
    try:
        wait_for(lambda: len(peer.requests) == 5)
        assert {level for _, level in peer.requests} == {7, 8, 9, 10, 11}
        assert {interval for interval, _ in peer.requests} == {5}
        for i in range(3):
            peer.send(build_displayed_values(T0 + 5 * i, BasicValues(hr=70 + i, spo2=97)))
        wait_for(lambda: len([r for r in got.readings() if r.vital is Vital.HR]) == 3)
        assert [r.value for r in got.readings() if r.vital is Vital.HR] == [70, 71, 72]
        assert link.state is LinkState.CONNECTED
        assert got.kinds()[0] is DeviceEventKind.LINK_UP
    finally:
        link.stop()
    assert not link.running and link.state is LinkState.STOPPED


def test_watchdog_reports_no_data_then_records_the_gap(peer):
    clock = ManualClock()
    got = Collector()
    link = make_link(peer.url, got, clock)
    link.start()
    try:
        wait_for(lambda: len(peer.requests) == 5)
        peer.send(build_displayed_values(T0, BasicValues(hr=70)))
        wait_for(lambda: len(got.readings()) == 1)
        clock.advance(9.5)
        time.sleep(0.2)  # the read loop runs every 50 ms: 9.5 s is inside the watchdog period
        assert LinkState.NO_DATA not in got.states
        clock.advance(1.0)
        wait_for(lambda: link.state is LinkState.NO_DATA)
        assert DeviceEventKind.NO_DATA in got.kinds()
        clock.advance(20)
        peer.send(build_displayed_values(T0 + 30, BasicValues(hr=71)))
        wait_for(lambda: link.state is LinkState.CONNECTED and len(got.readings()) == 2)
        kinds = got.kinds()
        assert DeviceEventKind.DATA_RESUMED in kinds and DeviceEventKind.GAP in kinds
        gap = next(e for e in got.events if getattr(e, "kind", None) is DeviceEventKind.GAP)
        assert "(30.5 s)" in gap.detail  # from the last frame (t=0) to the next (t=30.5)
    finally:
        link.stop()


def test_garbage_alone_is_not_data(peer):
    clock = ManualClock()
    got = Collector()
    link = make_link(peer.url, got, clock)
    link.start()
    try:
        wait_for(lambda: len(peer.requests) == 5)
        peer.send(bytes(range(256)) * 8)
        wait_for(lambda: link.codec.stats.bytes_in == 2048)
        clock.advance(11)
        wait_for(lambda: link.state is LinkState.NO_DATA)
        assert got.readings() == []
        assert "2048 bytes came: wrong baud rate or protocol?" in link.state_detail
    finally:
        link.stop()


def test_link_reconnects_after_the_peer_drops_and_resends_the_start_request(peer):
    got = Collector()
    link = make_link(peer.url, got)
    link.start()
    try:
        wait_for(lambda: len(peer.requests) == 5)
        peer.send(build_displayed_values(T0, BasicValues(hr=70, nibp_sys=120, nibp_dia=80,
                                                         nibp_mean=93)))
        wait_for(lambda: len(got.readings()) == 4)
        peer.drop()
        wait_for(lambda: DeviceEventKind.LINK_DOWN in got.kinds())
        assert LinkState.DISCONNECTED in got.states
        peer.relisten()
        wait_for(lambda: len(peer.requests) == 10)
        assert link.reconnects >= 1
        # The monitor keeps showing the last NIBP: it must not be recorded twice.
        peer.send(build_displayed_values(T0 + 5, BasicValues(hr=71, nibp_sys=120, nibp_dia=80,
                                                             nibp_mean=93)))
        wait_for(lambda: len(got.readings()) == 5)
        assert [r.vital for r in got.readings()].count(Vital.NIBP_SYS) == 1
        assert got.kinds().count(DeviceEventKind.LINK_UP) == 2
        assert DeviceEventKind.GAP in got.kinds()
    finally:
        link.stop()


def test_a_port_that_cannot_be_opened_is_reported_and_retried(tmp_path):
    got = Collector()
    link = make_link(str(tmp_path / "ttyNOPE"), got)
    link.start()
    try:
        wait_for(lambda: LinkState.RECONNECTING in got.states)
        time.sleep(0.3)  # several retries happen; the failure is recorded once, not per retry
        assert got.kinds().count(DeviceEventKind.LINK_DOWN) == 1
        assert "cannot open" in link.state_detail or "retrying" in link.state_detail
    finally:
        link.stop()
    assert link.state is LinkState.STOPPED


@pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pty")
def test_a_port_another_program_holds_is_busy_until_it_lets_go():
    """Two readers would each get half the bytes: the link opens a port exclusively."""
    master, slave = os.openpty()
    path = os.ttyname(slave)
    holder = serial.Serial(path, exclusive=True)
    got = Collector()
    link = make_link(path, got)
    link.start()
    try:
        wait_for(lambda: LinkState.RECONNECTING in got.states)
        (down,) = [e for e in got.events if getattr(e, "kind", None) is DeviceEventKind.LINK_DOWN]
        assert down.detail.startswith(f"{path} is busy: another program has it open")
        assert DeviceEventKind.LINK_UP not in got.kinds()
        holder.close()
        wait_for(lambda: DeviceEventKind.LINK_UP in got.kinds())
        assert link.state is LinkState.CONNECTED
    finally:
        link.stop()
        holder.close()
        os.close(slave)
        os.close(master)
