"""The nurse's per-minute scales and the CADSS-6 form, with anchor texts from clinical.md."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from infusion_monitor.errors import ChartingError

#: What a minute (or one score) with no entry shows, everywhere: DB readers, UI, CSV.
NOT_ASSESSED = "not assessed"


@dataclass(frozen=True, slots=True)
class Anchor:
    """One score of a scale: its label and what the nurse sees."""

    score: int
    label: str
    description: str = ""
    signed: bool = False  # RASS shows "+2", the others "2"

    @property
    def keys(self) -> str:
        """The keystrokes that select it: "3", "0", "-2" (a positive RASS may also be "+n")."""
        return str(self.score)

    @property
    def shown(self) -> str:
        return f"{self.score:+d}" if self.signed and self.score else str(self.score)

    @property
    def text(self) -> str:
        """The anchor as shown in place, e.g. "2 Moderate: absorbed; brief or slow answers"."""
        head = f"{self.shown} {self.label}"
        return f"{head}: {self.description}" if self.description else head


@dataclass(frozen=True, slots=True)
class Scale:
    """A closed integer scale with one anchor per score."""

    name: str  # dissociation | rass | distress | cadss
    title: str
    anchors: tuple[Anchor, ...]

    @property
    def low(self) -> int:
        return self.anchors[0].score

    @property
    def high(self) -> int:
        return self.anchors[-1].score

    @property
    def range_text(self) -> str:
        """How the range is written in messages: "0 and 4", "−5 and +4"."""
        lo = f"−{-self.low}" if self.low < 0 else str(self.low)
        hi = f"+{self.high}" if self.low < 0 else str(self.high)
        return f"{lo} and {hi}"

    def anchor(self, score: int) -> Anchor:
        """The anchor of a valid score; ChartingError otherwise."""
        return self.anchors[self.validate(score) - self.low]

    def validate(self, score: object) -> int:
        """Return the score if it is an integer in range, else raise a message saying the range."""
        if isinstance(score, bool) or not isinstance(score, int):
            raise ChartingError(
                f"{self.title} must be a whole number between {self.range_text}; got {score!r}"
            )
        if not self.low <= score <= self.high:
            raise ChartingError(f"{self.title} must be between {self.range_text}; got {score}")
        return score

    def parse(self, keys: str) -> int:
        """A score from what was typed ("3", "-2", "+1"); ChartingError if it is not one."""
        text = keys.strip().replace("−", "-")
        try:
            value = int(text)
        except ValueError:
            raise ChartingError(
                f"{self.title}: {keys!r} is not a score; type a number between {self.range_text}"
            ) from None
        return self.validate(value)


DISSOCIATION = Scale("dissociation", "Dissociation", (
    Anchor(0, "None", "oriented, talks normally"),
    Anchor(1, "Slight", "reports floating, time or body distortion; talks normally"),
    Anchor(2, "Moderate", "absorbed; brief or slow answers; eyes mostly closed"),
    Anchor(3, "Considerable", "minimal speech; follows simple requests only"),
    Anchor(4, "Extreme", "no meaningful verbal response (check arousal)"),
))

RASS = Scale("rass", "RASS", (
    Anchor(-5, "Unrousable", "", signed=True),
    Anchor(-4, "Deep", "responds to physical stimulus only", signed=True),
    Anchor(-3, "Moderate", "movement to voice, no eye contact", signed=True),
    Anchor(-2, "Light sedation", "eye contact < 10 s to voice", signed=True),
    Anchor(-1, "Drowsy", "eye contact > 10 s to voice", signed=True),
    Anchor(0, "Alert and calm", "", signed=True),
    Anchor(1, "Restless/anxious", "", signed=True),
    Anchor(2, "Agitated", "", signed=True),
    Anchor(3, "Very agitated", "", signed=True),
    Anchor(4, "Combative", "", signed=True),
))

DISTRESS = Scale("distress", "Distress", (
    Anchor(0, "None", ""),
    Anchor(1, "Mild", "settles with reassurance"),
    Anchor(2, "Marked", "needs intervention"),
))

#: The three per-minute scales, in the order they are entered and exported.
MINUTE_SCALES = (DISSOCIATION, RASS, DISTRESS)


def validate_scores(dissociation: int | None, rass: int | None, distress: int | None) -> None:
    """Check one minute's scores (None = that score not assessed; at least one is needed)."""
    if dissociation is None and rass is None and distress is None:
        raise ChartingError(
            "enter at least one score (dissociation, RASS or distress); "
            f"a minute with no entry stays {NOT_ASSESSED!r}"
        )
    for scale, score in zip(MINUTE_SCALES, (dissociation, rass, distress), strict=True):
        if score is not None:
            scale.validate(score)


def score_text(score: int | None) -> str:
    """A score as charted and exported, or "not assessed"."""
    return NOT_ASSESSED if score is None else str(score)


# -- CADSS-6 ----------------------------------------------------------------------------------
CADSS_INTENSITY = Scale("cadss", "CADSS item", (
    Anchor(0, "Not at all", ""),
    Anchor(1, "Slightly", ""),
    Anchor(2, "Moderately", ""),
    Anchor(3, "Considerably", ""),
    Anchor(4, "Extremely", ""),
))

# Neutral paraphrases of the topic of each item, not the licensed wording: the nurse asks the
# questions as printed on the clinic's CADSS form. Item 22's topic is left to that form (we could
# not verify it from a public source).
CADSS6_ITEMS: dict[int, str] = {
    1: "Time seems slowed down",
    2: "Surroundings seem unreal or dreamlike",
    6: "Body feels changed in size or shape",
    7: "People seem lifeless or mechanical",
    15: "Sounds seem to fade or grow much louder",
    22: "Item 22, as worded on the clinic's CADSS form",
}

#: When a CADSS-6 may be recorded (clinical.md): baseline, about 40 min, before discharge.
CADSS_TIMEPOINTS = ("baseline", "40min", "discharge")


def validate_cadss(timepoint: str, items: Mapping[int, int]) -> int:
    """Check a CADSS-6 form (exactly items 1, 2, 6, 7, 15, 22, each 0–4); returns the total."""
    if timepoint not in CADSS_TIMEPOINTS:
        raise ChartingError(
            f"CADSS-6 time point must be one of {', '.join(CADSS_TIMEPOINTS)}; got {timepoint!r}"
        )
    missing = sorted(set(CADSS6_ITEMS) - set(items))
    extra = sorted(set(items) - set(CADSS6_ITEMS))
    if missing or extra:
        raise ChartingError(
            "CADSS-6 needs exactly items 1, 2, 6, 7, 15 and 22"
            + (f"; missing {', '.join(map(str, missing))}" if missing else "")
            + (f"; not part of CADSS-6: {', '.join(map(str, extra))}" if extra else "")
        )
    total = 0
    for number in CADSS6_ITEMS:
        value = items[number]
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 4:
            raise ChartingError(f"CADSS-6 item {number} must be between 0 and 4; got {value!r}")
        total += value
    return total


#: Quick-pick note phrases (a clinic may offer others; any text is accepted).
QUICK_PHRASES = (
    "reassured",
    "eyes closed, calm",
    "voice check: responds normally",
    "nausea: antiemetic given",
    "music/eye mask requested",
    "infusion paused",
    "attending informed",
)
