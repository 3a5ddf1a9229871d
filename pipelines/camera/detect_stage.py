"""The detect stage of `CameraPipeline`: a frame (and the tracker's boxes) in, that frame's `Detections` out.

Two modes (the camera's `detect:` section, `pipelines/config/detect.py`):
- `full`: every model on the whole frame; the motion gate skips inference on unchanged frames and the last
  detections stand for them (what a still scene gives anyway).
- `regions`: from the motion mask (changed pixels since the previous analysed frame) and the tracker's boxes
  (tentative, tracked and lost tracks, extended along their velocity) it builds a few padded, merged regions,
  packs them into model-sized windows (`vision/detect/regions.py`) and runs each region-capable model on those
  crops (`vision/detect/crops.py`), batched. A whole frame still runs on the first frame, every
  `full_frame_interval_s`, and whenever the windows would cost more than `max_cost` of a whole frame (they cover
  most of it). Tracks that stopped moving become stationary (`vision/track/stationary.py`): they are left out of
  the regions and their last detection is fed to the tracker, so the track, its zone state and its dwell go on;
  they are re-verified every `stationary_interval_s` or when motion touches them, and dropped when the detector no
  longer finds them.
Models without a crop runner (a test double, a fixed-size model the crop path cannot resize) and models that serve a
rule reading the whole frame (`smoke_fire`: smoke has no clean box, its k-of-n vote is over whole frames) always run
on whole frames, at their own rate.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from pipelines.config.detect import DetectConfig
from vision.detect.crops import CropDetector
from vision.detect.regions import Box, Window, boxes_from_mask, pad_boxes
from vision.digest import stable_fraction
from vision.motion import MotionGate, MotionMask
from vision.track.stationary import StationaryObjects
from vision.types import Detections, Frame

log = logging.getLogger(__name__)

#: A stationary box must lie this many pixels inside a window to count as looked at.
COVER_MARGIN_PX = 2.0


class FrameDetector(Protocol):
    """What the pipeline needs of a detector (vision.detect.Detector satisfies it)."""

    @property
    def name(self) -> str: ...

    def detect(self, image: npt.NDArray[np.uint8]) -> Detections: ...


@dataclass(slots=True)
class ModelSlot:
    """One detector on this camera, run at most every `interval_s` of media time (per-model analysis rates);
    `crops` runs it on motion regions (None: whole frames only)."""

    detector: FrameDetector
    interval_s: float = 0.0
    last_run: float = -math.inf
    last: Detections = field(default_factory=Detections.empty)
    crops: CropDetector | None = None

    def due(self, pts: float) -> bool:
        return pts - self.last_run >= self.interval_s - 1e-6


@dataclass(slots=True)
class DetectCounts:
    """What the stage did, since it started."""

    whole: int = 0  # whole-frame inferences
    crop_runs: int = 0  # frames on which a model ran on windows
    windows: int = 0  # windows run
    gated: int = 0  # frames the motion gate (full mode) skipped
    carried: int = 0  # stationary rows fed to the tracker instead of a detection
    cost: list[float] = field(default_factory=list)  # per analysed frame: model pixels / one whole frame's


def camera_phase(camera_id: str) -> float:
    """A fixed fraction in [0, 1) per camera id (`stable_fraction`): where in `full_frame_interval_s` the camera's
    periodic whole frames fall, so that a worker's cameras do not all run them on the same frame tick."""
    return stable_fraction(camera_id)


TrackBoxes = Sequence[tuple[int, Box]]
OnInference = Callable[[str, float], None]


