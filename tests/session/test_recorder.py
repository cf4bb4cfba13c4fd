from datetime import UTC, datetime

from infusion_monitor.clock import ManualClock
from infusion_monitor.devices.base import DeviceEvent, DeviceEventKind
from infusion_monitor.session.recorder import Recorder
from infusion_monitor.vitals import Quality, Reading, Vital

T_DEV = datetime(2021, 7, 3, 3, 14, 19, tzinfo=UTC)


class ListSink:
    def __init__(self):
        self.items = []

    def submit(self, session_id, item):
        self.items.append((session_id, item))


def test_stamps_receipt_time_keeps_device_time_and_stores_everything():
    clock = ManualClock()
    clock.advance(12.5)
    sink = ListSink()
    rec = Recorder(7, sink=sink, clock=clock)
    seen = []
    rec.subscribe(seen.append)
    batch = [Reading(Vital.HR, 78, t_device=T_DEV), Reading(Vital.SPO2, 97, t_device=T_DEV)]
    out = rec.handle(batch)
    assert [(sid, r.vital, r.value) for sid, r in sink.items] == [
        (7, Vital.HR, 78), (7, Vital.SPO2, 97),
    ]
    assert all(r.t_received == clock.now() and r.t_device == T_DEV for r in out)
    assert seen == [out]
    assert rec.counts == {"hr": 1, "spo2": 1}


def test_artifacts_are_marked_per_nibp_measurement_and_order_is_kept():
    rec = Recorder(1, clock=ManualClock())
    t2 = T_DEV.replace(minute=20)
    batch = [
        Reading(Vital.NIBP_SYS, 80, t_device=T_DEV), Reading(Vital.HR, 320, t_device=T_DEV),
        Reading(Vital.NIBP_DIA, 90, t_device=T_DEV), Reading(Vital.NIBP_MEAN, 85, t_device=T_DEV),
        Reading(Vital.NIBP_SYS, 130, t_device=t2), Reading(Vital.NIBP_DIA, 85, t_device=t2),
        Reading(Vital.NIBP_MEAN, 100, t_device=t2), Reading(Vital.HR, 80, t_device=t2),
    ]
    out = rec.handle(batch)
    assert [(r.vital, r.value) for r in out] == [(r.vital, r.value) for r in batch]
    assert [r.quality for r in out] == [Quality.ARTIFACT] * 4 + [Quality.OK] * 4


def test_device_time_mode_uses_the_monitor_clock_for_imports():
    rec = Recorder(1, clock=ManualClock(), device_time=True)
    (r,) = rec.handle([Reading(Vital.HR, 78, t_device=T_DEV)])
    assert r.t_received == T_DEV


def test_rejected_frames_are_coalesced_and_counted():
    rec = Recorder(1, clock=ManualClock())
    out = rec.handle([DeviceEvent(DeviceEventKind.FRAME_REJECTED, "checksum mismatch")] * 3)
    assert len(out) == 1 and out[0].count == 3
    assert rec.rejected_frames == 3


def test_a_failing_subscriber_does_not_stop_recording():
    sink = ListSink()
    rec = Recorder(1, sink=sink, clock=ManualClock())

    def broken(_events):
        raise RuntimeError("display broke")

    rec.subscribe(broken)
    rec.handle([Reading(Vital.HR, 70, t_device=T_DEV)])
    assert [r.value for _, r in sink.items] == [70]
    assert rec.counts == {"hr": 1}
