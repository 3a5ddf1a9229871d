"""smoke_fire: k-of-n vote over analysed frames, minimum area, optional zones."""

from __future__ import annotations

from typing import Any

import pytest

from pipelines.rules.factory import build_rules
from tests.pipelines.rules.scenario import LEFT_HALF, camera, ctx, dets, run

SMOKE: tuple[Any, ...] = ("smoke", 3, 50, 50, 150, 150, 0.6)  # 100x100 px = 4.3 % of the frame
FIRE: tuple[Any, ...] = ("fire", 4, 60, 100, 120, 150, 0.8)


def _smoke(zones: list[str] | None = None, **rule: Any) -> Any:
    return camera(
        [{"name": "store", "polygon": LEFT_HALF}],
        [{"type": "smoke_fire", "zones": zones or [], "clear_seconds": 2, **rule}],
    )


@pytest.mark.parametrize(
    ("pattern", "votes"),
    [
        ("10101", [False, False, False, False, True]),  # 3 of 5
        ("1001001", [False] * 7),  # never 3 in any 5
        ("111000", [False, False, True, True, True, False]),  # holds while ≥ 3 of the last 5
        ("1111111", [False, False, True, True, True, True, True]),
    ],
)
def test_k_of_n(pattern: str, votes: list[bool]) -> None:
    (rule,) = build_rules(_smoke(k=3, n=5))
    seen = [bool(rule.evaluate(ctx(i * 0.2, dets(SMOKE) if c == "1" else dets()))) for i, c in enumerate(pattern)]
    assert seen == votes


def test_incident_and_evidence() -> None:
    out = run(_smoke(), lambda t: dets(SMOKE, FIRE) if 1 <= t < 5 else dets(), 12)
    # hits from 1.0 to 4.8; the 3rd hit (1.4) opens (min_seconds 0); the vote still holds at 5.2 (hits 4.4, 4.6, 4.8
    # among the last 5 frames), so the incident closes clear_seconds (2 s) later
    (opened, o), (closed, c) = out.summary()
    assert (opened, o, closed) == ("opened", 1.4, "closed") and c == pytest.approx(7.2, abs=0.21)
    assert out.events[0].labels == ["fire", "smoke"] and out.events[0].zone is None
    assert out.events[0].severity.value == "critical" and out.events[0].confidence == pytest.approx(0.8)


@pytest.mark.parametrize(
    ("rule", "box", "expected"),
    [
        ({}, SMOKE, True),
        ({"min_area": 0.05}, SMOKE, False),  # smaller than 5 % of the frame
        ({"zones": ["store"]}, SMOKE, True),
        ({"zones": ["store"]}, ("smoke", 3, 450, 50, 550, 150, 0.6), False),  # outside the zone
        ({"min_confidence": 0.7}, SMOKE, False),
        ({"labels": ["fire"]}, SMOKE, False),
    ],
)
def test_filters(rule: dict[str, Any], box: tuple[Any, ...], expected: bool) -> None:
    (r,) = build_rules(_smoke(**rule))
    results = [r.evaluate(ctx(i * 0.2, dets(box))) for i in range(5)]
    assert bool(results[-1]) is expected
    if expected:
        assert results[-1][0].zone == (rule.get("zones") or [None])[0] and results[-1][0].subject is None


def test_stale_window_is_emptied() -> None:
    (rule,) = build_rules(_smoke(k=2, n=5))
    assert rule.evaluate(ctx(0.0, dets(SMOKE))) == []
    assert rule.evaluate(ctx(100.0, dets(SMOKE))) == []  # 100 s later: the earlier hit no longer counts
    assert rule.evaluate(ctx(100.2, dets(SMOKE)))