class DetectStage:
    """Detections per frame for one camera (see the module docs)."""

    def __init__(
        self,
        slots: Sequence[ModelSlot],
        config: DetectConfig,
        gate: MotionGate,
        *,
        on_inference: OnInference | None = None,
        frame_interval_s: float = 0.2,
        phase: float = 0.0,
    ) -> None:
        self.slots = list(slots)
        self.config = config
        self.gate = gate
        self.regions = config.mode == "regions" and any(s.crops is not None for s in self.slots)
        self.motion = MotionMask(gate.config.width, config.motion_threshold)
        self.stationary = StationaryObjects(config.stationary_config())
        self.counts = DetectCounts()
        self._on_inference = on_inference
        self.ahead_s = frame_interval_s
        self._last_whole = -math.inf
        self._phase_s = (phase % 1.0) * config.full_frame_interval_s
        self._last = Detections.empty()

    def detect(self, frame: Frame, gray: npt.NDArray[np.float32] | None, tracks: TrackBoxes) -> Detections:
        """This frame's detections (frame pixels, untracked). `gray`: the frame's `small_gray` at the gate's width
        when the caller has it; `tracks`: the tracker's boxes (`ByteTracker.boxes`)."""
        return self._regions(frame, gray, tracks) if self.regions else self._full(frame, gray)

    def observe(self, tracked: Detections, pts: float) -> None:
        """The tracker's output for this frame (stationary bookkeeping)."""
        if self.regions:
            self.stationary.observe(tracked, pts)

    # -- full mode ----------------------------------------------------------------------------------------------
    def _full(self, frame: Frame, gray: npt.NDArray[np.float32] | None) -> Detections:
        decision = self.gate.check(frame.image, frame.pts, gray=gray)
        if not decision.run:
            self.counts.gated += 1
            return self._last
        parts = []
        for slot in self.slots:
            if slot.due(frame.pts):
                slot.last = self._run_whole(slot, frame)
            parts.append(slot.last)
        self._last = Detections.merge(parts)
        return self._last

    def _run_whole(self, slot: ModelSlot, frame: Frame) -> Detections:
        t0 = time.perf_counter()
        found = slot.detector.detect(frame.image)
        self._record(slot, frame.pts, time.perf_counter() - t0)
        self.counts.whole += 1
        return found

    def _record(self, slot: ModelSlot, pts: float, elapsed: float) -> None:
        slot.last_run = pts
        if self._on_inference is not None:
            self._on_inference(slot.detector.name, elapsed)

    # -- regions mode -------------------------------------------------------------------------------------------
    def _regions(self, frame: Frame, gray: npt.NDArray[np.float32] | None, tracks: TrackBoxes) -> Detections:
        cfg, pts = self.config, frame.pts
        frame_wh = (frame.width, frame.height)
        mask = self.motion.update(frame.image, gray=gray)
        moving = boxes_from_mask(mask, frame_wh)
        due = self.stationary.due(pts, lambda box: any(_overlaps(box, m) for m in moving))
        held = self.stationary.stationary()
        wanted = moving + [b for tid, b in tracks if tid < 0 or tid not in held] + [held[t] for t in due]
        regions = pad_boxes(wanted, cfg.pad, cfg.min_pad_px, frame_wh)
        whole_due = pts - self._last_whole >= cfg.full_frame_interval_s - 1e-6
        looked: set[int] = set()
        parts, cost, whole = [], 0.0, False
        for slot in self.slots:
            if not slot.due(pts):
                parts.append(slot.last)
                continue
            crops = slot.crops
            windows = None if whole_due or crops is None else self._windows(crops, regions, frame_wh)
            if crops is None or windows is None:
                slot.last = self._run_whole(slot, frame)
                cost, whole = cost + 1.0, whole or crops is not None
            else:
                slot.last = self._run_crops(slot, frame, windows)
                cost += crops.cost(len(windows), frame_wh)
            looked |= self._verify(slot, list(held), windows, pts, frame_wh)
            parts.append(slot.last)
        if whole:
            first = self._last_whole == -math.inf
            # the first periodic whole frame comes `phase` of an interval early: cameras started together (a worker
            # restart) then spread their periodic whole frames over the interval instead of running them at once
            self._last_whole = pts - self._phase_s if first else pts
        carried = self.stationary.carried(skip=sorted(looked))
        self.counts.carried += len(carried)
        self.counts.cost.append(cost)
        if len(self.counts.cost) > 1000:
            del self.counts.cost[:500]
        return Detections.merge([*parts, carried])

    def _windows(self, crops: CropDetector, regions: list[Box], frame_wh: tuple[int, int]) -> list[Window] | None:
        """The windows to run `crops` on (regions that fit in one window together share it), or None when a whole
        frame is the better buy."""
        windows = crops.plan(regions, frame_wh)
        if windows is None or crops.cost(len(windows), frame_wh) > self.config.max_cost:
            return None
        return windows

    def _run_crops(self, slot: ModelSlot, frame: Frame, windows: list[Window]) -> Detections:
        if not windows:
            slot.last_run = frame.pts
            return Detections.empty()
        assert slot.crops is not None
        t0 = time.perf_counter()
        found = slot.crops.detect(frame.image, windows)
        self._record(slot, frame.pts, time.perf_counter() - t0)
        self.counts.crop_runs += 1
        self.counts.windows += len(windows)
        return found

    def _verify(
        self, slot: ModelSlot, held: list[int], windows: list[Window] | None, pts: float, frame_wh: tuple[int, int]
    ) -> set[int]:
        """Re-verify the stationary objects of `slot`'s model that it just looked at (the whole frame, or whole
        inside a window); returns the ids looked at (verified or dropped), which are not carried this frame."""
        boxes = self.stationary.stationary()
        mine = [t for t in held if t in boxes and self.stationary.model_of(t) in ("", slot.detector.name)]
        if windows is not None and slot.crops is not None:
            mine = [t for t in mine if slot.crops.covers(boxes[t], windows, frame_wh, COVER_MARGIN_PX)]
        failed = self.stationary.verify(mine, slot.last, pts)
        if failed:
            log.debug("stationary objects %s not found again by %s: dropped", failed, slot.detector.name)
        return set(mine)


def _overlaps(a: Box, b: Box) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]
