"""``infusion-monitor defaults ...``: show, set and unset the clinic defaults (an admin's job).

The defaults live in the database, so every workstation using it starts its next session with
them; each change asks for a reason and goes into the clinic's audit trail.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from sqlalchemy import Engine

from infusion_monitor.cli_users import add_login_options, login
from infusion_monitor.clock import iso_z
from infusion_monitor.config import CLINIC_KEYS, Settings, load_settings
from infusion_monitor.session import clinic_defaults
from infusion_monitor.session.auth import Access, Action
from infusion_monitor.session.thresholds import ThresholdProfile
from infusion_monitor.store.clinic_defaults import ClinicDefaults

KEYS_HELP = f"one of: {', '.join(CLINIC_KEYS)}"


def add_defaults_parser(sub: Any) -> argparse.ArgumentParser:
    d = sub.add_parser("defaults", help="the clinic defaults (alarm limits, escalation, audio "
                       "pause, review lock) for every chair: show, history, set, unset")
    d_sub = d.add_subparsers(dest="defaults_command", metavar="ACTION", required=True)
    d_sub.add_parser("show", help="what each setting is at this workstation, and where it "
                     "comes from (clinic default, settings file or built-in)")
    d_sub.add_parser("history", help="every change of the clinic defaults: who, when, why")
    st = d_sub.add_parser("set", help="set a clinic default (admins; --reason required)")
    st.add_argument("key", help=KEYS_HELP)
    st.add_argument("value", help="a number, e.g. 92")
    un = d_sub.add_parser("unset", help="put a clinic default back to the built-in value")
    un.add_argument("key", help=KEYS_HELP)
    for sp in (st, un):
        sp.add_argument("--reason", required=True, help="why (kept in the audit trail)")
        sp.add_argument("--by", default=None, help="who (only while the database has no user "
                        "accounts; otherwise the --as user)")
    for sp in (d, *d_sub.choices.values()):
        sp.add_argument("--db", default=argparse.SUPPRESS, help="database URL or SQLite file")
        add_login_options(sp, suppress=True)
    return d


def cmd_defaults(args: argparse.Namespace, engine: Engine) -> int:
    command = args.defaults_command
    if command == "show":
        return _show(engine, load_settings())
    if command == "history":
        return _history(engine)
    access: Access = login(args, engine, Action.CHANGE_CLINIC_DEFAULTS,
                           what=f"change the clinic default {args.key}")
    done = clinic_defaults.change_default(
        engine, access, args.key, args.value if command == "set" else None,
        reason=args.reason, by=args.by)
    state = "built-in default" if done.value is None else f"{done.value:g}"
    print(f"{done.key} = {state} for every chair from its next session (set by {done.set_by})",
          file=sys.stderr)
    return 0


def _show(engine: Engine, local: Settings) -> int:
    found = clinic_defaults.in_force(engine)
    now, builtin = _flat(clinic_defaults.effective_settings(local, engine)), _flat(Settings())
    print(f"{'setting':34} {'value':>8}  source")
    for key in CLINIC_KEYS:
        if key in found:
            source = f"clinic default ({found[key].set_by}, {iso_z(found[key].set_at)[:16]})"
        elif now[key] != builtin[key]:
            source = f"settings file {local.path}"
        else:
            source = "built-in (clinical.md)"
        print(f"{key:34} {now[key]:>8g}  {source}")
    return 0


def _flat(settings: Settings) -> dict[str, float]:
    """Every clinic key's value in ``settings`` (built-in limits where it sets none)."""
    limits = {**ThresholdProfile.defaults().limits(), **settings.thresholds}
    return {"alarm_audio_pause_s": settings.alarm_audio_pause_s,
            "escalation_s": settings.escalation_s,
            "review_lock_min": settings.review_lock_s / 60,
            **{f"thresholds.{k}": v for k, v in limits.items()}}


def _history(engine: Engine) -> int:
    print(f"{'when (UTC)':20} {'setting':34} {'value':>8}  {'by':20} reason")
    for c in ClinicDefaults(engine).history():
        value = "(unset)" if c.value is None else f"{c.value:g}"
        print(f"{iso_z(c.set_at)[:19]:20} {c.key:34} {value:>8}  {c.set_by:20} "
              f"{' '.join(c.reason.split())}")
    return 0
