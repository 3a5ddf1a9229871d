"""A camera's rules on one still image (POST /v1/detect with `camera_id`): which rules would fire on this frame.

Single-frame semantics: there is no tracker and no time, so the camera's rules run with `tracked=False` (the
untracked rows of one zone form one zone-level violation, see `pipelines.rules.common`) and the time logic is
dropped: `min_seconds` (the incident manager's confirmation) never applies, `exit_blocked` counts an obstacle at once
(`dwell_seconds` 0; the static-scene evidence needs video and is absent), `smoke_fire` votes on this frame alone
(k = n = 1). `loitering` and `line_crossing` need a track's history and cannot fire on one image; they are reported
as not evaluated. Each rule class declares this (`pipelines.rules.base.SingleFrame`). The camera's schedule and
`enabled` flag are ignored: the caller asked about this image.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pipelines.config.camera import CameraConfig
from pipelines.config.rules import RuleConfig
from pipelines.rules.base import FrameContext, Violation
from pipelines.rules.factory import CameraRules, rule_keys, single_frame_facts
from vision.types import Detections, Frame

NOTE = (
    "single-frame evaluation: rules report what holds on this image alone; min_seconds, dwell times, k-of-n "
    "persistence and the camera's schedule are ignored, and there is no tracking"
)


@dataclass(frozen=True, slots=True)
class RuleReport:
    rule_key: str
    rule: str
    evaluated: bool
    note: str | None


def single_frame_rule(rule: RuleConfig) -> RuleConfig:
    """`rule` without its time logic (see the module docs)."""
    return rule.model_copy(update={"min_seconds": 0.0, **single_frame_facts(rule).still})


def single_frame_camera(camera: CameraConfig) -> CameraConfig:
    """`camera` always active, its rules without time logic; zones, labels and thresholds unchanged."""
    rules = [single_frame_rule(r) for r in camera.rules]
    return camera.model_copy(update={"rules": rules, "schedule": None, "enabled": True})


def rule_reports(camera: CameraConfig) -> list[RuleReport]:
    """What single-frame evaluation does with each rule (disabled rules included, in config order)."""
    enabled = {i: key for i, _params, key in rule_keys(camera)}
    reports = []
    for i, rule in enumerate(camera.rules):
        key = enabled.get(i, rule.name or f"{i}:{rule.type}")
        facts = single_frame_facts(rule)
        if i not in enabled:
            reports.append(RuleReport(key, rule.type, False, "not evaluated: the rule is disabled"))
        else:
            reports.append(RuleReport(key, rule.type, facts.evaluated, facts.note))
    return reports


def evaluate_single_frame(
    camera: CameraConfig, image: npt.NDArray[np.uint8], detections: Detections
) -> tuple[list[Violation], list[RuleReport]]:
    """The violations the camera's rules report on this image, and a report per rule."""
    rules = CameraRules(single_frame_camera(camera), tracked=False)
    frame = Frame(camera_id=camera.id, seq=0, pts=0.0, wall_time=time.time(), image=image)
    return rules.evaluate(FrameContext(frame, detections)), rule_reports(camera)


def violations_json(violations: list[Violation]) -> list[dict[str, object]]:
    """The JSON shape shared by `safewatch detect --camera` and `POST /v1/detect`."""
    out: list[dict[str, object]] = []
    for v in violations:
        item: dict[str, object] = {
            "rule": v.rule,
            "rule_key": v.rule_key,
            "zone": v.zone,
            "labels": list(v.labels),
            "confidence": round(v.confidence, 4),
            "boxes": [[round(float(x), 1) for x in box] for box in v.evidence.xyxy],
        }
        if v.track_ids:
            item["track_ids"] = list(v.track_ids)
        out.append(item)
    return out


def detections_json(det: Detections) -> list[dict[str, object]]:
    """The `detections` list of the CLI/HTTP JSON contract."""
    names = det.data.get("class_name", det.label)
    return [
        {
            "label": str(det.label[i]),
            "class_name": str(names[i]),
            "confidence": round(float(det.confidence[i]), 4),
            "box": [round(float(v), 1) for v in det.xyxy[i]],
        }
        for i in range(len(det))
    ]
