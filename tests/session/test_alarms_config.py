"""The clinic settings file: thresholds and alarm behaviour, with one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from infusion_monitor.config import Settings, default_settings_path, load_settings
from infusion_monitor.errors import ConfigError
from infusion_monitor.session.alarm_monitor import profile_from_settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "settings.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_thresholds_and_alarm_behaviour_are_read(tmp_path):
    path = write(tmp_path, "alarm_audio_pause_s = 60\nescalation_s = 90\n"
                           "[thresholds]\nspo2_low = 90\nsbp_high = 175.5\n")
    s = load_settings(path)
    assert dict(s.thresholds) == {"spo2_low": 90, "sbp_high": 175.5}
    assert (s.alarm_audio_pause_s, s.escalation_s, s.path) == (60, 90, path)
    profile = profile_from_settings(s)
    assert profile.limit("spo2_low") == 90 and profile.limit("sbp_high") == 175.5
    assert profile.limit("hr_low") == 50
    assert [(c.condition, c.old_value, c.new_value, c.by) for c in profile.changes] == [
        ("spo2_low", 92, 90, "clinic settings"), ("sbp_high", 180, 175.5, "clinic settings")]
    assert str(path) in profile.changes[0].reason


@pytest.mark.parametrize(("text", "match"), [
    ("[thresholds]\nspo2_low = \"ninety\"\n", r"thresholds\.spo2_low must be a number"),
    ("[thresholds]\nspo2_low = true\n", r"thresholds\.spo2_low must be a number"),
    ("[thresholds]\nspo2_lo = 90\n", "unknown threshold 'spo2_lo'"),
    ("volume = 3\n", "unknown setting 'volume'"),
    ("thresholds = 3\n", "must be a table"),
    ("[thresholds]\nspo2_low = 86\n", "spo2_low_severe .88. must stay below spo2_low .86."),
    ("[thresholds]\nhr_high = 400\n", "not a possible HR value"),
    ("alarm_audio_pause_s = 600\n", "alarm_audio_pause_s must be 60, 120 or 180"),
    ("alarm_audio_pause_s = \"2 min\"\n", "alarm_audio_pause_s must be a number"),
    ("escalation_s = 0\n", "escalation_s must be between"),
    ("[thresholds\n", "is not valid TOML"),
])
def test_a_bad_file_is_one_line_naming_the_key_and_the_file(tmp_path, text, match):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=match) as err:
        load_settings(path)
    message = str(err.value)
    assert "\n" not in message and str(path) in message


def test_a_named_file_must_exist_but_the_default_may_be_missing(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "empty"))
    assert default_settings_path() == tmp_path / "empty" / "infusion-monitor" / "settings.toml"
    assert load_settings() == Settings()


def test_the_default_file_is_read_from_the_user_config_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    (tmp_path / "infusion-monitor").mkdir()
    (tmp_path / "infusion-monitor" / "settings.toml").write_text("[thresholds]\nhr_high = 120\n")
    assert dict(load_settings().thresholds) == {"hr_high": 120}
