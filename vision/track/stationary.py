"""Stationary objects: tracked objects that stopped moving, kept without being re-detected on every frame.

A confirmed track whose box keeps an IoU of at least `iou` with the box it had when it stopped, for `after_s`
seconds of media time, becomes *stationary*. From then on the caller (the detect stage) leaves it out of the
regions it runs the detector on and feeds its last detection row to the tracker instead (`carried`), so the track,
its id and everything the rules derive from it (zone occupancy, dwell timers) go on as if it had been detected.

It is re-verified (`due`) every `interval_s`, or at once when motion touches its box; the caller then makes sure the
detector looks at it (a window that holds it whole, or a whole-frame inference) and reports what it saw with
`verify`: a detection of the same label with IoU ≥ `verify_iou` keeps it stationary (with the new row), none drops
it — it is then an ordinary track again, which the detector sees or loses like any other.

Pure bookkeeping on `Detections` rows keyed by tracker id; no model, no image.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from vision.track.matching import iou_matrix
from vision.types import Detections

Box = tuple[float, float, float, float]


class StationaryConfig(BaseModel):
    """When a tracked object counts as stationary and how often it is re-verified (seconds of media time)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    enabled: bool = Field(default=True, title="Enabled", description="False re-detects every object on every frame.")
    after_s: float = Field(
        default=3.0, gt=0, le=600, title="Still for (s)", description="Seconds a box must stay put (at most 600)."
    )
    iou: float = Field(
        default=0.8,
        gt=0,
        le=1,
        title="Still IoU",
        description="IoU with the box it had when it stopped above which an object has not moved.",
    )
    interval_s: float = Field(
        default=5.0,
        gt=0,
        le=3600,
        title="Re-verify every (s)",
        description="A stationary object is re-detected at least this often (at most every 3600 s), and at once "
        "when motion touches it.",
    )
    verify_iou: float = Field(
        default=0.5,
        gt=0,
        le=1,
        title="Re-verify IoU",
        description="A re-detection of the same label with at least this IoU keeps the object stationary.",
    )


@dataclass(slots=True)
class _Still:
    anchor: Box  # the box when the object stopped
    since: float  # pts at which it stopped
    row: Detections  # its latest detection (one row)
    stationary: bool = False
    verified: float = 0.0  # pts of the last re-verification (or of becoming stationary)
    seen: float = 0.0  # pts of the last frame that had this track


def _box(det: Detections, i: int) -> Box:
    b = det.xyxy[i]
    return float(b[0]), float(b[1]), float(b[2]), float(b[3])


def _iou(a: Box, b: Box) -> float:
    return float(iou_matrix(np.asarray([a]), np.asarray([b]))[0, 0])


class StationaryObjects:
    """Per-camera book of still and stationary tracks. Call, per analysed frame in pts order: `due` (which
    stationary objects need a look), then after detection `verify` (for those the detector looked at), `carried`
    (rows to feed the tracker for the others), and after tracking `observe` (the tracked detections)."""

    def __init__(self, config: StationaryConfig | None = None) -> None:
        self.config = config or StationaryConfig()
        self._book: dict[int, _Still] = {}
        self.dropped = 0  # re-verifications that failed

    def stationary(self) -> dict[int, Box]:
        """Tracker id → box of every stationary object."""
        return {tid: _box(s.row, 0) for tid, s in self._book.items() if s.stationary}

    def model_of(self, tracker_id: int) -> str:
        """The model that detected a tracked object ('' when unknown or its rows carry no `model` column)."""
        s = self._book.get(tracker_id)
        model = s.row.data.get("model") if s is not None else None
        return str(model[0]) if model is not None and len(model) else ""

    def due(self, pts: float, touched: Callable[[Box], bool]) -> list[int]:
        """Stationary objects to re-verify now: their interval is up, or `touched(box)` (motion over the box)."""
        out = []
        for tid, s in self._book.items():
            if s.stationary and (pts - s.verified >= self.config.interval_s or touched(_box(s.row, 0))):
                out.append(tid)
        return sorted(out)

    def verify(self, ids: Sequence[int], detections: Detections, pts: float) -> list[int]:
        """The detector looked at stationary objects `ids` and found `detections` (frame pixels, untracked);
        returns the ids that failed (dropped from the book)."""
        failed = []
        for tid in ids:
            s = self._book.get(tid)
            if s is None or not s.stationary:
                continue
            same = np.flatnonzero(detections.label == s.row.label[0])
            ious = iou_matrix(s.row.xyxy, detections.xyxy[same])[0] if same.size else np.empty(0)
            if ious.size and float(ious.max()) >= self.config.verify_iou:
                best = int(same[int(ious.argmax())])
                s.row, s.verified = detections[best].with_tracker_ids(s.row.tracker_id), pts
            else:
                del self._book[tid]
                failed.append(tid)
        self.dropped += len(failed)
        return failed

    def carried(self, skip: Sequence[int] = ()) -> Detections:
        """The last detection rows of the stationary objects not in `skip` (untracked, to feed the tracker)."""
        rows = [s.row for tid, s in sorted(self._book.items()) if s.stationary and tid not in skip]
        if not rows:
            return Detections.empty()
        merged = Detections.merge(rows)
        return merged.with_tracker_ids(np.full(len(merged), -1, dtype=np.int64))

    def observe(self, tracked: Detections, pts: float) -> None:
        """Update from the tracker's output for this frame: still timers, stationary promotion, forgotten tracks."""
        cfg = self.config
        present = set()
        for i, tid in enumerate(tracked.tracker_id.tolist()):
            if tid < 0 or not cfg.enabled:
                continue
            present.add(tid)
            box = _box(tracked, i)
            s = self._book.get(tid)
            if s is None:
                self._book[tid] = _Still(box, pts, tracked[i], seen=pts)
                continue
            s.seen = pts
            if s.stationary:
                continue  # its row changes only when re-verified
            s.row = tracked[i]
            if _iou(box, s.anchor) < cfg.iou:
                s.anchor, s.since = box, pts
            elif pts - s.since >= cfg.after_s:
                s.stationary, s.verified = True, pts
        for tid in [t for t in self._book if t not in present]:
            del self._book[tid]

    def reset(self) -> None:
        self._book.clear()
