"""The Nonin simulator on a real pty -> LiveRecording -> the window's pleth and the database.

The bytes on the wire are captured on the app's side of the pty (pyserial's ``spy://``
wrapper) and decoded here by a few lines independent of the app's codec: the stored blocks and
the drawn sweep must hold exactly the pleth samples those bytes carried.
"""

from __future__ import annotations

import re
import signal
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from conftest import PtySimulator
from pytestqt.qtbot import QtBot

from infusion_monitor.clock import ScaledClock
from infusion_monitor.session.live import LiveRecording
from infusion_monitor.store.db import Database
from infusion_monitor.ui.app import make_window
from infusion_monitor.ui.qt_numeric import TileState
from infusion_monitor.vitals import Quality, Vital

pytestmark = pytest.mark.e2e
SPEED = 10
FRAME, PACKET = 5, 25
_RX = re.compile(r"^\S+ RX\s+[0-9A-F]{4}  (.{49})")


def wire_bytes(spy_log: Path) -> bytes:
    """The bytes the app read from the port, from spy's hexdump ("... RX 0010  02 70 ...")."""
    out = bytearray()
    for line in spy_log.read_text(encoding="ascii", errors="replace").splitlines():
        if m := _RX.match(line):
            out += bytes.fromhex(m.group(1).replace(" ", ""))
    return bytes(out)


def _frame(raw: bytes) -> tuple[int, int, int] | None:
    """(format, status, pleth) of a 5-byte Nonin frame, None if its check fails."""
    if sum(raw[:4]) & 0xFF != raw[4]:
        return None
    if raw[0] == 0x01 and raw[1] & 0x80:
        return 2, raw[1], raw[2]
    if raw[0] & 0x80:
        return 7, raw[0], raw[1] << 8 | raw[2]
    return None


def wire_packets(data: bytes) -> list[tuple[tuple[int, ...], bool]]:
    """Every whole packet on the wire: (its 25 pleth samples, flagged artifact)."""
    packets = []
    i = 0
    while i + FRAME * PACKET <= len(data):
        frames = [_frame(data[i + FRAME * j: i + FRAME * (j + 1)]) for j in range(PACKET)]
        if (all(frames) and frames[0][1] & 1 and not any(f[1] & 1 for f in frames[1:])
                and len({f[0] for f in frames}) == 1):
            bad = any(f[1] & 0x78 for f in frames)  # disconnected, artifact, out of track, alarm
            packets.append((tuple(f[2] for f in frames), bad))
            i += FRAME * PACKET
        else:
            i += 1  # a partial first packet, or an ACK between packets
    return packets


def test_nonin_pleth_reaches_the_screen_and_the_database(
    qtbot: QtBot, tmp_path: Path, database: Database,
    start_simulator: Callable[..., PtySimulator], shots_dir: Path,
) -> None:
    sim = start_simulator("--protocol", "nonin", "--scenario", "typical",
                          "--speed", str(SPEED))
    spy = tmp_path / "wire.txt"
    clock = ScaledClock(SPEED)
    recordings: list[LiveRecording] = []

    def start_recording(protocol: str, url: str, baud: int, *,
                        on_store_error: Callable[[Exception], None],
                        on_store_recovered: Callable[[], None],
                        **_line: object) -> LiveRecording:
        rec = LiveRecording(database, protocol=protocol, url=url, source="gui", clock=clock,
                            baudrate=baud, on_store_error=on_store_error,
                            on_store_recovered=on_store_recovered)
        recordings.append(rec)
        return rec

    window = make_window(clock=clock, start_recording=start_recording,
                         initial=("nonin", f"spy://{sim.path}?file={spy}", 9600),
                         list_ports_fn=list)
    qtbot.addWidget(window)
    window.show()
    sweep = window.pleth
    qtbot.waitUntil(lambda: sweep.isVisible(), timeout=20_000)
    qtbot.waitUntil(lambda: sweep.revealed >= 2 * sweep.capacity, timeout=30_000)
    assert window.tiles[Vital.SPO2].state in (TileState.VALID, TileState.MARKED)
    assert not sweep.stale and sweep.rate_hz == 75.0
    # What is on screen now, to hold against the wire below.
    revealed = sweep.revealed
    _, valid, marked = sweep.drawn_data()
    drawn = np.where(np.isfinite(valid), valid, marked)
    window.grab().save(str(shots_dir / "e2e-nonin-pleth.png"))

    # Freeze the simulator, let the app take everything already sent, then stop.
    sim.proc.send_signal(signal.SIGSTOP)
    rec = recordings[0]
    seen = {"n": -1, "since": time.monotonic()}

    def settled() -> bool:
        n = rec.recorder.counts["waveform_samples"]
        if n != seen["n"]:
            seen.update(n=n, since=time.monotonic())
        return time.monotonic() - seen["since"] > 0.5 and sweep.received == n

    qtbot.waitUntil(settled, timeout=10_000)
    window.close()
    sim.proc.send_signal(signal.SIGCONT)
    assert not rec.link.running

    sent = wire_packets(wire_bytes(spy))
    stored = database.repository.waveform_blocks(rec.session_id)
    assert len(sent) > 2 * 375 / PACKET, "too little on the wire to prove anything"
    assert [b.samples for b in stored] == [samples for samples, _ in sent]
    assert [b.quality is Quality.ARTIFACT for b in stored] == [bad for _, bad in sent]
    assert {b.rate_hz for b in stored} == {75.0}
    assert sweep.received == sum(len(b.samples) for b in stored)

    # The sweep showed the newest samples behind its erase gap, each in its own slot.
    every = np.concatenate([b.samples for b in stored]).astype(float)
    cap = sweep.capacity
    shown = np.arange(revealed - cap + sweep.erase, revealed)
    assert drawn[shown % cap].tolist() == every[shown].tolist()
    assert np.isnan(drawn[np.arange(revealed, revealed + sweep.erase) % cap]).all()
