"""``infusion-monitor defaults``: what a clinic's admin and a chair's nurse see and do (SQLite;
the role checks through the CLI, on both engines, are in test_cli_users.py)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from infusion_monitor import cli


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def rows(out: str) -> dict[str, tuple[str, str]]:
    """``defaults show``: setting -> (value, source)."""
    found = {}
    for line in out.splitlines()[1:]:
        key, value, source = line.split(maxsplit=2)
        found[key] = (value, source)
    return found


def test_show_set_history_and_unset(capsys, monkeypatch, tmp_path: Path) -> None:
    db = str(tmp_path / "clinic.db")
    settings = tmp_path / "settings.toml"
    settings.write_text("[thresholds]\nhr_high = 120\n")
    monkeypatch.setattr("infusion_monitor.config.default_settings_path", lambda: settings)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    code, out, _ = run(capsys, "--db", db, "defaults", "show")
    assert code == 0
    shown = rows(out)
    assert shown["thresholds.spo2_low"] == ("92", "built-in (clinical.md)")
    assert shown["thresholds.hr_high"] == ("120", f"settings file {settings}")

    assert run(capsys, "--db", db, "defaults", "set", "thresholds.spo2_low", "93", "--reason",
               "governance 2026-06", "--by", "C. Manager") == (
        0, "", "thresholds.spo2_low = 93 for every chair from its next session (set by "
        "C. Manager)\n")
    value, source = rows(run(capsys, "--db", db, "defaults", "show")[1])["thresholds.spo2_low"]
    assert value == "93" and source.startswith("clinic default (C. Manager, ")

    code, _, err = run(capsys, "--db", db, "defaults", "set", "thresholds.spo2_low", "80",
                       "--reason", "typo")
    assert code == 1
    # Checked against the built-in limits (one workstation's file is not the clinic's).
    assert err == ("infusion-monitor: thresholds: spo2_low_severe (88) must stay below "
                   "spo2_low (80) in the clinic defaults\n")
    assert run(capsys, "--db", db, "defaults", "unset", "thresholds.spo2_low", "--reason",
               "back to clinical.md")[0] == 0
    assert rows(run(capsys, "--db", db, "defaults", "show")[1])["thresholds.spo2_low"][0] == "92"

    code, out, _ = run(capsys, "--db", db, "defaults", "history")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 3
    assert lines[1].split()[1:3] == ["thresholds.spo2_low", "93"]
    assert lines[1].endswith("governance 2026-06")
    assert "(unset)" in lines[2] and "back to clinical.md" in lines[2]


def test_set_needs_a_reason(capsys, tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--db", str(tmp_path / "c.db"), "defaults", "set", "escalation_s", "45"])
    assert exit_.value.code == 2
    assert "--reason" in capsys.readouterr().err
