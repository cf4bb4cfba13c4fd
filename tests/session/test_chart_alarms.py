"""What the nurse charts reaches the alarm engine: phases, RASS/distress, unassessed minutes."""

from __future__ import annotations

from datetime import UTC, datetime

from infusion_monitor.clock import ManualClock
from infusion_monitor.session.alarm_monitor import AlarmMonitor
from infusion_monitor.session.chart_alarms import ChartAlarmBridge
from infusion_monitor.session.lifecycle import SessionChart
from infusion_monitor.store import Database
from infusion_monitor.vitals import Reading, Vital

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CHART_CONDITIONS = {"charting_overdue", "rass_deep", "agitation", "distress"}
CHECK_IN = {
    "patient_id": "MRN-7", "patient_name": "Test Patient", "birth_date": "1980-01-02",
    "weight_kg": 70.0, "dose_mg_per_kg": 0.5, "planned_minutes": 40,
    "attending": "Dr A", "nurse": "nurse.n", "by": "nurse.n",
}


class Setup:
    def __init__(self, db: Database) -> None:
        self.clock = ManualClock(T0)
        sid = db.repository.create_session(source="gui", protocol="datex-s5", started=T0)
        self.chart = SessionChart.open(db, sid, self.clock)
        self.alarms = AlarmMonitor(sid, clock=self.clock)  # ticked by hand, no thread
        self.changes: list = []
        self.alarms.add_listener(self.changes.extend)
        self.bridge = ChartAlarmBridge(self.chart, self.alarms)

    def vitals(self, seconds: int) -> None:
        for _ in range(seconds):
            t = self.clock.now()
            self.chart.observe([Reading(Vital.HR, 80, t_received=t),
                                Reading(Vital.SPO2, 98, t_received=t)])
            self.clock.advance(1)

    def to_infusion(self) -> None:
        self.chart.check_in(**CHECK_IN)
        self.chart.start_baseline("nurse.n")
        t = self.clock.now()
        self.chart.observe([Reading(v, x, t_received=t) for v, x in
                            ((Vital.NIBP_SYS, 120), (Vital.NIBP_DIA, 80), (Vital.NIBP_MEAN, 93))])
        self.vitals(60)
        self.chart.start_infusion("nurse.n")

    def raised(self) -> list[tuple[str, str]]:
        """Raised chart-driven alarms (no monitor feeds this engine, so link_lost is ignored)."""
        return [(c.condition, c.priority) for c in self.changes
                if c.kind == "raised" and c.condition in CHART_CONDITIONS]

    def ended(self) -> list[str]:
        return [c.condition for c in self.changes if c.kind in ("ended", "cleared")]


def test_three_unassessed_minutes_raise_one_low_reminder_that_charting_ends(db):
    s = Setup(db)
    s.to_infusion()
    s.vitals(150)
    assert s.bridge.update() == 2
    assert s.raised() == []
    s.vitals(30)  # minute 3 begins: minutes 0, 1 and 2 are finished and unassessed
    assert s.bridge.update() == 3
    assert s.raised() == [("charting_overdue", "low")]
    for _ in range(5):  # asked again within the same minute: nothing new
        s.bridge.update()
    assert s.raised() == [("charting_overdue", "low")]
    s.chart.chart_minute(2, 0, 0, 0, "nurse.n")  # the latest minute charted: streak broken
    assert "charting_overdue" in s.ended()


def test_deep_sedation_and_distress_entries_raise_their_alarms(db):
    s = Setup(db)
    s.to_infusion()
    s.vitals(70)
    s.chart.chart_minute(0, 2, -3, 0, "nurse.n")
    assert ("rass_deep", "high") in s.raised()
    s.chart.chart_minute(1, 1, 0, 2, "nurse.n")
    assert ("distress", "medium") in s.raised()


def test_phases_reach_the_engine_including_an_undo(db):
    s = Setup(db)
    s.to_infusion()
    assert s.alarms.engine.phase.value == "infusion"
    s.vitals(30)
    marker = s.chart.end_infusion("nurse.n")
    assert s.alarms.engine.phase.value == "observation"
    s.chart.undo_phase(marker.id if marker is not None else s.chart.markers()[-1].marker.id,
                       "nurse.n", "pressed by mistake")
    assert s.alarms.engine.phase.value == "infusion"
