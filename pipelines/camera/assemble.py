"""Build a ready-to-run `CameraPipeline` (and its sources) from a `CameraConfig` and the model registry.

The one place that decides which models run on a camera (from the labels its rules need, or its `models:` override),
checks that every rule's labels are provided (a rule nobody can serve is a config error, not a silent no-op), and
wires the optional evidence recorder to the right packet ring buffer (the `record` stream when configured, else the
`detect` stream).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

from pipelines.camera.evidence import EvidenceRecorder, UrlFor
from pipelines.camera.pipeline import CameraPipeline, EventSink, FrameDetector, ModelSlot
from pipelines.config.camera import CameraConfig
from pipelines.rules.factory import CameraRules, check_label_coverage, head_model, model_labels, select_models
from pipelines.rules.health import HealthChecks
from vision.detect.batcher import BatcherPool, CameraDetector
from vision.detect.crops import CropDetector
from vision.detect.detector import DetectorOptions
from vision.detect.registry import ModelRegistry
from vision.media.chain import EvidenceChain
from vision.media.clip_writer import ClipWriter
from vision.media.store import MediaStore
from vision.sources import SourceConfig, VideoSource
from vision.types import Frame

log = logging.getLogger(__name__)


class PipelineConfigError(ValueError):
    """The camera cannot run as configured (e.g. a rule needs a label no available model provides)."""

    def __init__(self, camera_id: str, problems: Sequence[str]) -> None:
        self.camera_id = camera_id
        self.problems = list(problems)
        super().__init__("; ".join(f"{camera_id}: {p}" for p in problems))


@dataclass(frozen=True)
class EvidenceOptions:
    media_root: Path
    key: bytes | None = None
    url_for: UrlFor | None = None
    chain: EvidenceChain | None = None  # the process's evidence chain (composition roots); None: bare manifests


@dataclass
class CameraRuntime:
    """A pipeline with the sources that feed it; `close()` releases the sources."""

    camera: CameraConfig
    pipeline: CameraPipeline
    source: VideoSource
    record: VideoSource | None = None
    models: list[str] = field(default_factory=list)
    batched: list[CameraDetector] = field(default_factory=list)  # detached from their batchers on close

    def close(self) -> None:
        self.source.close()
        if self.record is not None:
            self.record.close()
        for view in self.batched:
            view.close()


def resolve_models(camera: CameraConfig, registry: ModelRegistry) -> list[str]:
    """The models to run on `camera`; raises PipelineConfigError when a rule's labels cannot be served."""
    provided = model_labels(registry, built=True)
    buildable = model_labels(registry, built=False)
    problems = check_label_coverage(camera, provided, buildable=buildable)
    if problems:
        raise PipelineConfigError(camera.id, problems)
    return select_models(camera, provided)


def source_config(camera: CameraConfig, *, realtime: bool, loop: bool, decode: bool = True) -> SourceConfig:
    clip = camera.evidence.clip
    ring = clip.max_clip_s + clip.pre_roll_s + clip.post_roll_s + 10.0 if camera.evidence.enabled else 0.0
    return SourceConfig(
        analysis_fps=camera.analysis_fps, realtime=realtime, loop=loop, ring_seconds=ring, decode=decode
    )


def build_runtime(
    camera: CameraConfig,
    registry: ModelRegistry,
    *,
    sinks: Sequence[EventSink] = (),
    source: str | None = None,
    realtime: bool = False,
    loop: bool = False,
    evidence: EvidenceOptions | None = None,
    clip_writer: ClipWriter | None = None,
    detector_options: DetectorOptions | None = None,
    on_inference: Callable[[str, float], None] | None = None,
    batching: BatcherPool | None = None,
    clock: Callable[[Frame], datetime] | None = None,
) -> CameraRuntime:
    """Everything one camera needs. `source` replaces the config's detect stream (replay of another file/URL).

    `batching`: a `BatcherPool` shared by a worker's cameras batches their inferences per model (one session.run
    for several cameras' frames, at most one frame per camera per batch); None runs the detectors directly.
    """
    names = resolve_models(camera, registry)
    main = VideoSource(
        source or camera.detect_source, source_config(camera, realtime=realtime, loop=loop), camera_id=camera.id
    )
    record: VideoSource | None = None
    recorder: EvidenceRecorder | None = None
    if evidence is not None and camera.evidence.enabled:
        if camera.record_source is not None and source is None:
            record_cfg = source_config(camera, realtime=realtime, loop=loop, decode=False)
            record = VideoSource(camera.record_source, record_cfg, camera_id=camera.id)
        recorder = _recorder(camera, registry, names, evidence, clip_writer, record or main, record is not None)
    heads = head_model(camera, names, registry, detector_options)  # no_helmet: the helmet model on person crops
    framed = [n for n in names if heads is None or n != heads.name]  # the models that look at frames (or windows)
    rules = CameraRules(camera, heads=heads)
    health = HealthChecks(camera.health) if camera.health.enabled else None  # camera_offline, camera_tamper
    views = [batching.for_camera(registry.detector(n, detector_options), camera.id) for n in framed] if batching else []
    detectors: list[FrameDetector] = [*views] or [registry.detector(n, detector_options) for n in framed]
    crops = _crop_detectors(camera, registry, framed, rules, detector_options)
    slots = [
        ModelSlot(d, interval_s=1.0 / camera.model_fps.get(n, camera.analysis_fps), crops=crops.get(n))
        for n, d in zip(framed, detectors, strict=True)
    ]
    pipeline = CameraPipeline(
        camera,
        slots,
        rules,
        sinks=sinks,
        evidence=recorder,
        tracker=camera.tracker,
        gate=camera.motion_gate,  # None: the pipeline's default, off when a rule needs every frame
        on_inference=on_inference,
        clock=clock,
        health=health,
    )
    log.info("camera %s: models %s, %d rules", camera.id, names, len(rules.rules))
    return CameraRuntime(camera, pipeline, main, record, names, views)


def _crop_detectors(
    camera: CameraConfig,
    registry: ModelRegistry,
    names: Sequence[str],
    rules: CameraRules,
    options: DetectorOptions | None,
) -> dict[str, CropDetector]:
    """Per model name, the crop runner of `regions` mode; none in `full` mode and none for a model that serves a
    rule reading whole frames (`Rule.reads_whole_frame`)."""
    if camera.detect.mode != "regions":
        return {}
    whole = {label for r in rules.rules if r.reads_whole_frame for label in r.required_labels}
    out = {}
    for name in names:
        if whole & set(registry.card(name).labels.values()):
            continue
        out[name] = CropDetector(registry.detector(name, options), camera.detect.crop_input)
    return out


def _recorder(
    camera: CameraConfig,
    registry: ModelRegistry,
    names: Sequence[str],
    evidence: EvidenceOptions,
    clip_writer: ClipWriter | None,
    ring_source: VideoSource,
    separate_record: bool,
) -> EvidenceRecorder:
    """The evidence recorder, cutting clips from `ring_source`'s packets: the `record` stream's (on the wall clock,
    `separate_record`) or the detect stream's (on its media clock)."""
    clock: Literal["media", "wall"] = "wall" if separate_record else "media"
    return EvidenceRecorder(
        camera,
        MediaStore(evidence.media_root),
        ring=ring_source.ring,
        clip_writer=clip_writer,
        clip=camera.evidence.clip,
        snapshot=camera.evidence.snapshot,
        clock=clock,
        models={n: registry.card(n).sha256 or "" for n in names},
        key=evidence.key,
        url_for=evidence.url_for,
        chain=evidence.chain,
        clipless=HealthChecks.CLIPLESS,
    )
