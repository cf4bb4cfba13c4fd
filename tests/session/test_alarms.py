"""The alarm engine's rules one at a time: latching, acknowledgement, pause, escalation, flags."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from infusion_monitor.devices.base import DeviceEvent, DeviceEventKind
from infusion_monitor.errors import ChartingError, ConfigError
from infusion_monitor.session.alarms import AlarmEngine
from infusion_monitor.session.phases import Phase
from infusion_monitor.session.thresholds import Priority, ThresholdProfile
from infusion_monitor.vitals import Quality, Reading, Vital

T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)


def at(t: float) -> datetime:
    return T0 + timedelta(seconds=t)


def reading(vital: Vital, value: float, t: float, quality: Quality = Quality.OK) -> Reading:
    return Reading(vital, value, quality, t_received=at(t))


def spo2(engine: AlarmEngine, values: dict[float, float]) -> list:
    """Feed SpO2 values at their times, ticking each second in between."""
    changes = []
    for t, v in sorted(values.items()):
        changes += engine.tick(t - 0.5)
        changes += engine.on_events([reading(Vital.SPO2, v, t)])
    return changes


def nibp(engine: AlarmEngine, sys_: float, dia: float, t: float) -> list:
    mean = round(dia + (sys_ - dia) / 3)
    return engine.on_events([reading(Vital.NIBP_SYS, sys_, t), reading(Vital.NIBP_DIA, dia, t),
                             reading(Vital.NIBP_MEAN, mean, t)])


def engine() -> AlarmEngine:
    e = AlarmEngine(origin=T0)
    e.on_link_state("stopped", "", 0)  # these tests are not about the link watchdog
    return e


def kinds(changes) -> list[tuple[str, str, float]]:
    return [(c.kind.value, c.condition, c.t) for c in changes]


def rates(engine: AlarmEngine, vital: Vital, values: dict[float, float]) -> list:
    changes = []
    for t, v in sorted(values.items()):
        changes += engine.tick(t - 0.5)
        changes += engine.on_events([reading(vital, v, t)])
    return changes


# -- continuous conditions and delays ---------------------------------------------------------
def test_an_oximeter_pulse_rate_is_judged_as_the_heart_rate_when_no_ecg_hr_comes():
    e = engine()
    changes = rates(e, Vital.PR, {float(t): 118 for t in range(0, 30)})
    changes += e.tick(31)
    assert ("raised", "hr_high", 15) in kinds(changes)


def test_the_pulse_rate_is_ignored_while_an_ecg_heart_rate_comes():
    e = engine()
    changes = []
    for t in range(0, 40):
        changes += e.tick(t - 0.5)
        changes += e.on_events([reading(Vital.HR, 80, t), reading(Vital.PR, 125, t)])
    assert kinds(changes) == []
    # The ECG leads come off: after 10 s without an ECG HR, the pulse rate takes over.
    changes = rates(e, Vital.PR, {float(t): 125 for t in range(40, 80)})
    assert ("raised", "hr_high", 50 + 15) in kinds(changes)



def test_spo2_below_92_for_longer_than_15_s_raises_one_medium_alarm_at_onset_plus_delay():
    e = engine()
    changes = spo2(e, {0: 97, 5: 91, 10: 90, 15: 91, 20: 90, 25: 97})
    changes += e.tick(30)
    assert kinds(changes) == [("raised", "spo2_low", 20), ("ended", "spo2_low", 25),
                              ("cleared", "spo2_low", 25)]
    raised = changes[0]
    assert (raised.priority, raised.value, raised.limit, raised.latched) == (
        "medium", 90, 92, False)
    assert raised.time == at(20)


def test_a_breach_exactly_as_long_as_its_delay_raises_nothing():
    e = engine()
    changes = spo2(e, {0: 91, 5: 91, 10: 91, 15: 97}) + e.tick(60)
    assert changes == []


def test_the_start_does_not_depend_on_when_the_engine_is_ticked():
    e = engine()
    changes = e.on_events([reading(Vital.SPO2, 90, t) for t in (0, 5, 10, 15, 20)])
    changes += e.tick(22)
    assert [(c.kind, c.t) for c in changes] == [("raised", 15)]


def test_worse_values_are_logged_as_they_come():
    e = engine()
    changes = spo2(e, {0: 91, 5: 91, 10: 91, 15: 91, 20: 89, 25: 90, 30: 97})
    assert [(c.kind.value, c.t, c.value) for c in changes if c.kind != "cleared"] == [
        ("raised", 15, 91), ("worsened", 20, 89), ("ended", 30, 89)]


def test_an_artifact_neither_continues_nor_ends_a_breach():
    e = engine()
    changes = e.on_events([
        reading(Vital.SPO2, 90, 0), reading(Vital.SPO2, 101, 5, Quality.ARTIFACT),
        reading(Vital.SPO2, 90, 9), reading(Vital.SPO2, 90, 16),
    ])
    assert [c.t for c in changes if c.kind == "raised"] == [15]


def test_a_held_value_goes_stale_after_10_s_and_ends_the_breach():
    e = engine()
    changes = e.on_events([reading(Vital.SPO2, 90, 0), reading(Vital.SPO2, 90, 4)])
    changes += e.tick(60)  # nothing after t=4: the breach ends at 14 s, under its 15-s delay
    assert changes == []


def test_severe_and_plain_conditions_are_both_logged_but_only_the_severe_is_shown():
    e = engine()
    spo2(e, {t: 85 for t in range(0, 30, 5)})
    e.tick(26)
    assert sorted(a.condition for a in e.history()) == [
        "notify_attending", "spo2_low", "spo2_low_severe"]
    assert [(a.condition, a.text, a.marker) for a in e.active()] == [
        ("spo2_low_severe", "SpO2 85 < 88", "***")]


# -- latching and acknowledgement -------------------------------------------------------------
def test_high_alarm_latches_until_acknowledged_and_the_log_keeps_end_and_ack_apart():
    e = engine()
    spo2(e, {0: 85, 5: 85, 10: 85, 15: 97})
    changes = e.tick(20)
    (alarm,) = e.active()
    assert (alarm.condition, alarm.active, alarm.latched) == ("spo2_low_severe", False, True)
    assert alarm.ended == at(15)
    changes = e.acknowledge(alarm.uid, by="  nurse RN ", now=30)
    assert kinds(changes) == [("acknowledged", "spo2_low_severe", 30),
                              ("cleared", "spo2_low_severe", 30)]
    assert changes[0].by == "nurse RN"
    assert e.active() == []
    assert e.acknowledge(alarm.uid, by="nurse RN", now=31) == []  # nothing left to do


def test_acknowledged_high_alarm_stays_while_the_condition_holds_then_clears_at_its_end():
    e = engine()
    spo2(e, {0: 85, 5: 85, 10: 85})
    e.tick(11)
    (alarm,) = e.active()
    e.acknowledge(alarm.uid, by="nurse RN", now=12)
    assert e.active()[0].acknowledged_by == "nurse RN"
    changes = spo2(e, {15: 97})
    assert kinds(changes)[-2:] == [("ended", "spo2_low_severe", 15),
                                   ("cleared", "spo2_low_severe", 15)]


def test_medium_alarm_clears_by_itself():
    e = engine()
    nibp(e, 184, 100, 0)
    assert [a.condition for a in e.active()] == ["sbp_high"]
    nibp(e, 150, 90, 300)
    assert e.active() == []


def test_acknowledging_needs_a_name_and_a_known_alarm():
    e = engine()
    nibp(e, 184, 100, 0)
    (alarm,) = e.active()
    with pytest.raises(ChartingError, match="who"):
        e.acknowledge(alarm.uid, by=" ", now=1)
    with pytest.raises(ChartingError, match="no alarm"):
        e.acknowledge("nope", by="nurse", now=1)


# -- escalation -------------------------------------------------------------------------------
def test_unacknowledged_high_alarm_escalates_every_60_s_until_acknowledged():
    e = engine()
    changes = nibp(e, 205, 100, 0) + e.tick(200)
    assert [c.t for c in changes if c.kind == "escalated"] == [60, 120, 180]
    sev = next(a for a in e.active() if a.condition == "sbp_high_severe")
    assert sev.escalations == 3
    e.acknowledge(sev.uid, by="nurse", now=201)
    assert [c for c in e.tick(400) if c.kind == "escalated"] == []


def test_medium_alarms_do_not_escalate():
    e = engine()
    changes = nibp(e, 184, 100, 0) + e.tick(500)
    assert [c for c in changes if c.kind == "escalated"] == []


# -- audio pause ------------------------------------------------------------------------------
@pytest.mark.parametrize("minutes", [1, 2, 3])
def test_audio_pause_lasts_1_2_or_3_minutes_with_a_countdown(minutes):
    e = engine()
    (change,) = e.pause_audio(10, by="nurse", minutes=minutes)
    assert (change.kind, change.by, change.value) == ("paused", "nurse", minutes * 60)
    assert e.audio_paused_until == 10 + minutes * 60
    assert e.audio_pause_remaining(40) == minutes * 60 - 30
    assert e.audio_pause_remaining(10_000) == 0


def test_audio_pause_defaults_to_the_settings_value():
    e = AlarmEngine(origin=T0, audio_pause_s=180)
    e.pause_audio(0, by="nurse")
    assert e.audio_paused_until == 180


@pytest.mark.parametrize("bad", [0, 4, 5, 60, -1, 2.5, True, "2"])
def test_there_is_no_other_pause_and_no_permanent_mute(bad):
    with pytest.raises(ConfigError, match="1, 2 or 3 minutes"):
        engine().pause_audio(0, by="nurse", minutes=bad)


def test_a_new_high_alarm_ends_the_pause():
    e = engine()
    e.pause_audio(0, by="nurse", minutes=3)
    changes = nibp(e, 184, 100, 10)  # medium: the pause holds
    assert e.audio_paused_until == 180 and "resumed" not in [c.kind for c in changes]
    changes = nibp(e, 204, 100, 20)
    assert e.audio_paused_until is None
    assert ("resumed", "audio_paused", 20) in kinds(changes)


# -- attending flag ---------------------------------------------------------------------------
def test_bp_breach_raises_the_attending_flag_which_only_an_attending_can_take_down():
    e = engine()
    nibp(e, 150, 112, 0)  # DBP >= 110: medium, notify attending
    flag = e.flag()
    assert flag is not None and flag.priority is Priority.MEDIUM
    assert "DBP" in flag.text or "NIBP dia" in flag.text
    nibp(e, 150, 95, 300)  # the breach ends; the flag stays
    assert e.flag() is not None
    with pytest.raises(ChartingError, match="only an attending"):
        e.acknowledge_attending(by="nurse RN", role="nurse", now=310)
    with pytest.raises(ChartingError, match="only an attending"):
        e.acknowledge(flag.uid, by="nurse RN", now=310)
    changes = e.acknowledge(flag.uid, by="Dr A", role="attending", now=320)
    assert kinds(changes) == [("acknowledged", "notify_attending", 320),
                              ("ended", "notify_attending", 320),
                              ("cleared", "notify_attending", 320)]
    assert e.flag() is None


def test_any_high_physiological_alarm_raises_the_flag_but_technical_ones_do_not():
    e = AlarmEngine(origin=T0)
    e.tick(100)  # link lost: high, technical
    assert e.flag() is None
    e.on_minute_entry(101, rass=-4)
    assert e.flag() is not None and e.flag().priority is Priority.HIGH


def test_a_second_breach_while_the_flag_is_up_adds_to_it():
    e = engine()
    nibp(e, 184, 100, 0)
    changes = nibp(e, 204, 100, 300)
    triggered = [c for c in changes if c.kind == "triggered"]
    assert len(triggered) == 1 and triggered[0].priority == "high"


# -- discrete conditions ----------------------------------------------------------------------
def test_nibp_artifact_is_ignored():
    e = engine()
    changes = e.on_events([
        reading(Vital.NIBP_SYS, 96, 0, Quality.ARTIFACT),
        reading(Vital.NIBP_DIA, 98, 0, Quality.ARTIFACT),
    ])
    assert changes == []


def test_sbp_low_is_medium_and_notifies_the_attending():
    e = engine()
    changes = nibp(e, 85, 50, 0)
    assert [(c.condition, c.priority) for c in changes if c.kind == "raised"] == [
        ("sbp_low", "medium"), ("notify_attending", "medium")]


def test_prestart_bp_is_a_low_alarm_only_before_infusion_start():
    e = engine()
    nibp(e, 150, 95, 0)  # no phase known: not judged
    assert e.active() == []
    e.set_phase(Phase.BASELINE, 10)
    nibp(e, 150, 95, 20)
    assert sorted((a.condition, a.priority) for a in e.active()) == [
        ("prestart_dbp_high", Priority.LOW), ("prestart_sbp_high", Priority.LOW)]
    assert e.flag() is None  # the attending decides, but it is not an alarm flag
    changes = e.set_phase(Phase.INFUSION, 30)
    assert sorted(c.condition for c in changes if c.kind == "ended") == [
        "prestart_dbp_high", "prestart_sbp_high"]


@pytest.mark.parametrize(("rass", "distress", "want"), [
    (-3, None, [("rass_deep", "high", True)]),
    (-2, None, []),
    (2, None, [("agitation", "medium", False)]),
    (0, 2, [("distress", "medium", False)]),
    (None, 1, []),
])
def test_minute_entries(rass, distress, want):
    e = engine()
    changes = e.on_minute_entry(60, rass=rass, distress=distress)
    assert [(c.condition, c.priority, c.latched) for c in changes
            if c.kind == "raised" and c.condition != "notify_attending"] == want


def test_minute_entry_out_of_range_is_refused():
    with pytest.raises(ChartingError, match="rass"):
        engine().on_minute_entry(0, rass=7)


# -- technical conditions ---------------------------------------------------------------------
def test_probe_off_is_medium_after_15_s_and_high_after_60_s_and_never_latches():
    e = engine()
    e.on_events([DeviceEvent(DeviceEventKind.PARAMETER_STATUS, "invalid", Vital.SPO2,
                             t_received=at(100))])
    changes = e.tick(200)
    assert [(c.kind.value, c.t, c.priority, c.detail) for c in changes][:2] == [
        ("raised", 115, "technical", "SpO2: no valid value (invalid)"),
        ("escalated", 160, "technical", "priority high"),
    ]
    (alarm,) = e.active()
    assert alarm.priority is Priority.HIGH and not alarm.latched
    changes = e.on_events([reading(Vital.SPO2, 97, 201)])
    assert kinds(changes) == [("ended", "signal_lost", 201), ("cleared", "signal_lost", 201)]


def test_probe_off_event_counts_as_invalid():
    e = engine()
    e.on_events([DeviceEvent(DeviceEventKind.PROBE_OFF, "", Vital.HR, t_received=at(0))])
    assert [c.t for c in e.tick(20) if c.kind == "raised"] == [15]


def test_link_lost_after_10_s_without_frames_and_a_stopped_link_is_not_lost():
    e = AlarmEngine(origin=T0)
    e.on_events([reading(Vital.HR, 70, 0),
                 DeviceEvent(DeviceEventKind.LINK_DOWN, "port gone", t_received=at(2))])
    changes = e.tick(12)
    assert [(c.kind.value, c.t, c.detail) for c in changes] == [
        ("raised", 10, "Monitor link lost: no valid frame for 10 s: port gone")]
    e.on_link_state("stopped", "", 13)
    assert e.active() == [] and e.tick(100) == []


def test_link_lost_on_the_bar_says_the_latest_reason():
    """The link's watchdog notices garbage only as the alarm falls due: the bar must say so."""
    e = AlarmEngine(origin=T0)
    e.on_events([reading(Vital.HR, 70, 0)])
    e.tick(10.5)
    e.on_events([DeviceEvent(DeviceEventKind.NO_DATA, "no valid frame for 10 s, though 900 "
                             "bytes came: wrong baud rate or protocol?", t_received=at(10.6))])
    (shown,) = e.active()
    assert shown.text == ("Monitor link lost: no valid frame for 10 s: no valid frame for 10 s,"
                          " though 900 bytes came: wrong baud rate or protocol?")
    e.on_link_state("reconnecting", "retrying: /dev/ttyUSB0 is busy", 11)
    assert e.active()[0].text.endswith(": retrying: /dev/ttyUSB0 is busy")


