"""no_helmet on upper-body crops: crop geometry, the rule's rate, re-check policy, which model runs on crops."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from pipelines.rules.factory import HeadModel, build_rules, crop_model_name
from pipelines.rules.head_crops import HeadCropConfig, HeadCrops, upper_body_regions
from pipelines.rules.no_helmet import NoHelmet
from tests.pipelines.rules.scenario import LEFT_HALF, camera, ctx, dets, person
from vision.types import Detections, ImageArray, IntArray

COCO = {"coco": {"person", "car", "truck"}}
HELMET = {"helmet": {"helmet", "no_helmet"}}


class ScriptedCrops:
    """A crop model answering, for each region, the heads placed in it (frame pixels) by `heads_at`."""

    name = "helmet"

    def __init__(self, label: str = "no_helmet", conf: float = 0.8) -> None:
        self.label, self.conf = label, conf
        self.calls: list[IntArray] = []

    def detect(self, image: ImageArray, regions: IntArray) -> list[Detections]:
        self.calls.append(regions.copy())
        out = []
        for x1, y1, x2, _ in regions.tolist():
            # a head at the top centre of the person box the region was cut around (see upper_body_regions)
            w = (x2 - x1) / 1.4
            cx, top = (x1 + x2) / 2, y1 + 12
            out.append(dets((self.label, -1, cx - w / 4, top, cx + w / 4, top + w / 2, self.conf)))
        return out


def _rule(model: ScriptedCrops, interval_s: float = 0.5, **rule: Any) -> NoHelmet:
    cam = camera([{"name": "site", "kind": "helmet_required", "polygon": LEFT_HALF}],
                 [{"type": "no_helmet", "zones": ["site"], **rule}])  # fmt: skip
    heads = HeadModel("helmet", model, frozenset({"helmet", "no_helmet"}), interval_s)
    (built,) = build_rules(cam, heads=heads)
    assert isinstance(built, NoHelmet) and built.crops is not None
    return built


def test_upper_body_region_covers_the_head_region_with_context() -> None:
    (region,) = upper_body_regions(np.asarray([[100, 200, 140, 320]], dtype=np.float32), 0.3, 0.2)
    # width 40 → ±8 px slack; height 120 → 12 px above, down to half the body
    assert region.tolist() == [92, 188, 148, 260]


def test_bare_head_from_a_crop_flags_the_person_in_the_zone_only() -> None:
    model = ScriptedCrops()
    rule = _rule(model)
    inside, outside = person(1, 100, 300), person(2, 500, 300)  # LEFT_HALF: x < 320
    out = rule.evaluate(ctx(0.0, dets(inside, outside)))
    assert [v.subject for v in out] == ["track:1"]
    assert len(model.calls) == 1 and len(model.calls[0]) == 1, "only the person in the zone is cropped"
    assert sorted(out[0].evidence.label.tolist()) == ["no_helmet", "person"]


def test_helmet_on_the_crop_is_no_violation_and_frame_head_boxes_are_ignored() -> None:
    rule = _rule(ScriptedCrops(label="helmet"))
    frame_bare_head = ("no_helmet", 7, 90, 182, 110, 200, 0.9)  # a full-frame head box: not used in crop mode
    assert rule.evaluate(ctx(0.0, dets(person(1, 100, 300), frame_bare_head))) == []


def test_rate_and_recheck_policy() -> None:
    model = ScriptedCrops()
    rule = _rule(model, interval_s=0.5)
    p1 = person(1, 100, 300)
    for t in (0.0, 0.2, 0.4, 0.6, 1.0, 4.8):  # confirmed bare-headed at t=0: not re-checked before 5 s
        assert [v.subject for v in rule.evaluate(ctx(t, dets(p1)))] == ["track:1"], t
    assert len(model.calls) == 1
    rule.evaluate(ctx(5.0, dets(p1)))
    assert len(model.calls) == 2, "re-checked after recheck_s"
    rule.evaluate(ctx(5.2, dets(p1, person(3, 200, 300))))
    assert len(model.calls) == 2, "a new person waits for the rule's rate"
    rule.evaluate(ctx(5.5, dets(p1, person(3, 200, 300))))
    assert [len(c) for c in model.calls] == [1, 1, 1], "only the new person is cropped"


def test_unconfirmed_person_is_rechecked_when_it_moves() -> None:
    class Nothing(ScriptedCrops):
        def detect(self, image: ImageArray, regions: IntArray) -> list[Detections]:
            self.calls.append(regions.copy())
            return [Detections.empty() for _ in regions]

    model = Nothing()
    rule = _rule(model, interval_s=0.5)
    for t in (0.0, 0.5, 1.0):
        assert rule.evaluate(ctx(t, dets(person(1, 100, 300)))) == []
    assert len(model.calls) == 1, "still and no verdict: the same pixels give the same answer"
    rule.evaluate(ctx(1.5, dets(person(1, 160, 300))))
    assert len(model.calls) == 2, "moved: checked again at the next run"


def test_remembered_heads_follow_the_person_box() -> None:
    rule = _rule(ScriptedCrops())
    rule.evaluate(ctx(0.0, dets(person(1, 100, 300))))
    (v,) = rule.evaluate(ctx(0.4, dets(person(1, 220, 300))))  # walked 120 px right, not re-checked yet
    head = v.evidence[v.evidence.label == "no_helmet"].xyxy[0]
    assert 200 < (head[0] + head[2]) / 2 < 240


def test_untracked_rows_are_ignored_while_tracking_and_checked_without() -> None:
    model = ScriptedCrops()
    assert _rule(model).evaluate(ctx(0.0, dets(person(-1, 100, 300)))) == [] and model.calls == []
    cam = camera([], [{"type": "no_helmet"}])
    crops = HeadCrops(model, HeadCropConfig(interval_s=10.0), head_fraction=0.3, slack=0.2)
    (rule,) = build_rules(cam, tracked=False)
    assert isinstance(rule, NoHelmet)
    rule.crops = crops
    for t in (0.0, 0.2):  # no tracker (a single image): every call checks, nothing is remembered
        (v,) = rule.evaluate(ctx(t, dets(person(-1, 100, 300))))
        assert v.subject is None
    assert len(model.calls) == 2


def test_reset_forgets_verdicts() -> None:
    model = ScriptedCrops()
    rule = _rule(model)
    rule.evaluate(ctx(0.0, dets(person(1, 100, 300))))
    rule.reset()
    rule.evaluate(ctx(0.1, dets(person(1, 100, 300))))
    assert len(model.calls) == 2


@pytest.mark.parametrize(
    ("rules", "provided", "expected"),
    [
        ([{"type": "no_helmet"}], {**COCO, **HELMET}, "helmet"),
        ([{"type": "intrusion", "zones": ["a"]}], {**COCO, **HELMET}, None),  # no no_helmet rule
        ([{"type": "no_helmet"}], HELMET, None),  # nobody else provides the people to crop
        # the helmet model also provides people: it must see whole frames
        ([{"type": "no_helmet"}], {**COCO, "big": {"person", "helmet", "no_helmet"}}, None),
        # another rule needs one of its labels
        (
            [{"type": "no_helmet"}, {"type": "intrusion", "zones": ["a"], "labels": ["helmet"]}],
            {**COCO, **HELMET},
            None,
        ),
        # a model without the rule's bare-head labels is not its head model
        ([{"type": "no_helmet", "no_helmet_labels": ["head"]}], {**COCO, **HELMET}, None),
    ],
)
def test_crop_model_name(rules: list[dict[str, Any]], provided: dict[str, set[str]], expected: str | None) -> None:
    cam = camera([{"name": "a", "kind": "generic", "polygon": LEFT_HALF}], rules)
    assert crop_model_name(cam, provided) == expected
