"""The clinic's settings file (TOML): alarm limits and alarm behaviour that differ from defaults.

It lives at ``user_config_dir("infusion-monitor")/settings.toml`` unless a path is given::

    alarm_audio_pause_s = 120     # default audio pause: 60, 120 or 180 s
    escalation_s = 60             # an unacknowledged high alarm repeats this often
    workstation_id = "chair-4"    # this workstation's name on the clinic overview
    review_lock_min = 5           # review windows lock after this many idle minutes (1-60)

    [thresholds]                  # condition names from session/thresholds.py
    spo2_low = 90

A missing default file means the defaults of clinical.md. A wrong type, an unknown key or a
limit that makes no sense is a ``ConfigError`` with one line naming the key and the file.

The workstation ID (which chair a session was recorded at) is, in order: ``--workstation``,
``$INFUSION_MONITOR_WORKSTATION``, ``workstation_id`` here, else the host name.
"""

from __future__ import annotations

import math
import os
import socket
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

import platformdirs

from infusion_monitor.errors import ConfigError
from infusion_monitor.session.thresholds import (
    CONDITION_NAMES,
    ThresholdProfile,
    limit_problem,
    order_problem,
)

SETTINGS_NAME = "settings.toml"
PAUSE_SECONDS = (60, 120, 180)
WORKSTATION_ENV = "INFUSION_MONITOR_WORKSTATION"
#: ``sessions.workstation_id`` holds at most this many characters.
WORKSTATION_MAX = 255


def default_settings_path() -> Path:
    return Path(platformdirs.user_config_dir("infusion-monitor")) / SETTINGS_NAME


@dataclass(frozen=True, slots=True)
class Settings:
    """What a clinic set; everything not set is a clinical.md default."""

    thresholds: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    alarm_audio_pause_s: int = 120
    escalation_s: float = 60.0
    path: Path | None = None
    workstation_id: str | None = None  # None: the host name (--workstation and the env win)
    review_lock_s: float = 300.0  # review windows lock after this long without input
    #: Where a threshold came from when not this file: ``{"spo2_low": "clinic default set
    #: by ..."}`` (the session's limit log says so).
    sources: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))


def load_settings(path: Path | None = None) -> Settings:
    """Read the settings file; a named file must exist, the default one may not."""
    explicit = path is not None
    path = path if path is not None else default_settings_path()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if explicit:
            raise ConfigError(f"settings file {path} does not exist") from None
        return Settings()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read settings file {path}: {exc}") from exc
    return parse_settings(text, path)


def parse_settings(text: str, path: Path) -> Settings:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from exc
    return settings_from_data(data, path)


def settings_from_data(data: Mapping[str, Any], path: Path | str) -> Settings:
    """Check what a settings file (or the clinic defaults, ``path`` naming them) holds."""
    known = {"thresholds", "alarm_audio_pause_s", "escalation_s", "workstation_id",
             "review_lock_min"}
    for key in data:
        if key not in known:
            raise ConfigError(f"unknown setting {key!r} in {path} (known: "
                              f"{', '.join(sorted(known))})")
    thresholds = data.get("thresholds", {})
    if not isinstance(thresholds, dict):
        raise ConfigError(f"'thresholds' in {path} must be a table ([thresholds])")
    limits: dict[str, float] = {}
    for key, value in thresholds.items():
        if key not in CONDITION_NAMES:
            raise ConfigError(f"unknown threshold {key!r} in {path} (known: "
                              f"{', '.join(CONDITION_NAMES)})")
        problem = limit_problem(key, value)
        if problem is not None:
            raise ConfigError(f"thresholds.{problem} in {path}")
        limits[key] = float(value)
    merged = {**ThresholdProfile.defaults().limits(), **limits}
    problem = order_problem(merged)
    if problem is not None:
        raise ConfigError(f"thresholds: {problem} in {path}")
    pause = _number(data, "alarm_audio_pause_s", 120, path)
    if pause not in PAUSE_SECONDS:
        raise ConfigError(f"alarm_audio_pause_s must be 60, 120 or 180, not {pause:g} in {path}")
    escalation = _number(data, "escalation_s", 60.0, path)
    if not 10 <= escalation <= 300:
        raise ConfigError(f"escalation_s must be between 10 and 300 s, not {escalation:g} "
                          f"in {path}")
    lock_min = _number(data, "review_lock_min", 5.0, path)
    if not 1 <= lock_min <= 60:
        raise ConfigError(f"review_lock_min must be between 1 and 60 minutes, not "
                          f"{lock_min:g} in {path}")
    workstation = data.get("workstation_id")
    if workstation is not None:
        if not isinstance(workstation, str):
            raise ConfigError(f"workstation_id must be a string, not {workstation!r} in {path}")
        workstation = check_workstation(workstation, f"workstation_id in {path}")
    return Settings(MappingProxyType(limits), int(pause), escalation,
                    path if isinstance(path, Path) else None,
                    workstation_id=workstation, review_lock_s=lock_min * 60)


