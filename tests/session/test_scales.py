"""The three minute scales and CADSS-6: anchors as in clinical.md, clear range messages."""

from __future__ import annotations

import pytest

from infusion_monitor.errors import ChartingError
from infusion_monitor.session.scales import (
    CADSS6_ITEMS,
    DISSOCIATION,
    DISTRESS,
    MINUTE_SCALES,
    NOT_ASSESSED,
    RASS,
    score_text,
    validate_cadss,
    validate_scores,
)


def test_ranges_and_anchor_texts() -> None:
    assert [(s.name, s.low, s.high) for s in MINUTE_SCALES] == [
        ("dissociation", 0, 4), ("rass", -5, 4), ("distress", 0, 2)]
    assert DISSOCIATION.anchor(2).text == (
        "2 Moderate: absorbed; brief or slow answers; eyes mostly closed")
    assert DISSOCIATION.anchor(4).label == "Extreme"
    assert RASS.anchor(-1).text == "-1 Drowsy: eye contact > 10 s to voice"
    assert RASS.anchor(1).text == "+1 Restless/anxious"
    assert RASS.anchor(-4).description == "responds to physical stimulus only"
    assert DISTRESS.anchor(1).text == "1 Mild: settles with reassurance"
    assert [a.score for a in RASS.anchors] == list(range(-5, 5))


def test_every_score_is_at_most_two_keystrokes() -> None:
    for scale in MINUTE_SCALES:
        for a in scale.anchors:
            assert len(a.keys) <= 2 and scale.parse(a.keys) == a.score
    assert RASS.parse("+2") == 2 and RASS.parse("−3") == -3
    with pytest.raises(ChartingError, match="'x' is not a score; type a number between −5"):
        RASS.parse("x")


@pytest.mark.parametrize(("scores", "message"), [
    ((5, 0, 0), "Dissociation must be between 0 and 4; got 5"),
    ((0, 7, 0), "RASS must be between −5 and +4; got 7"),
    ((0, 0, -1), "Distress must be between 0 and 2; got -1"),
    ((True, 0, 0), "Dissociation must be a whole number between 0 and 4; got True"),
    ((None, None, None), "enter at least one score"),
])
def test_validate_scores_messages(scores: tuple, message: str) -> None:
    with pytest.raises(ChartingError) as info:
        validate_scores(*scores)
    assert message in str(info.value)


def test_valid_scores_pass_and_missing_ones_read_not_assessed() -> None:
    validate_scores(0, -5, 2)
    validate_scores(None, 0, None)
    assert score_text(None) == NOT_ASSESSED == "not assessed" and score_text(-2) == "-2"


def test_cadss6() -> None:
    assert sorted(CADSS6_ITEMS) == [1, 2, 6, 7, 15, 22]
    items = dict.fromkeys(CADSS6_ITEMS, 4)
    assert validate_cadss("40min", items) == 24
    with pytest.raises(ChartingError, match="item 15 must be between 0 and 4; got -1"):
        validate_cadss("baseline", items | {15: -1})
    with pytest.raises(ChartingError, match="not part of CADSS-6: 3"):
        validate_cadss("baseline", items | {3: 0})
