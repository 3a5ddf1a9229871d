"""Shadow runs: a candidate model beside production, on the same frames, through the same rules.

A camera's `shadow_models` (pipelines/config/camera.py) builds a second, lighter `CameraPipeline` (assemble.py's
`build_shadow`): the candidate detector(s) in place of the production model(s) for the labels they serve, its own
tracker, rules and incident manager, snapshots but no clips, no health rules. `ShadowBranch` feeds it the frames
the production pipeline analyses, at the shadow's own rate, on its own thread:

- The shadow's thread runs `NICE` steps nicer than production (its inferences run on it: one ONNX Runtime thread).
- `offer(frame)` is all production pays per frame: a rate check and a hand-over through a one-frame mailbox. When the
  shadow is still busy with the previous frame the newer one replaces it (counted in `ShadowStats.dropped`), so a
  slow candidate skips frames and never slows production. `lockstep=True` (offline replays of a file, where there is
  no real time to protect and results should not depend on the machine's load) waits instead until the shadow has
  taken the previous frame.
- Its events leave through `ShadowTag`, which marks them `shadow: true` with the candidate's name
  (pipelines/events.py): the store keeps them apart and never pushes them (api/store/incidents.py).
- `end(how)` follows production's end: *finish* and *hand over* close the shadow's open incidents (a shadow keeps no
  state across owners: the next owner starts a fresh one), *abandon* publishes nothing more.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass

from pipelines.camera.pipeline import CameraPipeline, EventSink, Exit
from pipelines.events import IncidentEvent
from vision.types import Frame

log = logging.getLogger(__name__)

#: How long `end` waits for the shadow's thread to finish the frame in hand.
JOIN_S = 30.0
#: How much nicer (Linux scheduling priority) the shadow's thread is than production's: with one ONNX Runtime thread
#: its inferences run on that thread too, so a busy machine serves production first.
NICE = 10


class ShadowTag:
    """Marks every event of a shadow run (`shadow: true`, `candidate`) before it reaches `sink`."""

    def __init__(self, candidate: str, sink: EventSink) -> None:
        self.candidate = candidate
        self.sink = sink

    def handle(self, event: IncidentEvent) -> None:
        self.sink.handle(event.model_copy(update={"shadow": True, "candidate": self.candidate}))


@dataclass(slots=True)
class ShadowStats:
    offered: int = 0  # frames production offered at the shadow's rate
    dropped: int = 0  # of those, replaced in the mailbox before the shadow took them (it was behind)
    processed: int = 0
    errors: int = 0  # frames the shadow failed on (logged; production never sees them)


class ShadowBranch:
    """Runs `pipeline` (the shadow's) on its own thread over the frames production offers (module docs)."""

    def __init__(self, pipeline: CameraPipeline, candidate: str, *, rate_fps: float, lockstep: bool = False) -> None:
        self.pipeline = pipeline
        self.candidate = candidate
        self.interval_s = 1.0 / rate_fps
        self.lockstep = lockstep
        self.stats = ShadowStats()
        self._cond = threading.Condition()
        self._pending: Frame | None = None
        self._closing = False
        self._ended = False
        self._next_pts: float | None = None
        self._last: Frame | None = None  # the last frame the shadow processed
        self._thread: threading.Thread | None = None

    # -- production's side ---------------------------------------------------------------------------------------
    def offer(self, frame: Frame) -> None:
        """A frame production analyses; taken when the shadow's rate is due (never blocks unless `lockstep`)."""
        if not self._due(frame.pts):
            return
        with self._cond:
            if self._closing:
                return
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=f"shadow-{self.pipeline.camera.id}", daemon=True)
                self._thread.start()
            while self.lockstep and self._pending is not None and self._thread.is_alive():
                self._cond.wait(0.5)
            self.stats.offered += 1
            if self._pending is not None:
                self.stats.dropped += 1
            self._pending = frame
            self._cond.notify_all()

    def _due(self, pts: float) -> bool:
        """At most one frame per `interval_s` of media time (a source that starts over, e.g. a looped file, starts
        the schedule over)."""
        nxt = self._next_pts
        if nxt is not None and nxt - self.interval_s <= pts < nxt - 1e-6:
            return False
        in_step = nxt is not None and nxt - 1e-6 <= pts < nxt + self.interval_s
        self._next_pts = nxt + self.interval_s if in_step and nxt is not None else pts + self.interval_s
        return True

    def end(self, how: Exit) -> None:
        """Stop the shadow's thread (after the frame it holds) and end its run (module docs). Idempotent."""
        with self._cond:
            if self._ended:
                return
            self._ended = self._closing = True
            if how is Exit.ABANDON:
                self._pending = None
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(JOIN_S)
            if thread.is_alive():
                log.warning(
                    "camera %s: shadow %s still busy after %.0f s", self.pipeline.camera.id, self.candidate, JOIN_S
                )
        s = self.stats
        log.info(
            "camera %s: shadow %s ended (%s): %d frames offered, %d skipped while it was busy, %d processed, %d failed",
            self.pipeline.camera.id,
            self.candidate,
            how.value,
            s.offered,
            s.dropped,
            s.processed,
            s.errors,
        )
        if how is Exit.ABANDON:
            return
        try:
            self.pipeline.finish(self._last)
        except Exception:
            log.exception("camera %s: shadow %s failed to finish", self.pipeline.camera.id, self.candidate)

    # -- the shadow's thread -------------------------------------------------------------------------------------
    def _run(self) -> None:
        _lower_priority()
        while True:
            with self._cond:
                while self._pending is None and not self._closing:
                    self._cond.wait()
                frame, self._pending = self._pending, None
                self._cond.notify_all()
            if frame is None:
                return
            try:
                self.pipeline.process(frame)
                self._last = frame
                self.stats.processed += 1
            except Exception:  # a failing candidate must never reach production
                self.stats.errors += 1
                log.exception("camera %s: shadow %s failed on frame %d", frame.camera_id, self.candidate, frame.seq)


def _lower_priority() -> None:
    """Make the calling thread `NICE` nicer (Linux: a thread is a schedulable task with its own nice value)."""
    if not hasattr(os, "setpriority"):
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + NICE))
    except OSError as exc:  # not permitted or not supported: the shadow runs at production's priority
        log.info("shadow thread priority unchanged: %s", exc)
