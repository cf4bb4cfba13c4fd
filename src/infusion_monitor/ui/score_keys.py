"""The keyboard scheme for one minute's three scores (Qt-free, so it can be tested on its own).

Dissociation: one digit 0–4. RASS: one digit 0–4, or "-" then 1–5 for −1…−5 ("+" then 1–4 is
also accepted). Distress: one digit 0–2. Space skips a score (it stays "not assessed"), Backspace
steps back, Escape clears, Enter commits the whole entry. So a minute takes 4 keys (5 for a
negative RASS): at most 6, as issue 3 asks. A wrong key raises the core's ChartingError and
keeps what was typed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from infusion_monitor.errors import ChartingError
from infusion_monitor.session.scales import MINUTE_SCALES, Scale

SKIP = " "


@dataclass(slots=True)
class ScoreKeys:
    """The scores typed so far for one minute, and which scale the next key goes to."""

    values: list[int | None] = field(default_factory=lambda: [None, None, None])
    step: int = 0  # index into MINUTE_SCALES; 3 = all three given, waiting for Enter
    sign: str = ""  # a "-" or "+" typed for RASS, waiting for its digit

    @property
    def scale(self) -> Scale | None:
        """The scale the next key is for (None once all three are given)."""
        return MINUTE_SCALES[self.step] if self.step < len(MINUTE_SCALES) else None

    @property
    def started(self) -> bool:
        return self.step > 0 or bool(self.sign)

    @property
    def complete(self) -> bool:
        return self.step >= len(MINUTE_SCALES)

    def press(self, key: str) -> None:
        """Take one key (a character); ChartingError if it is not valid here (nothing lost)."""
        scale = self.scale
        if scale is None:
            raise ChartingError("all three scores are typed: press Enter to chart them, "
                                "Backspace to change the last, Escape to start again")
        if key == SKIP and not self.sign:
            self.values[self.step] = None
            self.step += 1
            return
        if key in "-+−" and key and scale.low < 0 and not self.sign:
            self.sign = "-" if key in "-−" else "+"
            return
        if len(key) != 1 or not key.isdigit():
            hint = " (or − then a digit)" if scale.low < 0 else ""
            raise ChartingError(f"{scale.title}: type a digit between {scale.range_text}{hint}; "
                                "Space leaves it not assessed")
        value = scale.parse(self.sign + key)  # the core's range check and message
        self.values[self.step] = value
        self.sign = ""
        self.step += 1

    def back(self) -> None:
        """Backspace: drop the pending sign, else the last score given."""
        if self.sign:
            self.sign = ""
        elif self.step > 0:
            self.step -= 1
            self.values[self.step] = None

    def clear(self) -> None:
        self.values = [None, None, None]
        self.step = 0
        self.sign = ""

    def scores(self) -> tuple[int | None, int | None, int | None]:
        d, r, s = self.values
        return d, r, s
