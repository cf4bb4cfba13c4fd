"""The phases of an infusion session, in the order they happen (clinical.md)."""

from __future__ import annotations

import enum


class Phase(enum.StrEnum):
    """A session phase; a phase marker records when each began. Stored as text."""

    CHECK_IN = "check_in"
    BASELINE = "baseline"
    INFUSION = "infusion"  # marker = infusion start
    OBSERVATION = "observation"  # marker = infusion end
    DISCHARGED = "discharged"  # marker = discharge (with the discharge check)
    CLOSED = "closed"

    @property
    def label(self) -> str:
        return _LABELS[self]


_LABELS = {
    Phase.CHECK_IN: "Check-in",
    Phase.BASELINE: "Baseline",
    Phase.INFUSION: "Infusion",
    Phase.OBSERVATION: "Observation",
    Phase.DISCHARGED: "Discharged",
    Phase.CLOSED: "Closed",
}

ORDER = tuple(Phase)

#: NIBP cycle expected in each phase (seconds): every 5 min during the infusion, every 15 min
#: in observation (clinical.md). Used by the "NIBP overdue" reminder.
NIBP_INTERVAL_S = {
    Phase.BASELINE: 5 * 60,
    Phase.INFUSION: 5 * 60,
    Phase.OBSERVATION: 15 * 60,
}
