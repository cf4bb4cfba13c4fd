"""The minute log's model tells the view only about rows that changed: the live window
refreshes it every second, and repainting all 60-odd rows each time cost the soak's frames."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from infusion_monitor.session.minutes import MinuteRow, MinuteVitals
from infusion_monitor.ui.qt_minute_model import MinuteLogModel

T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)


def row(minute: int, hr: float | None = 72.0, complete: bool = True) -> MinuteRow:
    start = T0 + timedelta(minutes=minute)
    return MinuteRow(MinuteVitals(minute, start, start + timedelta(minutes=1), hr, None, 97.0,
                                  97.0, None, None, None, 0, complete))


def changes(model: MinuteLogModel) -> list[tuple[int, int]]:
    seen: list[tuple[int, int]] = []
    model.dataChanged.connect(lambda a, b, *_: seen.append((a.row(), b.row())))
    return seen


def test_only_changed_rows_and_the_current_minute_move_are_repainted(qapp) -> None:
    model = MinuteLogModel()
    seen = changes(model)
    rows = [row(m) for m in range(10)]
    model.set_rows(rows, 9)
    assert seen == []  # ten new rows: inserted, nothing to repaint
    model.set_rows(list(rows), 9)
    assert seen == []  # the same again: nothing
    rows[9] = row(9, hr=80.0, complete=False)
    model.set_rows(list(rows), 9)
    assert seen == [(9, 9)]
    rows[3] = replace(rows[3], entry=None, notes=((),))  # an entry or note on an old minute
    model.set_rows(list(rows), 9)
    assert seen[-1] == (3, 3)
    model.set_rows([*rows, row(10, complete=False)], 10)  # the next minute begins
    assert seen[-1] == (9, 9) and model.rowCount() == 11
    assert model.current_minute == 10
