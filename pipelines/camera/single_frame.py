"""A camera's rules on one still image (POST /v1/detect with `camera_id`): which rules would fire on this frame.

Single-frame semantics: there is no tracker and no time, so the camera's rules run with `tracked=False` (the
untracked rows of one zone form one zone-level violation, see `pipelines.rules.common`) and the time logic is
dropped: `min_seconds` (the incident manager's confirmation) never applies, `exit_blocked` counts an obstacle at once
(`dwell_seconds` 0; the static-scene evidence needs video and is absent), `smoke_fire` votes on this frame alone
(k = n = 1). `loitering` and `line_crossing` need a track's history and cannot fire on one image; they are reported
as not evaluated. Each rule class declares this (`pipelines.rules.base.SingleFrame`). The camera's schedule and
`enabled` flag are ignored: the caller asked about this image.

`detect_image` (every model on one image, merged) serves `POST /v1/detect` and `detect_files`, the per-image loop of
`safewatch detect`, which keeps going past an unreadable image and reports it in that image's result.
"""

from __future__ import annotations

import pathlib
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pipelines.camera.assemble import resolve_models
from pipelines.config.camera import CameraConfig
from pipelines.config.rules import RuleConfig
from pipelines.rules.base import FrameContext, Violation
from pipelines.rules.factory import CameraRules, rule_keys, single_frame_facts
from vision.detect.detector import Detector, DetectorOptions
from vision.detect.errors import ImageError
from vision.detect.images import load_image
from vision.detect.registry import ModelRegistry
from vision.types import Detections, Frame, ImageArray

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


# -- detections on still images --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ImageResult:
    """One image of `detect_files`: its detections and, with a camera, its violations; or why it could not be read."""

    path: pathlib.Path
    image: ImageArray | None  # the decoded RGB image; None when it could not be read
    detections: Detections
    violations: list[Violation] | None = None  # with a camera only
    error: str | None = None

    def as_json(self) -> dict[str, object]:
        """The per-image object of `safewatch detect --json`: `{image, detections, violations?, error?}`."""
        entry: dict[str, object] = {"image": str(self.path), "detections": detections_json(self.detections)}
        if self.violations is not None:
            entry["violations"] = violations_json(self.violations)
        if self.error is not None:
            entry["error"] = self.error
        return entry


def load_detectors(
    registry: ModelRegistry, camera: CameraConfig | None, model: str | None, *, keep_unmapped: bool = False
) -> list[Detector]:
    """`model`, else the models the camera's rules need, else the registry's default person model, loaded.

    Raises ModelError (unknown or unbuilt model) and PipelineConfigError (a rule needs a label no model provides).
    """
    names = [model] if model else resolve_models(camera, registry) if camera else []
    names = names or [registry.default_model("person")]
    return [registry.detector(n, DetectorOptions(keep_unmapped=keep_unmapped)) for n in names]


def detect_image(
    detectors: Sequence[Detector],
    image: ImageArray,
    confidence: float | None = None,
    on_inference: Callable[[str, float], None] | None = None,
) -> Detections:
    """Every detector's detections on `image`, merged; `on_inference(model, seconds)` is told each one's time."""
    parts = []
    for detector in detectors:
        t0 = time.perf_counter()
        parts.append(detector.detect(image, confidence=confidence))
        if on_inference is not None:
            on_inference(detector.name, time.perf_counter() - t0)
    return parts[0] if len(parts) == 1 else Detections.merge(parts)


def detect_files(
    paths: Iterable[pathlib.Path],
    detectors: Sequence[Detector],
    confidence: float | None = None,
    camera: CameraConfig | None = None,
) -> Iterator[ImageResult]:
    """One result per image, in order, as each is done (so only one decoded image is held at a time).

    An image that cannot be read or detected on (ImageError) gets a result with `error` and no detections; the
    loop goes on with the next one.
    """
    for path in paths:
        try:
            image = load_image(path)
            det = detect_image(detectors, image, confidence)
        except ImageError as exc:
            yield ImageResult(path, None, Detections.empty(), error=str(exc))
            continue
        violations = evaluate_single_frame(camera, image, det)[0] if camera is not None else None
        yield ImageResult(path, image, det, violations)
