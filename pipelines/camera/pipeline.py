"""`CameraPipeline`: source → detect (regions or gate) → track → rules → incidents → evidence → sinks, per camera.

`process(frame)` is the whole per-frame decision (pure with respect to I/O apart from evidence hooks), and `run` is
the one frame loop around it: the replay CLI, the embedded service and distributed workers all drive these. Sinks
are isolated: one failing sink is logged and counted, and never stops the pipeline or the other sinks.

A run ends in one of three ways (`Exit`, carried by the `StopSignal` that stops it; a source that ends finishes):
- *finish* (end of the source, camera removed, disabled or changed, shutdown in embedded mode): open incidents are
  closed, evidence flushed, the last events published;
- *hand over* (another process continues the camera): incidents stay open; the clips of closed incidents are
  written and their held events published, so the next owner starts from a complete state;
- *abandon* (the camera is no longer this process's to run): nothing more is published.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Protocol, cast

import numpy as np
import numpy.typing as npt

from pipelines.camera.detect_stage import DetectStage, FrameDetector, ModelSlot, camera_phase
from pipelines.config.camera import CameraConfig
from pipelines.events import IncidentEvent
from pipelines.incidents.manager import Incident, IncidentKey, IncidentManager
from pipelines.rules.base import FrameContext, Rule, RuleTiming, Violation
from pipelines.rules.health import HealthChecks
from vision.motion import MotionGate, MotionGateConfig, StaticSceneConfig, StaticSceneModel, small_gray
from vision.sources.errors import EndOfStream
from vision.track.bytetrack import ByteTracker
from vision.track.config import TrackerConfig
from vision.types import Frame, ImageArray

log = logging.getLogger(__name__)

__all__ = ["CameraPipeline", "Exit", "FrameDetector", "ModelSlot", "PipelineStats", "StopSignal"]

#: Time a (re)started pipeline needs before a rule without dwell can see a condition that holds (tracker warm-up).
WARMUP_S = 2.0
#: How long a hand-over waits for the clips of closed incidents: the next owner is waiting for the camera.
HANDOVER_FLUSH_S = 15.0


class Exit(StrEnum):
    """How a run ends (see the module docs)."""

    FINISH = "finish"
    HANDOVER = "handover"
    ABANDON = "abandon"


class StopSignal(threading.Event):
    """A stop request that says how the run ends; a plain `threading.Event` (or the source ending) means finish.

    The last request wins (a lease lost during a hand-over turns it into an abandon)."""

    def __init__(self) -> None:
        super().__init__()
        self.exit = Exit.FINISH

    def request(self, how: Exit) -> None:
        self.exit = how
        self.set()


class RuleSet(Protocol):
    """The camera's rules with its schedule applied (pipelines.rules.factory.CameraRules implements it)."""

    rules: list[Rule]
    timings: dict[str, RuleTiming]

    def evaluate(self, ctx: FrameContext) -> list[Violation]: ...


class EventSink(Protocol):
    def handle(self, event: IncidentEvent) -> None: ...


class FrameTap(Protocol):
    """Something that sees every analysed frame beside the pipeline and ends with it (a shadow run,
    pipelines/camera/shadow.py): `offer` must never block for long."""

    def offer(self, frame: Frame) -> None: ...

    def end(self, how: Exit) -> None: ...


