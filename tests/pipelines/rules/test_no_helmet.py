"""no_helmet: head-box association to people, orphan heads, missing evidence, timing."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from pipelines.rules.factory import build_rules
from pipelines.rules.no_helmet import associate_heads
from tests.pipelines.rules.scenario import LEFT_HALF, Row, camera, ctx, dets, person, run

# person 1: x 80..120 → box (80, 180, 120, 300) with height 120; head region = top 30 % (y 180..216)
P1, P2 = person(1, 100, 300), person(2, 160, 300)  # P2: x 140..180


def head(label: str, tid: int, cx: float, cy: float = 192, size: float = 16, conf: float = 0.8) -> Row:
    return (label, tid, cx - size / 2, cy - size / 2, cx + size / 2, cy + size / 2, conf)


def _cam(zones: list[str] | None = None, **rule: Any) -> Any:
    return camera(
        [{"name": "site", "kind": "helmet_required", "polygon": LEFT_HALF}],
        [{"type": "no_helmet", "zones": zones or [], "clear_seconds": 2, **rule}],
    )


def _subjects(*rows: Row, **rule: Any) -> list[str]:
    (r,) = build_rules(_cam(**rule))
    return sorted(v.subject or "" for v in r.evaluate(ctx(0.0, dets(*rows))))


@pytest.mark.parametrize(
    ("rows", "rule", "expected"),
    [
        ([P1, head("helmet", 11, 100)], {}, []),
        ([P1, head("no_helmet", 11, 100)], {}, ["track:1"]),
        # bare head on person 2 only flags person 2, although it is within person 1's slack too
        ([P1, P2, head("helmet", 11, 100), head("no_helmet", 12, 158)], {}, ["track:2"]),
        ([P1, P2, head("no_helmet", 11, 100), head("no_helmet", 12, 158)], {}, ["track:1", "track:2"]),
        # no head evidence at all: not a violation by default, one with missing_evidence
        ([P1], {}, []),
        ([P1], {"missing_evidence": "violation"}, ["track:1"]),
        ([P1, head("helmet", 11, 100)], {"missing_evidence": "violation"}, []),
        # the model fires helmet and no_helmet on one head: the more confident wins
        ([P1, head("helmet", 11, 100, conf=0.9), head("no_helmet", 12, 101, conf=0.5)], {}, []),
        ([P1, head("helmet", 11, 100, conf=0.4), head("no_helmet", 12, 101, conf=0.7)], {}, ["track:1"]),
        # a bare-head box far below the head region is not this person's head; as an orphan it is its own subject
        ([P1, head("no_helmet", 11, 100, cy=280)], {}, ["track:11"]),
        ([P1, head("no_helmet", 11, 100, cy=280)], {"orphan_heads": False}, []),
        # a bare head with no person box at all (person detector missed the body)
        ([head("no_helmet", 13, 400)], {}, ["track:13"]),
        # `head` counts as a bare head only when configured
        ([P1, head("head", 11, 100)], {}, []),
        ([P1, head("head", 11, 100)], {"no_helmet_labels": ["no_helmet", "head"]}, ["track:1"]),
        # min_confidence applies to head boxes too
        ([P1, head("no_helmet", 11, 100, conf=0.3)], {"min_confidence": 0.5}, []),
        # untracked person while the tracker runs: ignored
        ([person(-1, 100, 300), head("no_helmet", -1, 100)], {}, []),
    ],
)
def test_association(rows: list[Row], rule: dict[str, Any], expected: list[str]) -> None:
    assert _subjects(*rows, **rule) == expected


def test_evidence_and_zone() -> None:
    (r,) = build_rules(_cam(zones=["site"]))
    vs = r.evaluate(
        ctx(0.0, dets(P1, head("no_helmet", 11, 100, conf=0.7), person(3, 500, 300), head("no_helmet", 14, 500)))
    )
    # person 3 stands in the right half, outside the zone; its head centre too
    assert [(v.subject, v.zone) for v in vs] == [("track:1", "site")]
    assert sorted(vs[0].evidence.label.tolist()) == ["no_helmet", "person"]
    assert vs[0].confidence == pytest.approx(0.7) and vs[0].track_ids == (1,)


def test_orphan_head_keeps_its_person_subject() -> None:
    (r,) = build_rules(_cam())
    assert [v.subject for v in r.evaluate(ctx(0.0, dets(P1, head("no_helmet", 11, 100))))] == ["track:1"]
    # the person box drops out; the head track 11 is still reported as person 1
    assert [v.subject for v in r.evaluate(ctx(0.2, dets(head("no_helmet", 11, 100))))] == ["track:1"]
    assert [v.subject for v in r.evaluate(ctx(30.0, dets(head("no_helmet", 11, 100))))] == ["track:11"]


def test_timing_through_the_manager() -> None:
    def script(t: float) -> Any:
        return dets(P1, head("no_helmet" if 1 <= t < 8 else "helmet", 11, 100))

    out = run(_cam(), script, 15)
    assert out.summary() == [("opened", 4.0), ("closed", 9.8)]  # min_seconds 3; clear 2 s after 7.8
    assert out.events[0].track_ids == [1] and out.events[0].labels == ["person"]


def test_associate_heads_one_to_one() -> None:
    persons = np.asarray([P1[2:6], P2[2:6]], dtype=np.float32)
    heads = np.asarray([head("x", 0, 158)[2:6], head("x", 0, 100)[2:6], head("x", 0, 300)[2:6]], dtype=np.float32)
    assert associate_heads(persons, heads, 0.3, 0.2).tolist() == [1, 0, -1]
    assert associate_heads(persons[:0], heads, 0.3, 0.2).tolist() == [-1, -1, -1]
