"""Command line: ``python -m simulators --protocol P --scenario S (--pty | --port URL | --out F)``.

With ``--pty`` the first line on stdout is the stable device path (a symlink to the pty slave).
SIGUSR1 pulls the cable (for ``--unplug-seconds`` simulated seconds; a second SIGUSR1 plugs it
back in at once). With ``--wrong-baud N``, SIGUSR2 sets the reader's line to N baud (the bytes
both ways are mangled as two UARTs at different rates mangle them: a pty has no baud rate), and
a second SIGUSR2 sets it right again. SIGTERM/SIGINT stop cleanly. Exit codes: 0 ok, 2 usage
error, 1 failure.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import serial

from infusion_monitor.devices.registry import PROTOCOLS
from simulators.datex import DEFAULT_DRI_LEVEL, DatexS5Stream
from simulators.intellivue import IntelliVueStream
from simulators.masimo import MasimoStream
from simulators.noise import BaudMismatch, NoiseStream
from simulators.nonin import NoninStream
from simulators.output import (
    Controls,
    MonitorStream,
    PortTransport,
    PtyTransport,
    Transport,
    TruthLog,
    run_live,
    write_file,
)
from simulators.patient import DEFAULT_DURATION, SCENARIOS, PatientModel

#: --baud for a stream that is not a registered protocol (noise).
DEFAULT_BAUD = 19200

#: Protocol name -> factory of its stream (model, start epoch, args); add new protocols here.
STREAMS: dict[str, Callable[[PatientModel, int, argparse.Namespace], MonitorStream]] = {
    "datex-s5": lambda model, start, args: DatexS5Stream(model, start, args.dri_level),
    "intellivue": lambda model, start, args: IntelliVueStream(
        model, start, refuse=args.refuse_association, demo=args.demo_mode),
    "masimo": lambda model, start, args: MasimoStream(
        model, start, radical7=args.masimo_model == "radical-7", speed=args.speed),
    "nonin": lambda model, start, args: NoninStream(model, speed=args.speed),
    "noise": lambda model, start, args: NoiseStream(model, args.seed, args.baud),
}


def _start_epoch(text: str | None) -> int:
    if text is None:
        return int(time.time())
    t = datetime.fromisoformat(text)
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return int(t.timestamp())


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, not {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m simulators", description="Simulated patient monitor on a serial line."
    )
    p.add_argument("--protocol", choices=sorted(STREAMS), default="datex-s5")
    p.add_argument("--scenario", choices=list(SCENARIOS), default="typical")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--pty", action="store_true", help="serve on a new pseudo-terminal")
    where.add_argument("--port", metavar="URL", help="a pyserial URL (socket://host:port, ...)")
    where.add_argument("--out", metavar="FILE", help="write the whole session's bytes to FILE")
    p.add_argument("--link", metavar="PATH", help="symlink to the pty slave (default: temp dir)")
    p.add_argument("--speed", type=_positive, default=1.0, help="simulated seconds per second")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--duration", type=_positive, default=float(DEFAULT_DURATION),
                   help="simulated seconds (default %(default)s)")
    p.add_argument("--skip", type=float, default=0.0, metavar="SECONDS",
                   help="start the live session at this simulated second (default 0)")
    p.add_argument("--start", metavar="ISO", help="monitor clock at t=0, ISO 8601 (default now)")
    p.add_argument("--truth", metavar="FILE", help="JSON-lines log of the values sent")
    p.add_argument("--baud", type=int, default=None,
                   help="baud rate for --port (default: the protocol's usual rate)")
    p.add_argument("--dri-level", type=int, default=DEFAULT_DRI_LEVEL)
    p.add_argument("--masimo-model", choices=("rad-8", "radical-7"), default="rad-8",
                   help="masimo: the Radical-7 also sends PVI")
    p.add_argument("--unplug-seconds", type=_positive, default=60.0,
                   help="simulated seconds a SIGUSR1 unplug lasts")
    p.add_argument("--wrong-baud", type=int, metavar="N",
                   help="SIGUSR2 toggles a reader wrongly set to N baud (garbage both ways)")
    p.add_argument("--refuse-association", action="store_true",
                   help="intellivue: refuse every association request")
    p.add_argument("--demo-mode", action="store_true",
                   help="intellivue: mark every value as DEMO data")
    p.add_argument("--wait-for-reader", action="store_true",
                   help="--pty: start the session when a reader first opens the port")
    return p


def _install_signals(controls: Controls) -> None:
    def stop(signum: int, frame: object) -> None:
        controls.stop = True

    def toggle(signum: int, frame: object) -> None:
        controls.toggle_unplug = True

    def toggle_baud(signum: int, frame: object) -> None:
        controls.toggle_wrong_baud = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGUSR1, toggle)
    signal.signal(signal.SIGUSR2, toggle_baud)


def _mismatch(args: argparse.Namespace) -> BaudMismatch | None:
    if args.wrong_baud is None:
        return None
    info = PROTOCOLS.get(args.protocol)
    parity = info.serial.parity if info is not None else "N"
    return BaudMismatch(args.baud, args.wrong_baud, parity)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the simulator; returns the exit code."""
    args = build_parser().parse_args(argv)
    if args.baud is None:
        info = PROTOCOLS.get(args.protocol)
        args.baud = info.serial.baudrate if info is not None else DEFAULT_BAUD
    try:
        start = _start_epoch(args.start)
    except ValueError as exc:
        print(f"error: --start: {exc}; use ISO 8601, e.g. 2026-01-01T09:00:00Z", file=sys.stderr)
        return 2
    if not 0 <= args.skip < args.duration:
        print(f"error: --skip must be in [0, --duration), not {args.skip}", file=sys.stderr)
        return 2
    if args.wrong_baud is not None and args.wrong_baud <= 0:
        print(f"error: --wrong-baud must be positive, not {args.wrong_baud}", file=sys.stderr)
        return 2
    model = PatientModel(args.scenario, args.seed)
    stream = STREAMS[args.protocol](model, start, args)
    controls = Controls()
    truth: TruthLog | None = None
    transport: Transport | None = None
    try:
        truth = TruthLog(args.truth)
        if args.out:
            write_file(stream, model, args.out, args.duration, truth)
            return 0
        _install_signals(controls)  # only live runs: --out is also called in-process by tests
        if args.pty:
            pty = PtyTransport(args.link)
            transport = pty
            print(pty.link, flush=True)
        else:
            transport = PortTransport(args.port, baudrate=args.baud)
        run_live(stream, model, transport, truth, duration=args.duration, speed=args.speed,
                 unplug_s=args.unplug_seconds, controls=controls, skip=args.skip,
                 mismatch=_mismatch(args), wait_for_reader=args.wait_for_reader)
    except (OSError, serial.SerialException, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        if transport is not None:
            transport.close()
        if truth is not None:
            truth.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