def test_nibp_overdue_reminder_follows_the_phase_schedule():
    e = engine()
    e.set_phase(Phase.INFUSION, 0)
    nibp(e, 130, 80, 100)
    changes = e.tick(600)
    assert [(c.kind, c.condition, c.t, c.priority) for c in changes] == [
        ("raised", "nibp_overdue", 520, "technical")]
    changes = nibp(e, 130, 80, 610)
    assert ("ended", "nibp_overdue", 610) in kinds(changes)


def test_charting_overdue_after_three_unassessed_minutes():
    e = engine()
    assert e.on_unassessed_streak(2, 120) == []
    changes = e.on_unassessed_streak(3, 180)
    assert [(c.kind, c.condition, c.priority) for c in changes] == [
        ("raised", "charting_overdue", "low")]  # a reminder, not technical
    assert e.on_unassessed_streak(4, 240) == []
    assert e.active()[0].text == "4 minutes in a row not assessed"
    assert kinds(e.on_unassessed_streak(0, 250))[0] == ("ended", "charting_overdue", 250)


def test_storage_failing_is_a_high_technical_alarm():
    e = engine()
    changes = e.on_storage_error("disk full", 5)
    assert [(c.condition, c.priority) for c in changes] == [("storage_failing", "technical")]
    assert e.active()[0].priority is Priority.HIGH
    assert e.on_storage_recovered(9)[0].kind == "ended"


