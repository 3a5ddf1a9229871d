"""loitering (per-track dwell with grace) and line_crossing (directed crossings)."""

from __future__ import annotations

from typing import Any

import pytest

from pipelines.rules.factory import build_rules
from tests.pipelines.rules.scenario import LEFT_HALF, camera, ctx, dets, person, run

IN, OUT = person(1, 100, 300), person(1, 500, 300)


def _loiter(**rule: Any) -> Any:
    return camera(
        [{"name": "plaza", "polygon": LEFT_HALF}],
        [{"type": "loitering", "zones": ["plaza"], "dwell_seconds": 10, "clear_seconds": 2, **rule}],
    )


def _inside(*spans: tuple[float, float]) -> Any:
    return lambda t: dets(IN) if any(a <= t < b for a, b in spans) else dets(OUT)


@pytest.mark.parametrize(
    ("spans", "expected"),
    [
        ([(1, 9)], []),  # leaves before the dwell
        ([(1, 15)], [("opened", 11.0), ("closed", 16.8)]),  # dwell 10 s from 1 s; min_seconds 0
        # out of the zone for 1 s (< grace 3 s): the dwell goes on
        ([(1, 6), (7, 15)], [("opened", 11.0), ("closed", 16.8)]),
        # out for 5 s (> grace): the dwell restarts at 11 s → 21 s
        ([(1, 6), (11, 25)], [("opened", 21.0), ("closed", 26.8)]),
    ],
)
def test_loitering_dwell_and_grace(spans: list[tuple[float, float]], expected: list[tuple[str, float]]) -> None:
    assert run(_loiter(), _inside(*spans), 30).summary() == expected


def test_loitering_survives_detector_dropout_within_grace_and_is_per_track() -> None:
    def script(t: float) -> Any:
        rows = [person(2, 200, 300)] if t >= 4 else []
        if not 5 <= t < 7:  # track 1 undetected for 2 s
            rows.append(IN)
        return dets(*rows)

    out = run(_loiter(), script, 16)
    assert [(e.type.value, e.offset_s, e.track_ids) for e in out.events] == [
        ("opened", 10.0, [1]),
        ("opened", 14.0, [2]),
    ]


def test_loitering_ignores_untracked_rows() -> None:
    assert run(_loiter(), lambda t: dets(person(-1, 100, 300)), 15).events == []


# ---------------------------------------------------------------- line crossing

LINE = [[0.25, 0.5], [0.75, 0.5]]  # horizontal, drawn left to right, y = 180 px; `in` = moving down


def _line(direction: str, **rule: Any) -> Any:
    return camera([], [{"type": "line_crossing", "line": LINE, "direction": direction, "clear_seconds": 2, **rule}])


def _walk(x: float, y0: float, y1: float, t0: float = 1.0, speed: float = 40.0) -> Any:
    """Track 1's feet move from (x, y0) towards y1 at `speed` px/s starting at t0."""

    def script(t: float) -> Any:
        step = max(0.0, t - t0) * speed
        y = min(y0 + step, y1) if y1 > y0 else max(y0 - step, y1)
        return dets(person(1, x, y))

    return script


@pytest.mark.parametrize(
    ("direction", "walk", "opened"),
    [
        ("in", (320, 100, 300), [3.0]),  # downwards crosses y=180 at t = 1 + 80/40 = 3.0 (on the line) → 3.2
        ("any", (320, 100, 300), [3.0]),
        ("out", (320, 100, 300), []),
        ("out", (320, 300, 100), [4.0]),  # upwards: 120 px to go → t = 4.0 on the line → next frame off it
        ("in", (320, 300, 100), []),
        ("any", (320, 300, 100), [4.0]),
        ("any", (100, 100, 300), []),  # crosses the line's extension, left of its start
        ("any", (320, 100, 170), []),  # approaches without crossing
    ],
)
def test_line_crossing_direction(direction: str, walk: tuple[float, float, float], opened: list[float]) -> None:
    out = run(_line(direction), _walk(*walk), 12)
    # the frame on the line is neither side; the crossing is reported on the next frame after it
    assert [round(e.offset_s - 0.2, 3) for e in out.opened()] == opened
    if opened:
        assert out.summary()[-1] == ("closed", round(opened[0] + 0.2 + 2.0, 3))
        assert sum(1 for _, vs in out.violations if vs) == 1  # one frame, one crossing


def test_line_crossing_one_crossing_per_track_and_anchor() -> None:
    # two people cross downwards at different times → two incidents; the same person crossing back is the same track
    def script(t: float) -> Any:
        rows = [person(1, 300, 150 if t < 2 else 220)]
        rows.append(person(2, 400, 150 if t < 5 else 220))
        return dets(*rows)

    out = run(_line("any"), script, 8)
    assert [(e.offset_s, e.track_ids) for e in out.opened()] == [(2.0, [1]), (5.0, [2])]
    # with the centre as anchor (box height 120), centre y = bottom - 60: 150 → 90 and 220 → 160: no crossing
    assert run(_line("any", anchor="center"), script, 8).events == []


def test_line_crossing_needs_tracks() -> None:
    (rule,) = build_rules(_line("any"))
    assert rule.evaluate(ctx(0.0, dets(person(-1, 300, 150)))) == []
    assert rule.evaluate(ctx(0.2, dets(person(-1, 300, 220)))) == []
