"""`CameraPipeline`: source → motion gate → detect → track → rules → incidents → evidence → sinks, for one camera.

`process(frame)` is the whole per-frame decision (pure with respect to I/O apart from evidence hooks), so the
replay CLI, the embedded service and distributed workers all drive the same code. Sinks are isolated: one failing
sink is logged and counted, and never stops the pipeline or the other sinks.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol, cast

import numpy as np
import numpy.typing as npt

from pipelines.config.camera import CameraConfig
from pipelines.events import IncidentEvent
from pipelines.incidents.manager import Incident, IncidentManager
from pipelines.rules.base import FrameContext, Rule, RuleTiming, Violation
from vision.motion import MotionGate, MotionGateConfig, StaticSceneConfig, StaticSceneModel, small_gray
from vision.sources.errors import EndOfStream
from vision.track.bytetrack import ByteTracker
from vision.track.config import TrackerConfig
from vision.types import Detections, Frame

log = logging.getLogger(__name__)

# Rules that must see every analysed frame: a line crossing needs the positions on both sides of the line, and faint
# smoke may not pass the gate's change threshold. A camera with one of them runs without the motion gate. For the
# other rules a frame the gate skips reuses the last detections (the scene has not changed).
EVERY_FRAME_RULES = frozenset({"line_crossing", "smoke_fire"})


class FrameDetector(Protocol):
    """What the pipeline needs of a detector (vision.detect.Detector satisfies it)."""

    @property
    def name(self) -> str: ...

    def detect(self, image: npt.NDArray[np.uint8]) -> Detections: ...


class RuleSet(Protocol):
    """The camera's rules with its schedule applied (pipelines.rules.factory.CameraRules implements it)."""

    rules: list[Rule]
    timings: dict[str, RuleTiming]

    def evaluate(self, ctx: FrameContext) -> list[Violation]: ...


class EventSink(Protocol):
    def handle(self, event: IncidentEvent) -> None: ...


class EvidenceHook(Protocol):
    """Evidence for incidents (pipelines.camera.evidence.EvidenceRecorder implements it)."""

    def on_frame(self, frame: Frame, violations: Sequence[Violation], live: Sequence[Incident]) -> None: ...

    def on_events(self, events: Sequence[IncidentEvent], frame: Frame) -> list[IncidentEvent]: ...

    def drain(self) -> list[IncidentEvent]: ...

    def close(self, timeout: float | None = None) -> list[IncidentEvent]: ...


@dataclass(slots=True)
class ModelSlot:
    """One detector on this camera, run at most every `interval_s` of media time (per-model analysis rates)."""

    detector: FrameDetector
    interval_s: float = 0.0
    last_run: float = -math.inf
    last: Detections = field(default_factory=Detections.empty)

    def due(self, pts: float) -> bool:
        return pts - self.last_run >= self.interval_s - 1e-6


