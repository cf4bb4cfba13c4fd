"""The ``infusion-monitor`` command: GUI, demo, headless record, import, sessions, export.

Exit codes: 0 ok, 2 usage error, 1 any other failure, always with a one-line message on stderr.
Once the database has user accounts, every command that reads or writes patient data logs in
first (``--as USERNAME``; see cli_users.py) and is checked for the user's role.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from infusion_monitor import __version__
from infusion_monitor.cli_defaults import add_defaults_parser, cmd_defaults
from infusion_monitor.cli_users import add_login_options, add_users_parser, cmd_users, login
from infusion_monitor.clock import Clock, ScaledClock, SystemClock, iso_z
from infusion_monitor.devices.base import DeviceEvent, DeviceEventKind, WaveformBlock
from infusion_monitor.devices.registry import PROTOCOLS, get_protocol
from infusion_monitor.errors import ConfigError, InfusionMonitorError
from infusion_monitor.session.auth import Access, Action
from infusion_monitor.session.recorder import Recorder
from infusion_monitor.vitals import Reading

log = logging.getLogger("infusion_monitor")

SCENARIOS = ("typical", "hypertensive", "desaturation", "artifact", "unplug")


class UsageError(InfusionMonitorError):
    """Bad arguments: exit code 2."""


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (exit 2) that says where help is,
    not the usage block; subcommand parsers are of this class too."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"infusion-monitor: {message} (see `{self.prog} --help`)\n")


def _positive(kind: type[float] | type[int]):
    def parse(text: str) -> float | int:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not math.isfinite(value) or value <= 0:  # nan and inf parse as floats
            raise argparse.ArgumentTypeError(f"{text!r} must be a number greater than 0")
        return value

    return parse


def _workstation(text: str) -> str:
    from infusion_monitor.config import check_workstation

    try:
        return check_workstation(text, "--workstation")
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _patient_id(text: str) -> str:
    """``--patient``: checked as the check-in's patient ID is (no control characters, at most
    128 characters), before anything is opened."""
    from infusion_monitor.errors import ChartingError
    from infusion_monitor.session.validate import text as checked_text

    try:
        return checked_text(text, "patient ID")
    except ChartingError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


WORKSTATION_HELP = ("this chair's name on the clinic overview (default: "
                    "$INFUSION_MONITOR_WORKSTATION, else workstation_id in the settings, "
                    "else the host name)")


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="infusion-monitor",
        description="Secondary display and record of vital signs during IV ketamine infusions. "
        "It never controls the pump; the patient monitor's own alarms remain primary.",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    p.add_argument("--db", help="database URL or SQLite file (default: $INFUSION_MONITOR_DB, "
                   "else a file in the user data directory)")
    p.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    p.add_argument("--workstation", type=_workstation, help=WORKSTATION_HELP)
    add_login_options(p, suppress=False)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    protocols = sorted(PROTOCOLS)

    d = sub.add_parser("demo", help="the GUI on the bundled simulator over a real pseudo-terminal")
    d.add_argument("--protocol", choices=protocols, default="datex-s5")
    d.add_argument("--scenario", choices=SCENARIOS, default="typical")
    d.add_argument("--speed", type=_positive(float), default=1.0,
                   help="simulated seconds per real second (default 1)")
    d.add_argument("--seed", type=int, default=1)

    r = sub.add_parser("record", help="record a monitor headless; prints the new session id")
    r.add_argument("--protocol", choices=protocols, required=True)
    r.add_argument("--port", required=True,
                   help="device path or pyserial URL (socket://host:port, rfc2217://host:port)")
    r.add_argument("--baud", type=_positive(int), help="override the protocol's default speed")
    r.add_argument("--seconds", type=_positive(float), help="stop after this many seconds")
    r.add_argument("--patient", type=_patient_id, help="patient or clinic ID")
    left_open = r.add_mutually_exclusive_group()
    left_open.add_argument("--resume", nargs="?", type=_positive(int), const=True,
                           default=False, metavar="SESSION",
                           help="continue this workstation's open session (one the app left "
                           "open when it stopped unexpectedly); prints its id")
    left_open.add_argument("--new", action="store_true",
                           help="close this workstation's open session as interrupted, then "
                           "start a new one")

    t = sub.add_parser("detect", help="try the known monitor protocols on a port and say which "
                       "one answers (exit 0 found, 1 none)")
    t.add_argument("--port", required=True,
                   help="device path or pyserial URL (socket://host:port, rfc2217://host:port)")
    t.add_argument("--protocol", action="append", choices=protocols,
                   help="try only this protocol (repeat for several; default: all)")

    i = sub.add_parser("import", help="turn a raw byte capture from a monitor into a session")
    i.add_argument("--protocol", choices=protocols, required=True)
    i.add_argument("file", type=Path)
    i.add_argument("--patient", type=_patient_id, help="patient or clinic ID")

    s = sub.add_parser("sessions", help="list recorded sessions")
    s.add_argument("--json", action="store_true", help="machine-readable output")

    e = sub.add_parser("export", help="export one session")
    e.add_argument("session", type=_positive(int))
    e.add_argument("--format", required=True, choices=(
        "csv", "minutes-csv", "alarms-csv", "fhir", "hl7", "pdf",
    ))
    e.add_argument("--per-minute", action="store_true",
                   help="hl7: one ORU^R01 message per minute instead of one per session")
    e.add_argument("-o", "--output", type=Path, help="file to write (default: stdout)")
    e.add_argument("--clinic", help="pdf: the clinic name printed at the top of every page")

    v = sub.add_parser("review", help="the session browser: find a session and review it "
                       "(read-only)")

    a = sub.add_parser("audit", help="check or list the audit trail (who did what, when, why)")
    audit_sub = a.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    av = audit_sub.add_parser("verify", help="check every hash link and every recorded row; "
                              "exit 0 intact, 1 broken (names the first broken entry)")
    av.add_argument("--session", type=_positive(int), help="check only this session's chain")
    ash = audit_sub.add_parser("show", help="list one session's audit trail")
    ash.add_argument("--session", type=_positive(int), required=True)
    ash.add_argument("--all", action="store_true",
                     help="also list the per-batch entries covering the device data")
    for sp in (av, ash):
        sp.add_argument("--db", default=argparse.SUPPRESS, help="database URL or SQLite file")

    o = sub.add_parser("overview", help="the clinic overview: one live tile per chair "
                       "(read-only)")

    db = sub.add_parser("db", help="the database schema: check it, or upgrade it")
    db_sub = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    dbc = db_sub.add_parser("check", help="say which engine and schema revision the database "
                            "has; exit 0 if current, 1 if it needs `db upgrade` or is not ours")
    dbu = db_sub.add_parser("upgrade", help="bring the schema to this version (every "
                            "workstation's app must be this version or newer afterwards)")
    dbe = db_sub.add_parser("encrypt", help="copy a plain SQLite database into a new "
                            "encrypted file (--out sqlite+pysqlcipher:///PATH; the key as "
                            "when opening it)")
    dbe.add_argument("--out", required=True, help="the new encrypted file's URL")
    for sp in (dbc, dbu, dbe):
        sp.add_argument("--db", default=argparse.SUPPRESS, help="database URL or SQLite file")

    add_users_parser(sub)
    add_defaults_parser(sub)
    for sp in (d, r, i, s, e, v, o):
        sp.add_argument("--db", default=argparse.SUPPRESS, help="database URL or SQLite file")
    for sp in (r, i, s, e, av, ash):
        add_login_options(sp, suppress=True)
    for sp in (d, r):
        sp.add_argument("--workstation", type=_workstation, default=argparse.SUPPRESS,
                        help=WORKSTATION_HELP)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    command = args.command or "gui"
    try:
        return _COMMANDS[command](args)
    except UsageError as exc:
        where = "infusion-monitor" + (f" {args.command}" if args.command else "")
        print(f"infusion-monitor: {exc} (see `{where} --help`)", file=sys.stderr)
        return 2
    except InfusionMonitorError as exc:
        print(f"infusion-monitor: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _open_db(args: argparse.Namespace, gui: bool = False, *, existing: bool = False):
    """The database of ``--db``; an encrypted one's key is asked for on the terminal, or
    (``gui``) in a dialog, when neither the OS keyring nor the environment has it.
    ``existing``: a command that only reads, and must not create a database (_db_url)."""
    from infusion_monitor.store.db import open_database

    url = _db_url(args, existing=existing)
    if gui:
        from infusion_monitor.ui.qt_key_prompt import ask_key_dialog
        from infusion_monitor.ui.qt_start_error import show_start_error

        try:
            return open_database(url, ask_key=ask_key_dialog)
        except InfusionMonitorError as exc:  # shown, then printed by main() as for any command
            show_start_error(str(exc))
            raise
    return open_database(url)


def _db_url(args: argparse.Namespace, *, existing: bool = False) -> str:
    """The database URL; UsageError for a blank ``--db`` (never the default database in its
    place), ConfigError for a SQLite path that is a directory or, if ``existing``, a file that
    does not exist: a command that failed creates no database file."""
    from sqlalchemy import make_url
    from sqlalchemy.exc import ArgumentError

    from infusion_monitor.store.db import resolve_url

    if args.db is not None and not args.db.strip():
        raise UsageError("--db is empty: give a database URL or SQLite file, or leave --db out")
    url = resolve_url(args.db)
    try:
        parsed = make_url(url)
    except ArgumentError:
        return url  # open_database says what is wrong with it
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return url
    path = Path(parsed.database)
    if path.is_dir():
        raise ConfigError(f"database {path} is a directory: give a file, e.g. "
                          f"{path / 'infusion-monitor.db'}")
    if existing and not path.exists():
        raise ConfigError(f"no database at {path}: nothing was recorded there; check --db "
                          "(or $INFUSION_MONITOR_DB)")
    return url


def _check_output(path: Path) -> None:
    """``-o FILE`` must be writable before anything is read or audited as exported."""
    if path.is_dir():
        raise ConfigError(f"cannot write {path}: it is a directory; give a file name")
    parent = path.parent
    if not parent.is_dir():
        raise ConfigError(f"cannot write {path}: there is no directory {parent}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"cannot write {path}: the directory {parent} is not writable")


# -- headless ---------------------------------------------------------------------------------
def cmd_record(args: argparse.Namespace) -> int:
    from infusion_monitor.config import load_settings
    from infusion_monitor.session.live import LiveRecording

    settings = load_settings()  # a wrong settings file stops here, before the database opens
    database = _open_db(args)
    try:
        access = login(args, database.engine, Action.CHART, what="start a recording")
    except BaseException:
        database.close()
        raise
    stop = threading.Event()
    store_failed: list[str] = []

    def on_state(state, detail):
        log.info("link %s: %s", state, detail)
        print(f"link: {state}{': ' + detail if detail else ''}", file=sys.stderr, flush=True)

    try:
        resume = _settle_open_sessions(database, args, access, settings)
        recording = LiveRecording(
            database, protocol=args.protocol, url=args.port, source="record",
            patient_id=args.patient, baudrate=args.baud, on_state=on_state,
            on_store_error=lambda exc: store_failed.append(str(exc)),
            workstation_id=args.workstation, access=access, resume=resume, settings=settings,
        )
    except BaseException:
        database.close()
        raise
    print(recording.session_id, flush=True)
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        recording.start()
        deadline = time.monotonic() + args.seconds if args.seconds else None
        while not stop.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                break
            stop.wait(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        recording.stop()
        database.close()
    counts = ", ".join(f"{k} {v}" for k, v in sorted(recording.recorder.counts.items()))
    print(
        f"session {recording.session_id}: {sum(recording.recorder.counts.values())} readings"
        f" ({counts or 'none'}), {recording.recorder.rejected_frames} rejected frames",
        file=sys.stderr,
    )
    if store_failed:
        print(f"infusion-monitor: storage had errors (all retried): {store_failed[0]}",
              file=sys.stderr)
    return 0


def _settle_open_sessions(database, args: argparse.Namespace, access, settings) -> int | None:
    """The open session to resume, or None for a new one (session/resume.py decides)."""
    from infusion_monitor.config import resolve_workstation
    from infusion_monitor.session.resume import settle_open_sessions
    from infusion_monitor.store.audit import current_user

    principal = access.principal
    return settle_open_sessions(
        database, resolve_workstation(args.workstation, settings), resume=args.resume,
        new=args.new, by=principal.display_name if principal is not None else current_user(),
        now=SystemClock().now())


def cmd_detect(args: argparse.Namespace) -> int:
    """Report which protocol answers on ``--port``; the evidence per protocol goes to stderr."""
    from infusion_monitor.devices.detect import detect

    result = detect(args.port, args.protocol, on_progress=lambda a: print(
        f"trying {a.name}… {a.step}/{a.total}", file=sys.stderr, flush=True))
    for line in result.details():
        print(f"  {line}", file=sys.stderr)
    if result.protocol is None:
        print(f"infusion-monitor: {result.summary()}", file=sys.stderr)
        return 1
    print(result.summary())
    return 0


def cmd_db(args: argparse.Namespace) -> int:
    """``db check``: report without changing anything; ``db upgrade``: migrate to this version;
    ``db encrypt``: an encrypted copy."""
    from infusion_monitor.store.db import (
        inspect_database,
        open_database,
        schema_status,
    )

    url = _db_url(args)
    if args.db_command == "encrypt":
        from infusion_monitor.store.encrypt import encrypt_copy

        revision = encrypt_copy(url, args.out)
        print(f"{args.out}: encrypted copy of {url} at schema revision {revision}; "
              "keep the key safe: without it the copy cannot be read")
        return 0
    if args.db_command == "upgrade":
        with open_database(url) as database:  # opening migrates (one workstation at a time)
            current, _ = schema_status(database.engine)
            print(f"{database.url}: schema at revision {current} (this version's newest)")
        return 0
    report = inspect_database(url)
    print(report.text())
    return 0 if report.current else 1


def cmd_import(args: argparse.Namespace) -> int:
    path: Path = args.file
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from exc
    codec = get_protocol(args.protocol).create()
    events = codec.receive_data(data)
    if codec.stats.frames_ok == 0:
        raise ConfigError(
            f"no valid {args.protocol} frame in {path} ({len(data)} bytes): "
            "check the file and the --protocol"
        )
    cut = _incomplete_tail(args.protocol, data)
    if cut:  # recorded too, at the capture's last time: the record says it ends early
        events.append(DeviceEvent(DeviceEventKind.FRAME_REJECTED, f"the capture ends in the "
                                  f"middle of a frame ({cut} bytes): the file is truncated"))
    recorder = Recorder(0, device_time=True)
    stamped = recorder.handle(events)
    readings = [e for e in stamped if isinstance(e, Reading)]
    device_events = [e for e in stamped if isinstance(e, DeviceEvent)]
    waveforms = [e for e in stamped if isinstance(e, WaveformBlock)]
    times = [r.time for r in readings]
    database = _open_db(args)
    try:
        principal = login(args, database.engine, Action.CHART,
                          what="import a capture").principal
        repo = database.repository
        first = min(times) if times else SystemClock().now()
        sid = repo.create_session(source="import", protocol=args.protocol, port=str(path),
                                  patient_id=args.patient, started=first,
                                  by=principal.display_name if principal else None)
        repo.insert_readings(sid, readings)
        repo.insert_device_events(sid, device_events)
        if waveforms:
            repo.insert_waveforms(sid, waveforms)
        repo.end_session(sid, max(times) if times else first)
    finally:
        database.close()
    counts = ", ".join(f"{k} {v}" for k, v in sorted(recorder.counts.items()))
    print(sid)
    print(
        f"session {sid}: {len(readings)} readings ({counts or 'none'}) from "
        f"{codec.stats.frames_ok} frames, {codec.stats.frames_rejected} rejected frames"
        + (f"; the file is truncated: its last {cut} bytes are an incomplete frame, "
           "imported up to the frame before" if cut else ""),
        file=sys.stderr,
    )
    return 0


#: Longer than any protocol's frame: the end of a capture searched for a frame cut off.
_TAIL_BYTES = 4096


def _incomplete_tail(protocol: str, data: bytes) -> int:
    """How many bytes at the end of a capture belong to no complete frame (a file cut off
    mid-frame); line endings after the last frame do not count. The codec is the judge:
    the shortest piece of the tail holding all of its frames ends where the last one does."""
    tail = data[-_TAIL_BYTES:]

    def frames(n: int) -> int:
        codec = get_protocol(protocol).create()
        codec.receive_data(tail[:n])
        return codec.stats.frames_ok + codec.stats.frames_rejected

    whole, low, high = frames(len(tail)), 0, len(tail)
    while low < high:
        mid = (low + high) // 2
        if frames(mid) >= whole:
            high = mid
        else:
            low = mid + 1
    return len(tail[low:].rstrip(b"\r\n"))


def cmd_sessions(args: argparse.Namespace) -> int:
    database = _open_db(args)
    try:
        from infusion_monitor.session.resume import interrupted_sessions

        login(args, database.engine, Action.REVIEW, what="list the sessions")
        sessions = database.repository.list_sessions()
        interrupted = interrupted_sessions(database)
    finally:
        database.close()
    rows = [
        {
            "id": s.id, "started_utc": iso_z(s.started),
            "ended_utc": iso_z(s.ended) if s.ended is not None else None,
            "source": s.source, "protocol": s.protocol, "port": s.port,
            "patient_id": s.patient_id, "readings": s.n_readings, "events": s.n_events,
            "state": _session_state(s, interrupted),
        }
        for s in sessions
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no sessions yet", file=sys.stderr)
        return 0
    print(f"{'id':>5}  {'started (UTC)':19}  {'ended (UTC)':19}  {'source':7} {'protocol':9} "
          f"{'patient':12} {'readings':>8}  state")
    for s in sessions:
        ended = s.ended.strftime("%Y-%m-%d %H:%M:%S") if s.ended else "(open)"
        print(f"{s.id:>5}  {s.started.strftime('%Y-%m-%d %H:%M:%S'):19}  {ended:19}  "
              f"{s.source:7} {s.protocol:9} {s.patient_id or '-':12} {s.n_readings:>8}  "
              f"{_session_state(s, interrupted)}")
    return 0


def _session_state(s, interrupted: set[int]) -> str:
    """open (recording, or left open by a crash: ``record --resume``), interrupted (closed
    as such), or ended."""
    if s.ended is None:
        return "open"
    return "interrupted" if s.id in interrupted else "ended"


def _load_readings(database, args: argparse.Namespace, _access):
    database.repository.get_session(args.session)  # a clear error for a missing session
    return database.repository.readings(args.session)


def _load_minutes(database, args: argparse.Namespace, _access):
    from infusion_monitor.export.minutes_csv import session_minute_rows

    return session_minute_rows(database, args.session, SystemClock())


def _load_alarms(database, args: argparse.Namespace, _access):
    from infusion_monitor.store.alarm_log import AlarmLog

    database.repository.get_session(args.session)
    return AlarmLog(database.engine).alarms(args.session)


def _load_record(database, args: argparse.Namespace, access):
    from infusion_monitor.export.record import load_session_record

    return load_session_record(database, args.session, access=access)


def _text_export(fmt: str, args: argparse.Namespace):
    """(load, write, what) for a text format; imports only what that format needs."""
    if fmt == "csv":
        from infusion_monitor.export.csv_readings import write_readings_csv
        return _load_readings, write_readings_csv, "readings"
    if fmt == "minutes-csv":
        from infusion_monitor.export.minutes_csv import write_minutes_csv
        return _load_minutes, write_minutes_csv, "minutes"
    if fmt == "alarms-csv":
        from infusion_monitor.export.alarms_csv import write_alarms_csv
        return _load_alarms, write_alarms_csv, "alarms"
    if fmt == "fhir":
        from infusion_monitor.export.fhir import write_fhir
        return _load_record, write_fhir, "resources in one FHIR Bundle"
    from infusion_monitor.export.hl7v2 import write_hl7

    def write(record, out):
        return write_hl7(record, out, per_minute=args.per_minute)

    return _load_record, write, "HL7 ORU^R01 message(s)"


def cmd_export(args: argparse.Namespace) -> int:
    """Every text export: load from the store, then write to stdout or ``-o FILE``."""
    if args.format == "pdf":
        return _export_pdf(args)
    load, write, what = _text_export(args.format, args)
    if args.output is not None:
        _check_output(args.output)
    database = _open_db(args, existing=True)
    try:
        access = _export_login(database, args)
        data = load(database, args, access)
        _audit_export(database, args, access)
    finally:
        database.close()
    if args.output is None:
        write(data, sys.stdout)
        return 0
    try:
        # newline="": CSV rows and HL7's \r segment separators reach the file unchanged.
        with args.output.open("w", newline="", encoding="utf-8") as f:
            n = write(data, f)
    except OSError as exc:
        raise ConfigError(f"cannot write {args.output}: {exc.strerror or exc}") from exc
    print(f"wrote {n} {what} to {args.output}", file=sys.stderr)
    return 0


def _export_pdf(args: argparse.Namespace) -> int:
    from infusion_monitor.export.pdf import DEFAULT_CLINIC, write_pdf
    from infusion_monitor.export.record import load_session_record

    if args.output is None or str(args.output) == "-":
        raise UsageError("--format pdf writes a binary file: give one with -o FILE "
                         "(it is never written to the terminal)")
    _check_output(args.output)
    database = _open_db(args, existing=True)
    try:
        access = _export_login(database, args)
        record = load_session_record(database, args.session, access=access)
        _audit_export(database, args, access)
    finally:
        database.close()
    try:
        n = write_pdf(record, args.output, clinic_name=args.clinic or DEFAULT_CLINIC)
    except OSError as exc:
        raise ConfigError(f"cannot write {args.output}: {exc.strerror or exc}") from exc
    print(f"wrote a {n}-page PDF to {args.output}", file=sys.stderr)
    return 0


def _export_login(database, args: argparse.Namespace):
    """Who exports, checked before anything is read."""
    return login(args, database.engine, Action.EXPORT, session_id=args.session,
                 what=f"export a session ({args.format})")


def _audit_export(database, args: argparse.Namespace, access) -> None:
    """Record the export in the audit trail before any of it is written (it cannot be taken
    back once on stdout), so no export ever goes unrecorded; by the logged-in user, else the
    OS login."""
    from infusion_monitor.store.audit import AuditLog, current_user

    who = access.principal.display_name if access.principal is not None else current_user()
    AuditLog(database.engine).record_event(
        "export", actor=who, session_id=args.session,
        detail={"format": args.format, "file": str(args.output or "stdout")})


# -- audit trail ------------------------------------------------------------------------------
def _plural(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def cmd_audit(args: argparse.Namespace) -> int:
    """``audit verify``: 0 intact, 1 broken; ``audit show``: one session's entries."""
    from infusion_monitor.store.audit import AuditLog

    database = _open_db(args, existing=True)
    try:
        if args.audit_command == "show":
            login(args, database.engine, Action.REVIEW, session_id=args.session,
                  what="read a session's audit trail")
        else:
            login(args, database.engine, Action.VERIFY_AUDIT, session_id=args.session)
        log = AuditLog(database.engine)
        if args.audit_command == "show":
            database.repository.get_session(args.session)  # a clear error for a missing one
            return _audit_show(log.entries(args.session), args.all)
        result = log.verify(args.session)
    finally:
        database.close()
    if result.ok:
        print(f"audit trail intact: {_plural(result.entries, 'entry', 'entries')} in "
              f"{_plural(result.chains, 'chain', 'chains')}")
        if result.adopted:
            print(f"({_plural(result.adopted, 'session was', 'sessions were')} recorded before "
                  "the audit trail existed: covered from the upgrade on)", file=sys.stderr)
        return 0
    print(f"audit trail BROKEN {result.first}")
    for problem in result.problems[1:]:
        print(f"  also {problem}")
    print("infusion-monitor: the record was changed outside the app: keep a copy of this "
          "database as evidence and report it to the clinic's quality lead", file=sys.stderr)
    return 1


