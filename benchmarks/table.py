"""One row format and one printed table for every benchmark."""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Row:
    """A measured figure, its goal, and the baseline measured in the same run (if any)."""

    figure: str
    value: float
    unit: str
    goal: str = ""  # e.g. ">= 1000" or "<= 50"
    baseline: str = ""  # what the same run measured for comparison, with its unit

    @property
    def met(self) -> bool | None:
        if not self.goal:
            return None
        op, _, target = self.goal.partition(" ")
        limit = float(target)
        return self.value >= limit if op == ">=" else self.value <= limit


def format_table(rows: Iterable[Row]) -> str:
    rows = list(rows)
    head = f"{'figure':46} {'value':>12} {'unit':9} {'goal':>10}  {'met':4} baseline (same run)"
    lines = [head, "-" * len(head)]
    for r in rows:
        met = {None: "", True: "yes", False: "NO"}[r.met]
        lines.append(
            f"{r.figure:46} {r.value:12.2f} {r.unit:9} {r.goal:>10}  {met:4} {r.baseline}"
        )
    return "\n".join(lines)


def median_p99(samples: Iterable[float], scale: float = 1000.0) -> tuple[float, float]:
    """Median and 99th percentile (nearest rank) of ``samples`` times ``scale`` (s -> ms)."""
    ms = sorted(s * scale for s in samples)
    return statistics.median(ms), ms[min(len(ms) - 1, round(0.99 * (len(ms) - 1)))]
