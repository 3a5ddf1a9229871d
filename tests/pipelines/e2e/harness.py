"""Shared helpers of the end-to-end tests: fixture cameras, in-process replays (cached per test session), truth file.

The three vtest cameras (exit_van, intrusion_path, quiet_lawn) are replayed together as one merged camera: the rules
run independently on the same tracked detections, so one ~20 s replay answers all three (and the evidence tests) —
`vtest_replay()` caches it for the whole session.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from pipelines.camera.assemble import EvidenceOptions, build_runtime
from pipelines.camera.pipeline import PipelineStats
from pipelines.camera.sinks import CallbackSink
from pipelines.config.camera import CameraConfig, load_camera_config
from pipelines.events import EventType, IncidentEvent
from vision.detect.registry import ModelRegistry
from vision.media.clip_writer import ClipWriter

E2E_DIR = Path(__file__).resolve().parent
ROOT = E2E_DIR.parents[2]
MODELS_DIR = ROOT / "models"
VTEST_CAMERAS = ("exit_van.yaml", "intrusion_path.yaml", "quiet_lawn.yaml")

EventKey = tuple[str, str | None, str, float]


def load(name: str) -> CameraConfig:
    return load_camera_config(E2E_DIR / name)


def merged_camera(names: Sequence[str], camera_id: str = "e2e-vtest") -> CameraConfig:
    """One camera with the zones and rules of several fixture cameras (same detect stream)."""
    cams = [load(n) for n in names]
    data = cams[0].model_dump(mode="json")
    data.update(
        id=camera_id,
        name=camera_id,
        zones=[z for c in cams for z in c.model_dump(mode="json")["zones"]],
        rules=[r for c in cams for r in c.model_dump(mode="json")["rules"]],
    )
    data["streams"]["detect"] = cams[0].detect_source
    return CameraConfig.model_validate(data)


def write_camera(camera: CameraConfig, path: Path, **changes: Any) -> Path:
    """Write `camera` as a YAML camera config (absolute stream paths), with top-level `changes` applied."""
    data = camera.model_dump(mode="json", exclude_none=True)
    data["streams"]["detect"] = camera.detect_source
    data.update(changes)
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


@dataclass
class ReplayResult:
    camera: CameraConfig
    events: list[IncidentEvent]
    stats: PipelineStats
    media_root: Path | None
    models: list[str] = field(default_factory=list)

    def of(
        self, *, rule: str | None = None, zone: str | None = None, type_: EventType | None = None
    ) -> list[IncidentEvent]:
        return [
            e
            for e in self.events
            if (rule is None or e.rule == rule)
            and (zone is None or e.zone == zone)
            and (type_ is None or e.type is type_)
        ]


def registry() -> ModelRegistry:
    return ModelRegistry(MODELS_DIR)


def replay(camera: CameraConfig, *, source: str | None = None, media_root: Path | None = None) -> ReplayResult:
    """Run `camera`'s whole pipeline over its detect stream (or `source`) in this process, as `safewatch replay`."""
    events: list[IncidentEvent] = []
    lock = threading.Lock()

    def collect(event: IncidentEvent) -> None:
        with lock:
            events.append(event)

    writer = ClipWriter() if media_root is not None else None
    evidence = EvidenceOptions(media_root=media_root) if media_root is not None else None
    runtime = build_runtime(
        camera, registry(), sinks=[CallbackSink(collect)], source=source, evidence=evidence, clip_writer=writer
    )
    try:
        runtime.source.open()
        runtime.pipeline.run(runtime.source)
    finally:
        runtime.close()
        if writer is not None:
            writer.close()
    return ReplayResult(camera, events, runtime.pipeline.stats, media_root, runtime.models)


_CACHE: dict[str, ReplayResult] = {}
_CACHE_LOCK = threading.Lock()


def vtest_replay(workdir: Path) -> ReplayResult:
    """The merged vtest camera replayed once per test session, with evidence under `workdir`/media."""
    with _CACHE_LOCK:
        if "vtest" not in _CACHE:
            _CACHE["vtest"] = replay(merged_camera(VTEST_CAMERAS), media_root=workdir / "media")
        return _CACHE["vtest"]


def event_keys(events: Sequence[IncidentEvent]) -> list[EventKey]:
    """The reproducible part of an event sequence: (rule, zone, type, offset_s), sorted."""
    return sorted((e.rule, e.zone, e.type.value, e.offset_s) for e in events)


@dataclass(frozen=True)
class Crossing:
    person: str
    enter_s: float
    leave_s: float | None = None


@dataclass(frozen=True)
class IntrusionTruth:
    zone: str
    min_seconds: float
    tolerance_s: float
    crossings: list[Crossing]
    ambiguous: list[Crossing]


def intrusion_truth() -> IntrusionTruth:
    raw = yaml.safe_load((E2E_DIR / "intrusion_truth.yaml").read_text(encoding="utf-8"))
    return IntrusionTruth(
        zone=raw["zone"],
        min_seconds=float(raw["min_seconds"]),
        tolerance_s=float(raw["tolerance_s"]),
        crossings=[Crossing(**c) for c in raw["crossings"]],
        ambiguous=[Crossing(**c) for c in raw["ambiguous"]],
    )