def _audit_show(entries, show_batches: bool) -> int:
    shown = [e for e in entries if show_batches or e.action != "record"]
    print(f"{'time (UTC)':24} {'seq':>6}  {'who':20} what — why")
    for e in shown:
        why = f" — {e.why}" if e.why else ""
        print(f"{iso_z(e.t):24} {e.seq:>6}  {e.actor:20} {e.what}{why}")
    if entries:  # the value to keep elsewhere (a printout, a backup): it anchors the chain
        head = entries[-1]
        print(f"chain {head.chain} head: seq {head.seq}, hash {head.hash}")
    hidden = len(entries) - len(shown)
    if hidden:
        print(f"({_plural(hidden, 'entry', 'entries')} covering device data not shown; "
              "--all lists them)", file=sys.stderr)
    return 0


# -- GUI --------------------------------------------------------------------------------------
def _recording_factory(database, clock: Clock, source: str, workstation: str | None = None,
                       access=None):
    from infusion_monitor.session.live import LiveRecording

    def start_recording(protocol: str, url: str, baud: int, *, resume: int | None = None,
                        **callbacks) -> LiveRecording:
        """Called by the window; ``callbacks`` route storage errors to its banner. The
        recording shares the window's ``access``: its core checks whoever is logged in.
        ``resume``: the open session the nurse chose to continue."""
        return LiveRecording(database, protocol=protocol, url=url, source=source,
                             clock=clock, baudrate=baud, workstation_id=workstation,
                             access=access, resume=resume, **callbacks)

    return start_recording


