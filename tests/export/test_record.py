"""The export snapshot holds the whole session as stored."""

from __future__ import annotations

from datetime import UTC, datetime

from infusion_monitor.export.record import load_session_record, session_limits
from infusion_monitor.session.phases import Phase
from infusion_monitor.store.alarm_log import LimitChangeRecord


def test_snapshot_holds_everything_the_session_stored(simulated_session):
    db, sid = simulated_session.database, simulated_session.session_id
    record = load_session_record(db, sid)
    assert len(record.readings) == len(db.repository.readings(sid)) > 2000
    assert [m.phase for m in record.markers] == list(Phase)
    assert record.check_in is not None and record.check_in.patient_id == "MRN-0042"
    assert len(record.minutes) == record.rems.monitored_minutes == 71
    amended = next(r for r in record.minutes if r.vitals.minute == simulated_session.amended_minute)
    # The amendment is the current entry; the original stays, as history.
    assert amended.entry.reason == simulated_session.amend_reason
    assert amended.entry.amends_id == amended.history[0].id
    assert (amended.history[0].dissociation, amended.history[0].rass) == (2, -1)
    severe = [a for a in record.alarms if a.condition == "sbp_high_severe"]
    assert len(severe) == 1 and severe[0].acknowledged_by == simulated_session.nurse
    assert simulated_session.response_text in severe[0].response
    assert record.limits["sbp_high"] == 180 and record.limits["spo2_low"] == 92
    assert record.equipment_id.startswith("datex-s5@/dev/ttyUSB0@")


def test_session_limits_apply_the_recorded_changes_in_order():
    t = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
    changes = [
        LimitChangeRecord("spo2_low", 92, 90, t, "clinic settings", "clinic policy", 1),
        LimitChangeRecord("sbp_high", 180, 170, t, "Dr A", "prior stroke", 1),
        LimitChangeRecord("spo2_low", 90, 91, t, "Dr A", "COPD: compromise", 1),
    ]
    limits = session_limits(changes)
    assert limits["spo2_low"] == 91 and limits["sbp_high"] == 170 and limits["hr_high"] == 110
