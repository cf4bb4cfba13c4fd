"""Start-up objects are frozen out of the cyclic collector's full passes (no GC pauses)."""

from __future__ import annotations

import gc

from infusion_monitor.ui.app import settle_heap


def test_settle_heap_freezes_what_exists_and_still_collects_new_garbage() -> None:
    class Cycle:
        pass

    before = gc.get_freeze_count()
    try:
        settle_heap()
        assert gc.get_freeze_count() > before
        a, b = Cycle(), Cycle()
        a.other, b.other = b, a  # new garbage after the freeze is still collected
        del a, b
        assert gc.collect() >= 2
    finally:
        gc.unfreeze()