# -- responses, stop, overrides ---------------------------------------------------------------
def test_response_note_is_signed_and_kept_even_after_the_alarm_cleared():
    e = engine()
    nibp(e, 184, 100, 0)
    uid = e.active()[0].uid
    nibp(e, 150, 90, 300)
    (change,) = e.add_response(uid, "repeated NIBP: 176/104", by="nurse RN", now=310)
    assert (change.kind, change.detail, change.by) == ("response", "repeated NIBP: 176/104",
                                                       "nurse RN")
    with pytest.raises(ChartingError, match="empty"):
        e.add_response(uid, "  ", by="nurse RN", now=311)


def test_stop_ends_every_open_condition():
    e = engine()
    nibp(e, 184, 100, 0)
    changes = e.stop(50)
    assert kinds(changes) == [("ended", "sbp_high", 50), ("cleared", "sbp_high", 50)]
    assert changes[0].detail == "recording stopped"


def test_override_changes_the_limit_before_infusion_start_and_is_refused_after():
    e = engine()
    e.set_phase(Phase.BASELINE, 0)
    change = e.override("spo2_low", 90, by="Dr A", reason="COPD, baseline 91 %", now=5)
    assert (change.condition, change.old_value, change.new_value, change.by) == (
        "spo2_low", 92, 90, "Dr A")
    assert change.time == at(5)
    assert e.profile.changes == [change]
    assert spo2(e, {t: 91 for t in range(10, 60, 5)}) == []  # 91 is inside the new limit
    e.set_phase(Phase.INFUSION, 60)
    with pytest.raises(ChartingError, match="after infusion start"):
        e.override("spo2_low", 88.5, by="Dr A", reason="x", now=70)
    assert e.profile.limit("spo2_low") == 90