def _chair_recovery(database, args: argparse.Namespace):
    """This chair's sessions left open, for the window to offer at start."""
    from infusion_monitor.config import load_settings, resolve_workstation
    from infusion_monitor.session.resume import ChairRecovery

    return ChairRecovery(database, resolve_workstation(args.workstation, load_settings()))


def cmd_gui(args: argparse.Namespace) -> int:
    from infusion_monitor.ui.app import run_gui

    database = _open_db(args, gui=True)
    clock = SystemClock()
    access = Access(database.engine)
    try:
        return run_gui(clock=clock, access=access, start_recording=_recording_factory(
            database, clock, "gui", args.workstation, access),
            recovery=_chair_recovery(database, args))
    finally:
        database.close()


def cmd_review(args: argparse.Namespace) -> int:
    from infusion_monitor.ui.qt_browser import run_browser

    database = _open_db(args, gui=True)
    try:
        return run_browser(database, SystemClock(), Access(database.engine))
    finally:
        database.close()


def cmd_overview(args: argparse.Namespace) -> int:
    from infusion_monitor.ui.qt_overview import run_overview

    database = _open_db(args, gui=True)
    try:
        return run_overview(database.engine, SystemClock())
    finally:
        database.close()


def start_simulator(protocol: str, scenario: str, speed: float, seed: int,
                    start_utc: str) -> tuple[subprocess.Popen[str], str]:
    """Run the bundled simulator on a new pty; returns the process and its device path."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulators", "--protocol", protocol, "--scenario", scenario,
         "--pty", "--speed", str(speed), "--seed", str(seed), "--start", start_utc],
        stdout=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    path = proc.stdout.readline().strip()
    if not path:
        proc.kill()
        raise InfusionMonitorError("the simulator did not start; run "
                                   "'python -m simulators --pty' to see why")
    return proc, path


def cmd_demo(args: argparse.Namespace) -> int:
    from infusion_monitor.ui.app import run_gui

    database = _open_db(args, gui=True)
    access = Access(database.engine)
    try:
        recovery = _chair_recovery(database, args)
        # An accelerated clock runs ahead of the wall clock: a resumed demo goes on from there.
        clock = ScaledClock(args.speed, origin=recovery.clock_origin(SystemClock().now()))
    except BaseException:
        database.close()
        raise
    proc, path = start_simulator(args.protocol, args.scenario, args.speed, args.seed,
                                 iso_z(clock.origin))
    try:
        baud = get_protocol(args.protocol).serial.baudrate
        return run_gui(
            clock=clock, access=access,
            start_recording=_recording_factory(database, clock, "demo", args.workstation,
                                               access),
            initial=(args.protocol, path, baud),
            title=f"Infusion Monitor — DEMO ({args.scenario}, simulated patient)",
            recovery=recovery,
        )
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
        database.close()


def cmd_users_command(args: argparse.Namespace) -> int:
    database = _open_db(args)
    try:
        return cmd_users(args, database.engine)
    finally:
        database.close()


def cmd_defaults_command(args: argparse.Namespace) -> int:
    database = _open_db(args)
    try:
        return cmd_defaults(args, database.engine)
    finally:
        database.close()


_COMMANDS = {
    "db": cmd_db, "users": cmd_users_command, "defaults": cmd_defaults_command,
    "gui": cmd_gui, "demo": cmd_demo, "record": cmd_record, "detect": cmd_detect,
    "import": cmd_import,
    "sessions": cmd_sessions, "export": cmd_export, "review": cmd_review,
    "overview": cmd_overview, "audit": cmd_audit,
}

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
