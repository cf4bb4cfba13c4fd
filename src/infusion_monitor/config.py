"""The clinic's settings file (TOML): alarm limits and alarm behaviour that differ from defaults.

It lives at ``user_config_dir("infusion-monitor")/settings.toml`` unless a path is given::

    alarm_audio_pause_s = 120     # default audio pause: 60, 120 or 180 s
    escalation_s = 60             # an unacknowledged high alarm repeats this often

    [thresholds]                  # condition names from session/thresholds.py
    spo2_low = 90

A missing default file means the defaults of clinical.md. A wrong type, an unknown key or a
limit that makes no sense is a ``ConfigError`` with one line naming the key and the file.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
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


def default_settings_path() -> Path:
    return Path(platformdirs.user_config_dir("infusion-monitor")) / SETTINGS_NAME


@dataclass(frozen=True, slots=True)
class Settings:
    """What a clinic set; everything not set is a clinical.md default."""

    thresholds: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    alarm_audio_pause_s: int = 120
    escalation_s: float = 60.0
    path: Path | None = None


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
    known = {"thresholds", "alarm_audio_pause_s", "escalation_s"}
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
    return Settings(MappingProxyType(limits), int(pause), escalation, path)


def _number(data: dict[str, Any], key: str, default: float, path: Path) -> float:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ConfigError(f"{key} must be a number, not {value!r} in {path}")
    return float(value)
