"""intrusion and ebike_indoor: per-track presence in a zone, zone filters, timing through the incident manager."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from pipelines.rules.common import WatchedZone
from pipelines.rules.factory import build_rules
from pipelines.rules.intrusion import Intrusion
from tests.pipelines.rules.scenario import LEFT_HALF, Row, camera, ctx, dets, person, run

INSIDE = person(1, 100, 300)  # feet at x=100 (left half)
OUTSIDE = person(1, 500, 300)


def _intrusion(zone: dict[str, Any] | None = None, **rule: Any) -> Any:
    z = {"name": "yard", "polygon": LEFT_HALF, **(zone or {})}
    return camera([z], [{"type": "intrusion", "zones": ["yard"], "clear_seconds": 2, "cooldown_seconds": 0, **rule}])


def _present(*rows: Row, zone: dict[str, Any] | None = None, **rule: Any) -> list[str | None]:
    """Subjects of the violations on one frame."""
    (rule_,) = build_rules(_intrusion(zone, **rule))
    return [v.subject for v in rule_.evaluate(ctx(0.0, dets(*rows)))]


@pytest.mark.parametrize(
    ("rows", "zone", "rule", "expected"),
    [
        ([INSIDE], None, {}, ["track:1"]),
        ([OUTSIDE], None, {}, []),
        ([INSIDE, person(2, 50, 200)], None, {}, ["track:1", "track:2"]),
        # a car in the zone is not a person
        ([("car", 3, 10, 200, 200, 300)], None, {}, []),
        # labels from the config
        ([("car", 3, 10, 200, 200, 300)], None, {"labels": ["car"]}, ["track:3"]),
        # anchor: box straddles the edge, feet (bottom centre) outside, centre inside
        ([("person", 4, 250, 100, 400, 300)], None, {}, []),
        ([("person", 4, 200, 100, 360, 300)], {"anchor": "center"}, {}, ["track:4"]),
        # anchor overlap: 40 % of the box inside, below min_overlap 0.5 → out; 0.3 → in
        ([("person", 5, 260, 100, 410, 300)], {"anchor": "overlap"}, {}, []),
        ([("person", 5, 260, 100, 410, 300)], {"anchor": "overlap", "min_overlap": 0.3}, {}, ["track:5"]),
        # zone label filter: only cars count in this zone
        ([INSIDE], {"labels": ["car"]}, {}, []),
        # zone min_size: box height 120 px = 0.33 of the frame
        ([INSIDE], {"min_size": 0.5}, {}, []),
        ([INSIDE], {"min_size": 0.3}, {}, ["track:1"]),
        # min_size 1.0 (the largest the schema allows): only boxes as tall as the 360-px frame
        ([person(1, 100, 360, height=360)], {"min_size": 1.0}, {}, ["track:1"]),
        ([person(1, 100, 360, height=300)], {"min_size": 1.0}, {}, []),
        # min_confidence of the rule
        ([person(1, 100, 300, conf=0.4)], None, {"min_confidence": 0.5}, []),
        ([person(1, 100, 300, conf=0.6)], None, {"min_confidence": 0.5}, ["track:1"]),
        # untracked rows (tentative tracks) are ignored while a tracker runs
        ([person(-1, 100, 300)], None, {}, []),
    ],
)
def test_intrusion_frame(
    rows: list[Row], zone: dict[str, Any] | None, rule: dict[str, Any], expected: list[str]
) -> None:
    assert sorted(s or "" for s in _present(*rows, zone=zone, **rule)) == expected


def test_untracked_rows_without_a_tracker_are_one_zone_level_violation() -> None:
    cam = _intrusion()
    rule = Intrusion("k", cam.rules[0], [WatchedZone.from_config(cam.zones[0])], tracked=False)
    (v,) = rule.evaluate(ctx(0.0, dets(person(-1, 100, 300), person(-1, 60, 300, conf=0.7), OUTSIDE)))
    assert v.subject is None and v.zone == "yard" and v.track_ids == () and len(v.evidence) == 2
    assert v.confidence == pytest.approx(0.9)


def test_intrusion_timing_min_seconds_clear_and_cooldown() -> None:
    # person 1 enters at 2 s, leaves at 6 s, comes back at 9 s until 12 s
    def script(t: float) -> Any:
        return dets(INSIDE) if 2 <= t < 6 or 9 <= t < 12 else dets(OUTSIDE)

    first = run(_intrusion(), script, 20)
    # min_seconds 1 → opened at 3.0 (started_at 2.0); clear 2 s → closed at 7.8 (last seen 5.8); back at 9 → new
    assert first.summary() == [("opened", 3.0), ("closed", 7.8), ("opened", 10.0), ("closed", 13.8)]
    assert first.events[0].track_ids == [1] and first.events[0].rule == "intrusion" and first.events[0].zone == "yard"
    cooled = run(_intrusion(cooldown_seconds=30), script, 20)
    assert cooled.summary() == [("opened", 3.0), ("closed", 7.8)]


def test_two_people_two_incidents() -> None:
    out = run(_intrusion(), lambda t: dets(person(1, 100, 300), person(2, 200, 300)), 3)
    assert sorted(e.track_ids[0] for e in out.opened()) == [1, 2]


def test_ebike_indoor() -> None:
    cam = camera(
        [{"name": "lobby", "kind": "indoor", "polygon": LEFT_HALF}],
        [{"type": "ebike_indoor", "zones": ["lobby"], "min_seconds": 3}],
    )
    bike: Row = ("motorcycle", 7, 100, 250, 220, 330)
    bicycle: Row = ("bicycle", 8, 100, 250, 220, 330)
    out = run(cam, lambda t: dets(bike, bicycle, person(1, 150, 330)), 5)
    assert out.summary() == [("opened", 3.0)]
    assert out.events[0].labels == ["motorcycle"] and out.events[0].track_ids == [7]
    assert run(cam, lambda t: dets(("motorcycle", 7, 400, 250, 520, 330)), 5).events == []
    (rule,) = build_rules(cam)
    assert rule.required_labels == frozenset({"e_bike", "motorcycle"}) and rule.type == "ebike_indoor"


def test_evaluate_on_empty_detections() -> None:
    (rule,) = build_rules(_intrusion())
    assert rule.evaluate(ctx(0.0, dets())) == []
    assert np.asarray(rule.evaluate(ctx(0.0, dets(INSIDE)))[0].evidence.xyxy).shape == (1, 4)
