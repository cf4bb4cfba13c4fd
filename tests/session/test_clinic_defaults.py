"""Clinic defaults (issue 7: "admins manage ... clinic defaults"): kept in the shared database,
changed only by an admin with a reason, audited with the old and new value, checked as a whole,
and in force at every chair's next session. Both engines."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, insert, select, text, update

from infusion_monitor.clock import ManualClock
from infusion_monitor.config import (
    CLINIC_KEYS,
    ConfigError,
    Settings,
    parse_settings,
    with_clinic_defaults,
)
from infusion_monitor.errors import ChartingError
from infusion_monitor.session import clinic_defaults
from infusion_monitor.session.alarm_monitor import AlarmMonitor, profile_from_settings
from infusion_monitor.session.auth import Access, Principal, Role
from infusion_monitor.session.thresholds import CONDITION_NAMES, ThresholdProfile, order_problem
from infusion_monitor.store import Database
from infusion_monitor.store.alarm_log import AlarmLog
from infusion_monitor.store.audit import AuditLog
from infusion_monitor.store.audit_verify import verify
from infusion_monitor.store.models_defaults import ClinicDefaultRow
from tests.session.test_auth import cheap_hashes, counts, last_entry, people, refused

__all__ = ["cheap_hashes", "people"]  # fixtures shared with the role tests

T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
POLICY = "clinic policy: SpO2 alarm at 93 % (governance minutes 2026-06)"


def change(db: Database, who: Principal | None, key: str, value: str | None,
           reason: object = POLICY, by: str | None = None):
    return clinic_defaults.change_default(db.engine, Access(db.engine, who), key, value,
                                          reason=reason, by=by)


def test_an_admin_sets_a_default_for_every_chair_with_an_audited_reason(
        db: Database, people: dict[Role, Principal]) -> None:
    admin = people[Role.ADMIN]
    done = change(db, admin, "thresholds.spo2_low", "93")
    assert (done.key, done.value, done.set_by, done.reason) == (
        "thresholds.spo2_low", 93.0, "A. Dmin", POLICY)
    assert {k: c.value for k, c in clinic_defaults.in_force(db.engine).items()} == {
        "thresholds.spo2_low": 93.0}
    entry = last_entry(db)
    assert (entry.action, entry.actor, entry.reason, entry.session_id) == (
        "clinic_default_set", "A. Dmin", POLICY, None)
    assert (entry.detail["key"], entry.detail["old"], entry.detail["new"]) == (
        "thresholds.spo2_low", None, 93.0)

    change(db, admin, "thresholds.spo2_low", "94", reason="second thoughts")
    assert last_entry(db).detail["old"] == 93.0
    change(db, admin, "thresholds.spo2_low", None, reason="back to clinical.md")
    assert last_entry(db).action == "clinic_default_unset"
    assert clinic_defaults.in_force(db.engine) == {}
    history = clinic_defaults.ClinicDefaults(db.engine).history()
    assert [(c.value, c.reason) for c in history] == [
        (93.0, POLICY), (94.0, "second thoughts"), (None, "back to clinical.md")]
    assert verify(db.engine).ok


@pytest.mark.parametrize("role", [Role.NURSE, Role.ATTENDING, Role.SUPERVISOR, None])
def test_only_an_admin_may_change_them(db: Database, people: dict[Role, Principal],
                                       role: Role | None) -> None:
    who = None if role is None else people[role]
    error = refused(db, lambda: change(db, who, "thresholds.spo2_low", "80"), who, None)
    assert "change the clinic default thresholds.spo2_low" in str(error)
    assert "only admins may" in str(error)
    assert clinic_defaults.in_force(db.engine) == {}


@pytest.mark.parametrize(("key", "value", "reason", "error", "words"), [
    ("thresholds.spo2_lo", "93", POLICY, ConfigError, "is not a clinic default"),
    ("workstation_id", "9", POLICY, ConfigError, "is not a clinic default"),
    ("escalation_s", "soon", POLICY, ConfigError, "must be a number"),
    ("escalation_s", "nan", POLICY, ConfigError, "finite"),
    ("escalation_s", "5", POLICY, ConfigError, "between 10 and 300"),
    ("alarm_audio_pause_s", "90", POLICY, ConfigError, "60, 120 or 180"),
    ("thresholds.spo2_low", "101", POLICY, ConfigError, "spo2_low"),
    ("thresholds.spo2_low", "80", POLICY, ConfigError, "must stay below spo2_low"),
    ("thresholds.spo2_low", "93", "   ", ChartingError, "reason is required"),
    ("thresholds.spo2_low", "93", "a\x00b", ChartingError, "control character"),
])
def test_bad_changes_are_refused_and_write_nothing(
        db: Database, people: dict[Role, Principal], key: str, value: str, reason: str,
        error: type[Exception], words: str) -> None:
    before, entries = counts(db), len(AuditLog(db.engine).entries())
    with pytest.raises(error, match=words):
        change(db, people[Role.ADMIN], key, value, reason=reason)
    assert counts(db) == before
    assert len(AuditLog(db.engine).entries()) == entries


def test_a_change_that_changes_nothing_is_refused(db: Database,
                                                  people: dict[Role, Principal]) -> None:
    admin = people[Role.ADMIN]
    with pytest.raises(ConfigError, match="is not set: nothing was changed"):
        change(db, admin, "escalation_s", None)
    change(db, admin, "escalation_s", "90")
    with pytest.raises(ConfigError, match="already 90: nothing was changed"):
        change(db, admin, "escalation_s", "90.0")


def test_without_accounts_the_typed_name_is_recorded(db: Database) -> None:
    done = change(db, None, "review_lock_min", "10", by="Clinic Manager")
    assert done.set_by == "Clinic Manager"
    assert last_entry(db).actor == "Clinic Manager"


def test_the_next_session_runs_with_them_and_its_limit_log_says_who_set_them(
        db: Database, people: dict[Role, Principal], tmp_path: Path) -> None:
    # This workstation's file sets two limits; the clinic overrides one of them.
    path = tmp_path / "settings.toml"
    path.write_text("escalation_s = 30\n[thresholds]\nspo2_low = 90\nhr_high = 120\n")
    local = parse_settings(path.read_text(), path)
    change(db, people[Role.ADMIN], "thresholds.spo2_low", "93")
    change(db, people[Role.ADMIN], "escalation_s", "45", reason="faster escalation")
    settings = clinic_defaults.effective_settings(local, db.engine)
    assert dict(settings.thresholds) == {"spo2_low": 93.0, "hr_high": 120.0}
    assert (settings.escalation_s, settings.path) == (45.0, path)

    sid = db.repository.create_session(source="gui", protocol="datex-s5", started=T0, by="ws")
    log = AlarmLog(db.engine)
    monitor = AlarmMonitor(sid, clock=ManualClock(T0), settings=settings, alarm_log=log)
    assert monitor.profile.limit("spo2_low") == 93.0
    monitor.start()
    monitor.stop()
    reasons = {c.condition: c.reason for c in log.limit_changes(sid)}
    assert reasons["spo2_low"].startswith("clinic default set by A. Dmin on ")
    assert reasons["spo2_low"].endswith(POLICY)
    assert reasons["hr_high"] == f"settings file {path}"


def test_a_workstation_file_that_crosses_a_clinic_limit_is_a_clear_error(
        db: Database, people: dict[Role, Principal], tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    path.write_text("[thresholds]\nspo2_low_severe = 91\n")
    local = parse_settings(path.read_text(), path)
    change(db, people[Role.ADMIN], "thresholds.spo2_low", "90.5")
    with pytest.raises(ConfigError, match=f"the clinic defaults with {path}"):
        clinic_defaults.effective_settings(local, db.engine)


def test_audit_verify_finds_a_default_changed_or_added_behind_the_apps_back(
        db: Database, people: dict[Role, Principal]) -> None:
    change(db, people[Role.ADMIN], "thresholds.spo2_low", "93")
    with db.engine.begin() as conn:
        stored = conn.execute(select(ClinicDefaultRow.value)).scalar_one()
        conn.execute(update(ClinicDefaultRow).values(value="85"))
    result = verify(db.engine)
    assert not result.ok
    assert "row digest mismatch: clinic_defaults id 1 changed since recorded" in str(
        result.first)
    with db.engine.begin() as conn:
        conn.execute(update(ClinicDefaultRow).values(value=stored))
        conn.execute(insert(ClinicDefaultRow).values(
            key="thresholds.hr_high", value="150", set_us=0, set_by="mallory", reason="x"))
    assert verify(db.engine).ok is False
    assert "row not in the audit trail: clinic_defaults id 2" in str(verify(db.engine).first)
    with db.engine.begin() as conn:
        conn.execute(text("DELETE FROM clinic_defaults WHERE id = 2"))
        assert conn.execute(select(func.count()).select_from(ClinicDefaultRow)).scalar() == 1
    assert verify(db.engine).ok


# -- the merge itself: pure ------------------------------------------------------------------
LIMIT = st.floats(min_value=0, max_value=300, allow_nan=False).map(lambda v: round(v, 1))


@given(st.dictionaries(st.sampled_from([f"thresholds.{c}" for c in CONDITION_NAMES]), LIMIT,
                       max_size=4))
def test_clinic_limits_are_in_force_exactly_when_the_whole_set_is_in_order(
        clinic: dict[str, float]) -> None:
    local = replace(Settings(), thresholds={"hr_high": 115.0})
    merged_limits = {**ThresholdProfile.defaults().limits(), "hr_high": 115.0,
                     **{k.partition(".")[2]: v for k, v in clinic.items()}}
    try:
        ThresholdProfile.from_settings(merged_limits, "test")
        sensible = order_problem(merged_limits) is None
    except ChartingError:  # a limit out of its own range
        sensible = False
    if not sensible:
        with pytest.raises(ConfigError):
            with_clinic_defaults(local, clinic)
        return
    got = with_clinic_defaults(local, clinic)
    assert profile_from_settings(got).limits() == merged_limits


def test_every_clinic_key_is_a_setting_the_file_knows() -> None:
    for key in CLINIC_KEYS:
        section, _, name = key.partition(".")
        body = f"[{section}]\n{name} = 1\n" if name else f"{key} = 1\n"
        try:
            parse_settings(body, Path("x.toml"))
        except ConfigError as exc:  # a value out of range is fine; an unknown key is not
            assert "unknown" not in str(exc), key