class EvidenceHook(Protocol):
    """Evidence for incidents (pipelines.camera.evidence.EvidenceRecorder implements it)."""

    def on_frame(
        self,
        frame: Frame,
        violations: Sequence[Violation],
        live: Sequence[Incident],
        images: Mapping[IncidentKey, ImageArray] | None = None,
    ) -> None: ...

    def on_idle(self, frame: Frame, violations: Sequence[Violation]) -> None: ...

    def on_events(self, events: Sequence[IncidentEvent], frame: Frame | None) -> list[IncidentEvent]: ...

    def drain(self) -> list[IncidentEvent]: ...

    def close(self, timeout: float | None = None) -> list[IncidentEvent]: ...


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
    exit: Exit | None = None  # how `run` ended, once it has

    def fps(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.frames / elapsed if elapsed > 0 else 0.0


class CameraPipeline:
    """One camera's analysis. Detection is `DetectStage`'s (`pipelines/camera/detect_stage.py`): in `regions` mode
    (the camera's `detect:` section) windows around motion and tracked objects, with stationary objects carried; in
    `full` mode whole frames behind the motion gate, which a rule that must see every analysed frame
    (`Rule.needs_every_frame`) turns off by default, and a frame the gate skips reuses the last detections (the
    scene has not changed). The static-scene model runs when some rule uses it (`Rule.uses_static_scene`).

    `health` (the camera's camera_offline / camera_tamper rules, pipelines/rules/health.py) is evaluated on every
    analysed frame whatever the schedule, and on every poll of a live source that returned no frame (`idle`): then
    only the health incidents move, on a clock that continues the last frame's by the time elapsed since it."""

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
        health: HealthChecks | None = None,
        shadow: FrameTap | None = None,
    ) -> None:
        self.camera = camera
        self.models = list(models)
        self.rules = rules
        self.sinks = list(sinks)
        self.evidence = evidence
        self.tracker = ByteTracker(tracker)
        needs_every_frame = any(r.needs_every_frame for r in rules.rules)
        self.gate = MotionGate(gate or MotionGateConfig(enabled=not needs_every_frame))
        self.detect = DetectStage(
            models,
            camera.detect,
            self.gate,
            on_inference=self._inferred,
            frame_interval_s=1.0 / camera.analysis_fps,
            phase=camera_phase(camera.id),
        )
        wants_static = any(r.uses_static_scene for r in rules.rules)
        self.static = StaticSceneModel(static_scene) if wants_static else None
        self.health = health
        self.shadow = shadow  # a shadow run fed the same frames (`shadow_models`); ends with this run
        timings = {**rules.timings, **(health.timings if health is not None else {})}
        self.incidents = IncidentManager(camera.id, camera.site, timings)
        self.stats = PipelineStats()
        self._clock = clock or _frame_clock
        self._on_inference = on_inference
        self.last_frame: Frame | None = None  # the last frame `process` saw (a reference, for the zone editor's view)
        self._last_frame_at: float | None = None  # monotonic time `process` got it (the idle clock continues it)
        self._started_at = time.monotonic()
        self._pending: list[Callable[[], None]] = []  # changes waiting for the next frame boundary (hot swap)
        self._pending_lock = threading.Lock()

    # -- hot swap -----------------------------------------------------------------------------------------------
    def at_frame_boundary(self, change: Callable[[], None]) -> None:
        """Run `change` on the frame loop's thread right before the next frame (thread-safe): a model hot swap
        (pipelines/camera/model_swap.py) loads its detectors elsewhere and lands here, between two frames."""
        with self._pending_lock:
            self._pending.append(change)

    def replace_models(self, slots: Sequence[ModelSlot]) -> None:
        """New detectors for the camera's models (new versions) from the next frame on; each slot continues its
        predecessor's rate clock and last detections. Call it through `at_frame_boundary`."""
        old = {s.detector.name: s for s in self.detect.slots}
        for slot in slots:
            prev = old.get(slot.detector.name)
            if prev is not None:
                slot.last_run, slot.last = prev.last_run, prev.last
        self.models = list(slots)
        self.detect.slots = list(slots)

    def _apply_pending(self) -> None:
        with self._pending_lock:
            pending, self._pending = self._pending, []
        for change in pending:
            change()

    # -- per frame ----------------------------------------------------------------------------------------------
    def process(self, frame: Frame) -> list[IncidentEvent]:
        """Analyse one frame; returns (and sends to the sinks) the incident events it produced."""
        if self._pending:
            self._apply_pending()
        self.stats.frames += 1
        self.last_frame, self._last_frame_at = frame, time.monotonic()
        self.stats.last_pts, self.stats.last_wall = frame.pts, frame.wall_time
        if self.shadow is not None:
            self.shadow.offer(frame)
        gray = self._shared_gray(frame)
        detections = self.detect.detect(frame, gray, self.tracker.boxes(self.detect.ahead_s))
        self.stats.gated = self.detect.counts.gated
        tracked = self.tracker.update(detections, frame.pts)
        self.detect.observe(tracked, frame.pts)
        static_mask = self.static.update(frame.image, frame.pts, gray=gray) if self.static is not None else None
        now = self._clock(frame)
        ctx = FrameContext(frame=frame, detections=tracked, static_mask=static_mask)
        violations = self.rules.evaluate(ctx)
        healthy = self.health.on_frame(ctx, self._last_frame_at) if self.health is not None else []
        events = self.incidents.observe([*violations, *healthy], frame.pts, now)
        if self.evidence is not None:
            images = self.health.evidence_images(frame, healthy) if self.health is not None else None
            self.evidence.on_frame(frame, [*violations, *healthy], self.incidents.live(), images)
            events = self.evidence.on_events(events, frame) + self.evidence.drain()
        self._publish(events)
        return events

    def idle(self, at: float | None = None) -> list[IncidentEvent]:
        """A poll of the source returned no frame (at monotonic time `at`, default now): the health rules judge the
        silence (camera_offline); other rules' incidents stay as they are. Returns the events it produced."""
        if self.health is None:
            return []
        at = time.monotonic() if at is None else at
        violations = self.health.on_idle(at)
        keys = self.health.idle_keys
        if not violations and not any(i.key[0] in keys for i in self.incidents.live()):
            return self.evidence.drain() if self.evidence is not None else []
        offset, now = self._idle_clock(at)
        events = self.incidents.observe(violations, offset, now, scope=keys)
        if self.evidence is not None:
            if self.last_frame is not None:
                self.evidence.on_idle(self.last_frame, violations)
            events = self.evidence.on_events(events, self.last_frame) + self.evidence.drain()
        self._publish(events)
        return events

    def _idle_clock(self, at: float) -> tuple[float, datetime]:
        """(offset, wall time) of a poll without a frame: the last frame's, continued by the time since it."""
        if self.last_frame is None or self._last_frame_at is None:
            return max(0.0, at - self._started_at), datetime.now(UTC)
        elapsed = max(0.0, at - self._last_frame_at)
        return self.last_frame.pts + elapsed, self._clock(self.last_frame) + timedelta(seconds=elapsed)

    def finish(self, frame: Frame | None = None, timeout: float | None = None) -> list[IncidentEvent]:
        """End of the source or shutdown: close open incidents, flush evidence, publish the last events."""
        pts = frame.pts if frame is not None else self.stats.last_pts
        now = self._clock(frame) if frame is not None else datetime.now(UTC)
        if self.shadow is not None:
            self.shadow.end(Exit.FINISH)
        events = self.incidents.close_all(pts, now)
        if self.evidence is not None:
            events = self.evidence.on_events(events, frame) if frame is not None else events
            events = events + self.evidence.close(timeout)
        self._publish(events)
        return events

    def hand_over(self, timeout: float | None = HANDOVER_FLUSH_S) -> list[IncidentEvent]:
        """Another process continues this camera: incidents stay open; write the clips of closed incidents and
        publish the events held for them."""
        events = self.evidence.close(timeout) if self.evidence is not None else []
        self._publish(events)
        return events

    def end(self, how: Exit, frame: Frame | None = None) -> list[IncidentEvent]:
        """End a run the way `how` says; `frame` is the last one processed."""
        self.stats.exit = how
        if self.shadow is not None:
            self.shadow.end(how)
        if how is Exit.FINISH:
            return self.finish(frame)
        if how is Exit.HANDOVER:
            return self.hand_over()
        return []

    def warmup_s(self) -> dict[str, float]:
        """Per rule key: how long after a start before the rule can have seen a condition that already held
        (tracker warm-up, the rule's dwell, and the static-scene model's own dwell when the rule uses it)."""
        static_s = self.static.config.dwell_s if self.static is not None else 0.0
        out = {r.key: WARMUP_S + r.dwell_s + (static_s if r.uses_static_scene else 0.0) for r in self.rules.rules}
        return out | (self.health.warmup_s() if self.health is not None else {})

    def _shared_gray(self, frame: Frame) -> npt.NDArray[np.float32] | None:
        """The downscaled gray frame, computed once when two of the gate, the motion regions and the static-scene
        model want it at the same width."""
        width = self.gate.config.width
        users = (self.gate.config.enabled and not self.detect.regions) + self.detect.regions
        users += self.static is not None and self.static.config.width == width
        return small_gray(frame.image, width) if users >= 2 else None

    def _inferred(self, model: str, elapsed: float) -> None:
        self.stats.inferences += 1
        self.stats.infer_seconds.append(elapsed)
        if len(self.stats.infer_seconds) > 1000:
            del self.stats.infer_seconds[:500]
        if self._on_inference is not None:
            self._on_inference(model, elapsed)

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
        """Process frames until the source ends or `stop` is set, then end the way `stop` says (a `StopSignal`'s
        `exit`; finish otherwise). `stats.exit` tells how it ended."""
        stop = stop or threading.Event()
        last: Frame | None = None
        self._started_at = time.monotonic()
        if self.health is not None:
            self.health.start(self._started_at)
        for frame in _iterate(frames, stop):
            if frame is None:
                self.idle()
                continue
            self.process(frame)
            last = frame
            if on_frame is not None:
                on_frame(frame)
        self.end(stop.exit if isinstance(stop, StopSignal) else Exit.FINISH, last)
        return self.stats


class _Readable(Protocol):
    def read(self, timeout: float | None = None) -> Frame | None: ...


def _iterate(frames: Iterable[Frame] | _Readable, stop: threading.Event) -> Iterator[Frame | None]:
    """The frames; None for a poll of a silent live source (every 0.5 s), so `stop` and the silence are noticed."""
    if hasattr(frames, "read"):
        reader = cast(_Readable, frames)
        while not stop.is_set():
            try:
                frame = reader.read(timeout=0.5)
            except EndOfStream:
                return
            yield frame
        return
    for frame in frames:
        if stop.is_set():
            return
        yield frame


def _frame_clock(frame: Frame) -> datetime:
    return datetime.fromtimestamp(frame.wall_time, tz=UTC)
