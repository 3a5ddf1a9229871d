"""Hot swap of a running camera's model versions (a model pushed through `POST /v1/models`), without a restart.

`prepare_swap` runs off the frame thread: it builds the camera's model slots from a registry view that has the new
versions installed (the same `assemble` code a start uses), loading each new session and warming it with one
inference on a frame-sized blank image, so the frame loop never waits for a model to load. `apply_swap` hands the
slots to the pipeline's frame boundary (`CameraPipeline.at_frame_boundary` + `replace_models`): the frame in flight
finishes on the old version, the next one runs on the new; the source, tracker, incidents and evidence ring go on,
so no frame is dropped and no incident is closed. The evidence recorder's model hashes follow the swap.

A swap in place is refused (None: the caller restarts the camera) when the set of models would change, or when the
version of the no_helmet rules' crop model changes (the rules hold that detector).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass, field

import numpy as np

from pipelines.camera.assemble import CameraRuntime, _models, resolve_models
from pipelines.camera.evidence import EvidenceRecorder
from pipelines.camera.pipeline import ModelSlot
from pipelines.rules.factory import crop_model_name
from vision.detect.batcher import BatcherPool, CameraDetector
from vision.detect.detector import DetectorOptions
from vision.detect.registry import ModelRegistry

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Swap:
    """New slots for a camera's frame models, ready to run; `versions`: model name → sha256 after the swap."""

    slots: list[ModelSlot]
    views: list[CameraDetector] = field(default_factory=list)
    versions: dict[str, str] = field(default_factory=dict)


def prepare_swap(
    runtime: CameraRuntime,
    registry: ModelRegistry,
    changed: Collection[str],
    *,
    options: DetectorOptions | None = None,
    batching: BatcherPool | None = None,
) -> Swap | None:
    """Slots for `runtime`'s models from `registry`, loaded and warmed (module docs); None when the swap cannot be
    done in place. `changed`: the model names whose version changes."""
    camera = runtime.camera
    names = resolve_models(camera, registry)
    if names != runtime.models:
        return None
    crop = crop_model_name(camera, {n: set(registry.card(n).provides) for n in names})
    if crop is not None and crop in changed:
        return None
    _rules, slots, views = _models(camera, registry, names, options, batching)
    last = runtime.pipeline.last_frame
    if last is not None:
        blank = np.zeros_like(last.image)
        for slot in slots:
            if slot.detector.name in changed:
                slot.detector.detect(blank)  # the session's first run (allocations, kernels) happens here
    versions = {n: registry.card(n).sha256 or "" for n in names}
    return Swap(slots, views, versions)


def apply_swap(runtime: CameraRuntime, swap: Swap, done: Callable[[], None] | None = None) -> None:
    """Swap at the next frame boundary (module docs); `done` runs on the frame thread right after."""

    def change() -> None:
        runtime.pipeline.replace_models(swap.slots)
        old, runtime.batched = runtime.batched, swap.views
        for view in old:
            view.close()
        if isinstance(runtime.pipeline.evidence, EvidenceRecorder):
            runtime.pipeline.evidence.models.update(swap.versions)
        log.info("camera %s: models swapped between frames: %s", runtime.camera.id, _short(swap.versions))
        if done is not None:
            done()

    runtime.pipeline.at_frame_boundary(change)


def _short(versions: dict[str, str]) -> str:
    return ", ".join(f"{n}@{sha[:12]}" for n, sha in sorted(versions.items()))