@pytest.mark.parametrize(("name", "value", "match"), [
    ("spo2_low", 87, "must stay below"),  # under the severe limit
    ("spo2_low", 120, "not a possible"),
    ("nope", 1, "unknown alarm condition"),
    ("rass_deep", -9, "between"),
])
def test_override_checks_the_limit(name, value, match):
    with pytest.raises(ChartingError, match=match):
        ThresholdProfile.defaults().override(name, value, by="Dr A", reason="r", phase=None,
                                             now=T0)


def test_override_needs_who_and_why():
    p = ThresholdProfile.defaults()
    with pytest.raises(ChartingError, match="reason"):
        p.override("spo2_low", 90, by="Dr A", reason=" ", phase=None, now=T0)
    with pytest.raises(ChartingError, match="who"):
        p.override("spo2_low", 90, by="", reason="r", phase=None, now=T0)


def test_defaults_are_clinical_md():
    p = ThresholdProfile.defaults()
    got = {c.name: (c.op, c.limit, c.delay_s, c.priority.value) for c in p.conditions()}
    assert got == {
        "spo2_low": ("<", 92, 15, "medium"), "spo2_low_severe": ("<", 88, 10, "high"),
        "hr_low": ("<", 50, 15, "medium"), "hr_high": (">", 110, 15, "medium"),
        "hr_low_severe": ("<", 40, 10, "high"), "hr_high_severe": (">", 130, 10, "high"),
        "sbp_high": (">=", 180, 0, "medium"), "dbp_high": (">=", 110, 0, "medium"),
        "sbp_high_severe": (">=", 200, 0, "high"), "dbp_high_severe": (">=", 120, 0, "high"),
        "sbp_low": ("<", 90, 0, "medium"), "prestart_sbp_high": (">", 140, 0, "low"),
        "prestart_dbp_high": (">", 90, 0, "low"), "rr_low": ("<", 10, 30, "medium"),
        "rr_high": (">", 30, 30, "medium"), "rass_deep": ("<=", -3, 0, "high"),
        "agitation": (">=", 2, 0, "medium"), "distress": (">=", 2, 0, "medium"),
    }


def test_display_text_shows_value_against_limit():
    e = engine()
    nibp(e, 184, 100, 0)
    assert e.active()[0].text == "NIBP sys 184 ≥ 180"
