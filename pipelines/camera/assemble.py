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
from pipelines.camera.shadow import ShadowBranch, ShadowTag
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
    shadow: ShadowBranch | None = None  # the camera's shadow run (`shadow_models`), ended by the pipeline

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
    shadow_sinks: Sequence[EventSink] | None = None,
    shadow_lockstep: bool | None = None,
) -> CameraRuntime:
    """Everything one camera needs. `source` replaces the config's detect stream (replay of another file/URL).

    `batching`: a `BatcherPool` shared by a worker's cameras batches their inferences per model (one session.run
    for several cameras' frames, at most one frame per camera per batch); None runs the detectors directly.
    A camera with `shadow_models` gets a shadow run (pipelines/camera/shadow.py) whose events go to `shadow_sinks`
    (default: `sinks`), marked as shadow; `shadow_lockstep` (default: when the source is not live, i.e. a file read
    as fast as it decodes) makes production wait for the shadow to take each frame instead of skipping frames.
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
    rules, slots, views = _models(camera, registry, names, detector_options, batching)
    lockstep = not main.live if shadow_lockstep is None else shadow_lockstep
    shadow_to = sinks if shadow_sinks is None else shadow_sinks
    shadow = _shadow_branch(camera, registry, names, shadow_to, evidence, detector_options, clock, lockstep)
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
        health=HealthChecks(camera.health) if camera.health.enabled else None,  # camera_offline, camera_tamper
        shadow=shadow,
    )
    log.info("camera %s: models %s, %d rules", camera.id, names, len(rules.rules))
    return CameraRuntime(camera, pipeline, main, record, names, views, shadow)


def _models(
    camera: CameraConfig,
    registry: ModelRegistry,
    names: Sequence[str],
    options: DetectorOptions | None,
    batching: BatcherPool | None,
) -> tuple[CameraRules, list[ModelSlot], list[CameraDetector]]:
    """The camera's rules and a slot per model that looks at frames (or windows), with the batcher views to detach
    on close."""
    heads = head_model(camera, names, registry, options)  # no_helmet: the helmet model on person crops
    framed = [n for n in names if heads is None or n != heads.name]  # the models that look at frames (or windows)
    rules = CameraRules(camera, heads=heads)
    views = [batching.for_camera(registry.detector(n, options), camera.id) for n in framed] if batching else []
    detectors: list[FrameDetector] = [*views] or [registry.detector(n, options) for n in framed]
    crops = _crop_detectors(camera, registry, framed, rules, options)
    slots = [
        ModelSlot(d, interval_s=1.0 / camera.model_fps.get(n, camera.analysis_fps), crops=crops.get(n))
        for n, d in zip(framed, detectors, strict=True)
    ]
    return rules, slots, views


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


def resolve_shadow_models(camera: CameraConfig, registry: ModelRegistry, names: Sequence[str]) -> list[str]:
    """The models of `camera`'s shadow run: its `shadow_models` (known, built cards; a precision variant such as
    coco-yolov3-tiny-int8 may be one) in place of every production model in `names` that provides a label one of
    them provides, plus the production models none of them replaces. Raises PipelineConfigError when a candidate
    is unknown or not built, or the shadow run could not serve every rule."""
    problems = []
    for name in camera.shadow_models:
        if name not in registry.cards:
            known = ", ".join(sorted(registry.cards)) or "none"
            problems.append(f"shadow_models: model {name!r} has no model card (known: {known})")
        elif not registry.is_built(name):
            problems.append(
                f"shadow_models: model {name!r} is not built; build it with `safewatch models build {name}`"
            )
    if problems:
        raise PipelineConfigError(camera.id, problems)
    served = {label for name in camera.shadow_models for label in registry.card(name).provides}
    kept = [n for n in names if n not in camera.shadow_models and not served & set(registry.card(n).provides)]
    chosen = [*camera.shadow_models, *kept]
    provided = {n: set(registry.card(n).provides) for n in chosen}
    problems = check_label_coverage(camera.model_copy(update={"models": chosen}), provided)
    if problems:
        raise PipelineConfigError(camera.id, [f"shadow run: {p}" for p in problems])
    return chosen


def _shadow_branch(
    camera: CameraConfig,
    registry: ModelRegistry,
    names: Sequence[str],
    sinks: Sequence[EventSink],
    evidence: EvidenceOptions | None,
    options: DetectorOptions | None,
    clock: Callable[[Frame], datetime] | None,
    lockstep: bool,
) -> ShadowBranch | None:
    """The camera's shadow run (pipelines/camera/shadow.py), None without `shadow_models`. Its own rules, tracker
    and incidents over a copy of the camera config (its models, its rate, no shadow of its own); its detectors run
    on one ONNX Runtime thread each so that they take as little CPU from production as they can; evidence is a
    snapshot per incident and no clip (no packet ring: a shadow incident is compared, not reviewed as footage)."""
    if not camera.shadow_models:
        return None
    chosen = resolve_shadow_models(camera, registry, names)
    rate = min(camera.shadow_rate_fps or camera.analysis_fps, camera.analysis_fps)
    shadow_cam = camera.model_copy(
        update={"models": chosen, "analysis_fps": rate, "shadow_models": [], "shadow_rate_fps": None}
    )
    base = options or DetectorOptions()
    options = base.model_copy(update={"session": base.session.model_copy(update={"intra_op_threads": 1})})
    rules, slots, _ = _models(shadow_cam, registry, chosen, options, None)
    candidate = "+".join(camera.shadow_models)
    recorder = None
    if evidence is not None and camera.evidence.enabled:
        recorder = EvidenceRecorder(
            shadow_cam,
            MediaStore(evidence.media_root),
            ring=None,
            clip_writer=None,
            snapshot=camera.evidence.snapshot,
            models={n: registry.card(n).sha256 or "" for n in chosen},
            key=evidence.key,
            url_for=evidence.url_for,
            chain=evidence.chain,
        )
    pipeline = CameraPipeline(
        shadow_cam,
        slots,
        rules,
        sinks=[ShadowTag(candidate, s) for s in sinks],
        evidence=recorder,
        tracker=camera.tracker,
        gate=camera.motion_gate,
        clock=clock,
    )
    log.info("camera %s: shadow run of %s (models %s) at %.1f fps", camera.id, candidate, chosen, rate)
    return ShadowBranch(pipeline, candidate, rate_fps=rate, lockstep=lockstep)
