"""Model-engineer sanity check on unlabelled footage (`evaluate_clip`): a model, and optionally a reference model,
over sampled frames of a video: detections per label per frame, latency, and agreement with the reference per shared
label (`compare.agreement`). `evaluate_clip_file` is the whole check from a registry and a video file
(`safewatch eval --clip`). COCO metrics against labelled images are `vision.detect.coco_eval`.
"""

from __future__ import annotations

import pathlib
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from vision.detect.compare import agreement
from vision.detect.detector import Detector
from vision.detect.errors import EvalError
from vision.detect.registry import ModelRegistry
from vision.types import Detections, ImageArray


def clip_frames(video: pathlib.Path, count: int, step: int | None = None) -> tuple[list[int], list[ImageArray]]:
    """`count` RGB frames of `video` and their indices: every `step`-th, or (step None) spread over the whole clip."""
    from vision.detect.images import sample_frames

    if not video.is_file():
        raise EvalError(f"{video}: file not found")
    if step is None:
        step = max(1, _frame_count(video) // max(count, 1))
    frames = sample_frames(video, count, step=step)
    return [i * step for i in range(len(frames))], frames


def _frame_count(video: pathlib.Path) -> int:
    import av

    try:
        with av.open(str(video)) as container:
            return int(container.streams.video[0].frames or 0)
    except (OSError, av.FFmpegError, IndexError) as exc:
        raise EvalError(f"{video}: cannot open as video: {exc}") from None


@dataclass(frozen=True, slots=True)
class Latency:
    median_ms: float
    p95_ms: float


@dataclass(frozen=True, slots=True)
class LabelCounts:
    label: str
    total: int
    mean_per_frame: float
    min_per_frame: int
    max_per_frame: int
    frames_with: int


@dataclass(frozen=True, slots=True)
class LabelAgreement:
    label: str
    reference_boxes: int
    other_boxes: int
    matched: int
    matched_rate: float | None  # matched pairs over the larger box count (None when neither model found one)
    mean_confidence_delta: float  # mean |conf - reference conf| over matched pairs


@dataclass(frozen=True, slots=True)
class ClipReport:
    model: str
    frames: list[int]
    per_frame: list[dict[str, int]]  # label → count, one entry per sampled frame
    labels: list[LabelCounts]
    latency: Latency
    reference: str | None = None
    reference_latency: Latency | None = None
    agreement: list[LabelAgreement] = field(default_factory=list)


def _timed(
    detector: Detector, frames: Sequence[ImageArray], confidence: float | None
) -> tuple[list[Detections], Latency]:
    detector.detect(frames[0], confidence=confidence)  # warm-up: first run allocates
    out: list[Detections] = []
    times: list[float] = []
    for frame in frames:
        t0 = time.perf_counter()
        out.append(detector.detect(frame, confidence=confidence))
        times.append((time.perf_counter() - t0) * 1000.0)
    p95 = float(np.percentile(times, 95))
    return out, Latency(statistics.median(times), p95)


def _only(det: Detections, label: str) -> Detections:
    """The `label` boxes with class_id 0, so boxes from two models with different class lists can be matched."""
    sel = det[det.label == label]
    return Detections(xyxy=sel.xyxy, confidence=sel.confidence, class_id=np.zeros(len(sel), dtype=np.int64))


def label_agreement(refs: list[Detections], others: list[Detections], labels: Sequence[str]) -> list[LabelAgreement]:
    out = []
    for label in labels:
        a = agreement([_only(d, label) for d in refs], [_only(d, label) for d in others], iou=0.5)
        rate = a.matched_rate if max(a.reference_boxes, a.other_boxes) else None
        out.append(LabelAgreement(label, a.reference_boxes, a.other_boxes, a.matched, rate, a.mean_confidence_delta))
    return out


def evaluate_clip(
    detector: Detector,
    frames: Sequence[ImageArray],
    frame_indices: Sequence[int],
    *,
    reference: Detector | None = None,
    confidence: float | None = None,
) -> ClipReport:
    """Counts per label per frame, latency (single-frame `detect`, after one warm-up), agreement with `reference`."""
    if not frames:
        raise EvalError("no frames to evaluate")
    dets, latency = _timed(detector, frames, confidence)
    per_frame = [{str(k): int(v) for k, v in zip(*np.unique(d.label, return_counts=True), strict=True)} for d in dets]
    counts = []
    for label in detector.card.provides:
        n = [pf.get(label, 0) for pf in per_frame]
        counts.append(LabelCounts(label, sum(n), sum(n) / len(n), min(n), max(n), sum(1 for v in n if v)))
    if reference is None:
        return ClipReport(detector.name, list(frame_indices), per_frame, counts, latency)
    ref_dets, ref_latency = _timed(reference, frames, confidence)
    shared = sorted(set(detector.card.provides) & set(reference.card.provides))
    return ClipReport(detector.name, list(frame_indices), per_frame, counts, latency, reference.name, ref_latency,
                      label_agreement(ref_dets, dets, shared))  # fmt: skip


@dataclass(frozen=True, slots=True)
class ClipEvaluation:
    report: ClipReport
    note: str | None  # why the default reference model was not compared, when it was skipped


def reference_model(registry: ModelRegistry, model: str, reference: str | None) -> tuple[str | None, str | None]:
    """(reference model, note): `reference`, else the default person model when it is not `model` and shares a label
    with it; the note says why a default reference sharing no label was skipped."""
    if reference:
        return reference, None
    default = registry.default_model("person") if registry.providers_of("person") else None
    if default is None or default == model:
        return None, None
    if not set(registry.card(default).provides) & set(registry.card(model).provides):
        return None, f"no comparison: the default reference {default} shares no label with {model}"
    return default, None


def evaluate_clip_file(
    registry: ModelRegistry,
    model: str,
    clip: pathlib.Path,
    *,
    frames: int = 20,
    step: int | None = None,
    reference: str | None = None,
    compare: bool = True,
    confidence: float | None = None,
) -> ClipEvaluation:
    """`evaluate_clip` of `model` over `frames` frames of `clip` (every `step`-th, or spread over the clip), compared
    with `reference_model` unless `compare` is False. Bad input raises a DetectError naming it (model first)."""
    detector = registry.detector(model)
    ref_name, note = reference_model(registry, model, reference) if compare else (None, None)
    ref = registry.detector(ref_name) if ref_name else None
    indices, images = clip_frames(clip, frames, step)
    return ClipEvaluation(evaluate_clip(detector, images, indices, reference=ref, confidence=confidence), note)
