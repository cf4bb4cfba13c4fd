"""Which workstation (chair) a session belongs to: --workstation, environment, settings, host."""

from __future__ import annotations

from pathlib import Path

import pytest

from infusion_monitor import cli
from infusion_monitor.clock import ManualClock
from infusion_monitor.config import (
    WORKSTATION_ENV,
    Settings,
    parse_settings,
    resolve_workstation,
)
from infusion_monitor.errors import ConfigError
from infusion_monitor.session.live import LiveRecording
from infusion_monitor.store import open_database

HERE = Path("settings.toml")


@pytest.fixture(autouse=True)
def no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(WORKSTATION_ENV, raising=False)
    monkeypatch.setattr("socket.gethostname", lambda: "host-a")


def test_the_settings_file_names_the_workstation() -> None:
    assert parse_settings('workstation_id = " chair-4 "\n', HERE).workstation_id == "chair-4"
    assert parse_settings("", HERE).workstation_id is None


@pytest.mark.parametrize("value, message", [
    ("4", "must be a string"), ('""', "is empty"), ('"a\\tb"', "control characters"),
    (f'"{"x" * 256}"', "longer than 255"),
])
def test_a_bad_workstation_id_in_the_settings_is_refused(value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_settings(f"workstation_id = {value}\n", HERE)


def test_precedence_option_then_environment_then_settings_then_host_name(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = Settings(workstation_id="from-settings")
    assert resolve_workstation(None) == "host-a"
    assert resolve_workstation(None, settings) == "from-settings"
    monkeypatch.setenv(WORKSTATION_ENV, "  ")  # blank: as if unset
    assert resolve_workstation(None, settings) == "from-settings"
    monkeypatch.setenv(WORKSTATION_ENV, "from-env")
    assert resolve_workstation(None, settings) == "from-env"
    assert resolve_workstation("chair-2", settings) == "chair-2"
    with pytest.raises(ConfigError, match="--workstation is empty"):
        resolve_workstation(" ", settings)


def test_the_commands_take_a_workstation_option(capsys: pytest.CaptureFixture[str]) -> None:
    parser = cli.build_parser()
    record = ["record", "--protocol", "datex-s5", "--port", "loop://"]
    assert parser.parse_args([*record, "--workstation", "chair-2"]).workstation == "chair-2"
    assert parser.parse_args(["--workstation", "chair-3", *record]).workstation == "chair-3"
    assert parser.parse_args(record).workstation is None
    assert parser.parse_args(["demo", "--workstation", "chair-5"]).workstation == "chair-5"
    assert parser.parse_args(["--workstation", "chair-6"]).workstation == "chair-6"  # the GUI
    with pytest.raises(SystemExit) as exc:
        parser.parse_args([*record, "--workstation", ""])
    assert exc.value.code == 2 and "--workstation is empty" in capsys.readouterr().err


def test_a_live_recording_stores_its_workstation(db_url: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(WORKSTATION_ENV, "chair-env")
    with open_database(db_url) as database:
        made = []
        for explicit in (None, "chair-7"):
            rec = LiveRecording(database, protocol="datex-s5", url="loop://", source="record",
                                clock=ManualClock(), settings=Settings(),
                                workstation_id=explicit)
            rec.stop()
            made.append(database.repository.get_session(rec.session_id).workstation_id)
    assert made == ["chair-env", "chair-7"]
