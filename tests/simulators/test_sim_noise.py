"""``simulators.noise.misread``: a UART at the wrong baud rate, bit by bit."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from simulators.noise import BaudMismatch, misread

RATES = st.sampled_from([1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200])
PARITY = st.sampled_from("NEO")


@given(st.binary(max_size=200), RATES, PARITY)
def test_at_the_right_rate_every_byte_arrives_unchanged(data: bytes, baud: int, parity: str):
    assert misread(data, baud, baud, parity) == data


@given(st.binary(max_size=200), RATES, RATES, PARITY)
def test_a_faster_sender_yields_at_most_one_byte_per_byte_sent(
    data: bytes, sent: int, read: int, parity: str
):
    out = misread(data, sent, read, parity)
    if sent >= read:
        assert len(out) <= len(data)


def test_known_bytes_at_twice_the_readers_rate():
    # 0x00 at 19200 read at 9600: the reader's bit k is the sender's bit 2k+1; from its bit 4
    # on it samples the stop bit and the idle line, all ones: 0b11111000.
    assert misread(b"\x00", 19200, 9600) == b"\xf8"
    # 0xFF: the start bit lasts half a reader bit, so the reader finds a one mid-start: nothing.
    assert misread(b"\xff", 19200, 9600) == b""


def test_a_mismatch_mangles_both_ways():
    line = BaudMismatch(monitor_baud=9600, reader_baud=19200)
    frame = b"SPO2=097% BPM=072 PI=03.20%\r\n"
    assert line.to_reader(frame) != frame
    assert line.to_monitor(frame) != frame
    assert BaudMismatch(9600, 9600).to_reader(frame) == frame
