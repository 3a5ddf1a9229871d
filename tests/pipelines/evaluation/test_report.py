"""The timeline's lanes: overlapping episodes (different subjects) are drawn one above the other."""

from __future__ import annotations

from pipelines.evaluation.episodes import Span
from pipelines.evaluation.report import _lanes


def test_overlapping_spans_get_their_own_lanes() -> None:
    spans = [
        Span("no_helmet", "walkway", 0.0, 80.0, subject="a"),
        Span("no_helmet", "walkway", 17.0, 20.0, subject="b"),
        Span("no_helmet", "walkway", 18.0, 21.0, subject="c"),
        Span("no_helmet", "walkway", 20.0, 30.0, subject="d"),  # b's lane is free again at 20
    ]
    assert _lanes(spans) == ([0, 1, 2, 1], 3)
    assert _lanes([]) == ([], 1)