@dataclass(slots=True)
class PipelineStats:
    frames: int = 0
    inferences: int = 0
    gated: int = 0
    events: int = 0
    sink_errors: int = 0
    infer_seconds: list[float] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    last_pts: float = 0.0
    last_wall: float = 0.0

    def fps(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.frames / elapsed if elapsed > 0 else 0.0


class CameraPipeline:
    def __init__(
        self,
        camera: CameraConfig,
        models: Sequence[ModelSlot],
        rules: RuleSet,
        *,
        sinks: Sequence[EventSink] = (),
        evidence: EvidenceHook | None = None,
        tracker: TrackerConfig | None = None,
        gate: MotionGateConfig | None = None,
        static_scene: StaticSceneConfig | None = None,
        clock: Callable[[Frame], datetime] | None = None,
        on_inference: Callable[[str, float], None] | None = None,
    ) -> None:
        self.camera = camera
        self.models = list(models)
        self.rules = rules
        self.sinks = list(sinks)
        self.evidence = evidence
        self.tracker = ByteTracker(tracker)
        needs_every_frame = any(r.type in EVERY_FRAME_RULES for r in rules.rules)
        gate_cfg = gate or MotionGateConfig(enabled=not needs_every_frame)
        self.gate = MotionGate(gate_cfg)
        self.static = StaticSceneModel(static_scene) if _wants_static_scene(camera) else None
        self.incidents = IncidentManager(camera.id, camera.site, rules.timings)
        self.stats = PipelineStats()
        self._clock = clock or _frame_clock
        self._on_inference = on_inference
        self._last_detections = Detections.empty()
        self.last_frame: Frame | None = None  # the last frame `process` saw (a reference, for the zone editor's view)

    # -- per frame ----------------------------------------------------------------------------------------------
    def process(self, frame: Frame) -> list[IncidentEvent]:
        """Analyse one frame; returns (and sends to the sinks) the incident events it produced."""
        self.stats.frames += 1
        self.last_frame = frame
        self.stats.last_pts, self.stats.last_wall = frame.pts, frame.wall_time
        gray = self._shared_gray(frame)
        detections = self._detect(frame, gray)
        tracked = self.tracker.update(detections, frame.pts)
        static_mask = self.static.update(frame.image, frame.pts, gray=gray) if self.static is not None else None
        now = self._clock(frame)
        violations = self.rules.evaluate(FrameContext(frame=frame, detections=tracked, static_mask=static_mask))
        events = self.incidents.observe(violations, frame.pts, now)
        if self.evidence is not None:
            self.evidence.on_frame(frame, violations, self.incidents.live())
            events = self.evidence.on_events(events, frame) + self.evidence.drain()
        self._publish(events)
        return events

    def finish(self, frame: Frame | None = None, timeout: float | None = None) -> list[IncidentEvent]:
        """End of the source or shutdown: close open incidents, flush evidence, publish the last events."""
        pts = frame.pts if frame is not None else self.stats.last_pts
        now = self._clock(frame) if frame is not None else datetime.now(UTC)
        events = self.incidents.close_all(pts, now)
        if self.evidence is not None:
            events = self.evidence.on_events(events, frame) if frame is not None else events
            events = events + self.evidence.close(timeout)
        self._publish(events)
        return events

    def _shared_gray(self, frame: Frame) -> npt.NDArray[np.float32] | None:
        """The downscaled gray frame, computed once when both the gate and the static-scene model want it."""
        gate = self.gate.config
        if self.static is None or not gate.enabled or gate.width != self.static.config.width:
            return None
        return small_gray(frame.image, gate.width)

    def _detect(self, frame: Frame, gray: npt.NDArray[np.float32] | None = None) -> Detections:
        decision = self.gate.check(frame.image, frame.pts, gray=gray)
        if not decision.run:
            self.stats.gated += 1
            return self._last_detections
        parts = []
        for slot in self.models:
            if slot.due(frame.pts):
                t0 = time.perf_counter()
                slot.last = slot.detector.detect(frame.image)
                elapsed = time.perf_counter() - t0
                slot.last_run = frame.pts
                self.stats.inferences += 1
                self.stats.infer_seconds.append(elapsed)
                if len(self.stats.infer_seconds) > 1000:
                    del self.stats.infer_seconds[:500]
                if self._on_inference is not None:
                    self._on_inference(slot.detector.name, elapsed)
            parts.append(slot.last)
        self._last_detections = Detections.merge(parts)
        return self._last_detections

    def _publish(self, events: Iterable[IncidentEvent]) -> None:
        for event in events:
            self.stats.events += 1
            for sink in self.sinks:
                try:
                    sink.handle(event)
                except Exception:  # a failing sink must not stop the pipeline or the other sinks
                    self.stats.sink_errors += 1
                    log.exception("sink %s failed on event %s", type(sink).__name__, event.event_key)

    # -- driving a source ---------------------------------------------------------------------------------------
    def run(
        self,
        frames: Iterable[Frame] | _Readable,
        stop: threading.Event | None = None,
        on_frame: Callable[[Frame], None] | None = None,
    ) -> PipelineStats:
        """Process frames until the source ends or `stop` is set; then close incidents and flush evidence."""
        stop = stop or threading.Event()
        last: Frame | None = None
        for frame in _iterate(frames, stop):
            self.process(frame)
            last = frame
            if on_frame is not None:
                on_frame(frame)
        self.finish(last)
        return self.stats


class _Readable(Protocol):
    def read(self, timeout: float | None = None) -> Frame | None: ...


def _iterate(frames: Iterable[Frame] | _Readable, stop: threading.Event) -> Iterable[Frame]:
    if hasattr(frames, "read"):  # a VideoSource: poll with a timeout so `stop` is noticed on a silent stream
        reader = cast(_Readable, frames)
        while not stop.is_set():
            try:
                frame = reader.read(timeout=0.5)
            except EndOfStream:
                return
            if frame is not None:
                yield frame
        return
    for frame in frames:
        if stop.is_set():
            return
        yield frame


def _frame_clock(frame: Frame) -> datetime:
    return datetime.fromtimestamp(frame.wall_time, tz=UTC)


def _wants_static_scene(camera: CameraConfig) -> bool:
    return any(getattr(r, "type", "") == "exit_blocked" and getattr(r, "static_scene", False) for r in camera.rules)