def check_workstation(name: str, where: str) -> str:
    """A workstation ID as stored: trimmed, not empty, printable, at most 255 characters."""
    name = name.strip()
    if not name:
        raise ConfigError(f"{where} is empty: name the workstation, e.g. chair-4")
    if len(name) > WORKSTATION_MAX:
        raise ConfigError(f"{where} is longer than {WORKSTATION_MAX} characters")
    if not name.isprintable():
        raise ConfigError(f"{where} {name!r} has control characters: use letters, digits, -")
    return name


def resolve_workstation(explicit: str | None, settings: Settings | None = None) -> str:
    """This workstation's ID: ``explicit`` (``--workstation``), else the environment, else the
    settings file, else the host name; ConfigError for a blank or unprintable one."""
    if explicit is not None:
        return check_workstation(explicit, "--workstation")
    env = os.environ.get(WORKSTATION_ENV, "")
    if env.strip():  # blank counts as unset, as $INFUSION_MONITOR_DB does
        return check_workstation(env, f"${WORKSTATION_ENV}")
    if settings is not None and settings.workstation_id is not None:
        return settings.workstation_id
    return socket.gethostname()


def _number(data: Mapping[str, Any], key: str, default: float, path: Path | str) -> float:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{key} must be a number, not {value!r} in {path}")
    return float(value)


#: What an admin sets for the whole clinic, in the shared database (``infusion-monitor
#: defaults``); ``workstation_id`` names one workstation and stays in its own file.
CLINIC_KEYS = ("alarm_audio_pause_s", "escalation_s", "review_lock_min",
               *(f"thresholds.{name}" for name in CONDITION_NAMES))
CLINIC_DEFAULTS = "the clinic defaults"


def clinic_key(key: str) -> str:
    """``key`` if it is a clinic default's name; ConfigError listing them otherwise."""
    if key not in CLINIC_KEYS:
        raise ConfigError(f"{key!r} is not a clinic default (known: {', '.join(CLINIC_KEYS)})")
    return key


def clinic_value(key: str, text: str) -> float:
    """The number ``text`` says, for ``key``: ConfigError unless a finite number."""
    try:
        value = float(text.strip())
    except ValueError:
        raise ConfigError(f"{key} must be a number, not {text!r}") from None
    if not math.isfinite(value):
        raise ConfigError(f"{key} must be a finite number, not {text!r}")
    return value


def with_clinic_defaults(settings: Settings, clinic: Mapping[str, float],
                         sources: Mapping[str, str] | None = None) -> Settings:
    """``settings`` with the clinic defaults (``{"thresholds.spo2_low": 92, ...}``) in force.

    A clinic default wins over the workstation's file: an admin's change must reach every
    chair. The combination is checked as a whole (a file's limit may not cross a clinic's);
    ConfigError names both. ``sources`` says, per key, who set it (for the limit log).
    """
    if not clinic:
        return settings
    data: dict[str, Any] = {
        "thresholds": dict(settings.thresholds),
        "alarm_audio_pause_s": settings.alarm_audio_pause_s,
        "escalation_s": settings.escalation_s,
        "review_lock_min": settings.review_lock_s / 60,
    }
    for key, value in clinic.items():
        section, _, name = clinic_key(key).partition(".")
        if name:
            data[section][name] = value
        else:
            data[key] = value
    where = CLINIC_DEFAULTS if settings.path is None else f"{CLINIC_DEFAULTS} with {settings.path}"
    merged = settings_from_data(data, where)
    origin = {k.partition(".")[2]: (sources or {}).get(k, CLINIC_DEFAULTS)
              for k in clinic if k.startswith("thresholds.")}
    return replace(merged, path=settings.path, workstation_id=settings.workstation_id,
                   sources=MappingProxyType({**settings.sources, **origin}))
