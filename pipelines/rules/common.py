"""Building blocks shared by the rule modules: watched zones, row selection, dwell timers, per-subject violations.

Conventions every rule follows:
- time is the frame's media time `ctx.frame.pts` (seconds), so replays are reproducible and skipped frames (motion
  gate) or a lower analysis fps do not change durations;
- a rule's zones are `WatchedZone`s: a camera zone tested through `vision.geometry` (anchor, label filter, minimum
  size), or the whole frame (`name` None) for rules whose zone list may be empty;
- per-object conditions get the subject `track:<tracker id>`. Rows without a tracker id (-1: the tracker has not
  confirmed them yet) are ignored when the pipeline tracks (`tracked=True`, the default), so a person entering does
  not open one incident for its tentative rows and another for its track. Without a tracker (`tracked=False`, e.g.
  `safewatch detect IMAGE --camera …`), the untracked rows of one zone form one zone-level violation (subject None).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pipelines.config.camera import Zone as ZoneConfig
from pipelines.rules.base import FrameContext, Violation
from vision.geometry import Zone as GeoZone
from vision.track.matching import assign, iou_matrix
from vision.types import BoolArray, Detections, Float64Array, FloatArray, IntArray

log = logging.getLogger(__name__)


def subject_of(track_id: int) -> str:
    return f"track:{track_id}"


@dataclass(frozen=True, slots=True)
class WatchedZone:
    """A zone a rule watches: a named camera zone, or the whole frame (`name` None, `geo` None)."""

    name: str | None
    geo: GeoZone | None = None

    @classmethod
    def whole_frame(cls) -> WatchedZone:
        return cls(None, None)

    @classmethod
    def from_config(cls, zone: ZoneConfig) -> WatchedZone:
        return cls(zone.name, zone.to_geometry())

    def contains(self, det: Detections, width: int, height: int) -> BoolArray:
        """Which detections are in the zone (the zone's anchor, label filter and minimum size apply)."""
        if self.geo is None:
            return np.ones(len(det), dtype=np.bool_)
        return self.geo.contains(det, width, height)

    def contains_points(self, points_px: npt.ArrayLike, width: int, height: int) -> BoolArray:
        """Which pixel points lie in the zone polygon (no label or size filter)."""
        pts = np.asarray(points_px, dtype=np.float64).reshape(-1, 2)
        if self.geo is None:
            return np.ones(len(pts), dtype=np.bool_)
        return self.geo.at(width, height).contains_points(pts)


def watched_zones(zones: Sequence[ZoneConfig], names: Sequence[str]) -> list[WatchedZone]:
    """The named zones in the rule's order; an empty `names` means the whole frame."""
    if not names:
        return [WatchedZone.whole_frame()]
    by_name = {z.name: z for z in zones}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise ValueError(f"unknown zone(s) {missing}; known: {sorted(by_name)}")
    return [WatchedZone.from_config(by_name[n]) for n in names]


def select(det: Detections, labels: Iterable[str], min_confidence: float | None) -> BoolArray:
    """Rows with one of `labels` and (if set) at least `min_confidence`."""
    labels = tuple(labels)
    mask = det.has_label(*labels) if labels else np.zeros(len(det), dtype=np.bool_)
    if min_confidence is not None:
        mask &= det.confidence >= np.float32(min_confidence)
    return mask


def subject_violations(
    rule_key: str,
    rule: str,
    zone: str | None,
    det: Detections,
    rows: IntArray,
    *,
    tracked: bool,
    confidence: Float64Array | None = None,
    evidence: Mapping[int, IntArray] | None = None,
    subject_ids: IntArray | None = None,
) -> list[Violation]:
    """One Violation per tracked subject among `rows` of `det` (see the module docs for untracked rows).

    `confidence` (aligned with rows) overrides the rows' detection confidence; `evidence` adds rows (e.g. head boxes)
    to a subject row's evidence; `subject_ids` (aligned with rows) overrides the tracker id a row is reported under.
    """
    if rows.size == 0:
        return []
    ids = det.tracker_id[rows] if subject_ids is None else subject_ids
    conf = det.confidence[rows].astype(np.float64) if confidence is None else confidence
    out: list[Violation] = []
    groups: dict[int, list[int]] = {}
    for i, tid in enumerate(ids.tolist()):
        if tid >= 0 or not tracked:
            groups.setdefault(tid if tid >= 0 else -1, []).append(i)
    for tid, members in groups.items():
        sel = rows[members]
        extra = [evidence[int(r)] for r in sel if evidence and int(r) in evidence]
        ev_rows = np.unique(np.concatenate([sel, *extra])) if extra else sel
        out.append(
            Violation(
                rule_key=rule_key,
                rule=rule,
                zone=zone,
                subject=subject_of(tid) if tid >= 0 else None,
                track_ids=(tid,) if tid >= 0 else (),
                labels=tuple(sorted(set(det.label[sel].tolist()))),
                confidence=float(conf[members].max()),
                evidence=det[ev_rows],
            )
        )
    return out


@dataclass(slots=True)
class _Presence:
    first: float
    last: float
    box: FloatArray
    track_id: int


class DwellTimer:
    """Since when each object has been present, bridging absences shorter than `grace_s`.

    `update(t, track_ids, boxes)` takes the rows present now (already filtered to the zone) and returns, per row,
    the time the object was first seen. An object absent for longer than `grace_s` is forgotten. Rows are matched to
    remembered objects by tracker id; with `rematch_iou` set, rows that are untracked or carry a new tracker id are
    also matched (one-to-one, maximum IoU) to remembered objects not seen this frame whose last box overlaps with at
    least that IoU — a parked vehicle re-detected under a new id after a detector dropout keeps its dwell time.
    Without `rematch_iou`, untracked rows (-1) start afresh every frame (first seen = now).
    """

    def __init__(self, grace_s: float, rematch_iou: float | None = None) -> None:
        self.grace_s = grace_s
        self.rematch_iou = rematch_iou
        self._objects: list[_Presence] = []

    def reset(self) -> None:
        self._objects = []

    def __len__(self) -> int:
        return len(self._objects)

    def update(self, t: float, track_ids: IntArray, boxes: FloatArray) -> Float64Array:
        self._objects = [o for o in self._objects if 0.0 <= t - o.last <= self.grace_s]
        by_track = {o.track_id: o for o in self._objects if o.track_id >= 0}
        matched: list[_Presence | None] = [by_track.get(int(tid)) if tid >= 0 else None for tid in track_ids.tolist()]
        if self.rematch_iou is not None:
            self._rematch(matched, track_ids, boxes)
        first = np.empty(len(matched), dtype=np.float64)
        for i, obj in enumerate(matched):
            tid = int(track_ids[i])
            if obj is None:
                obj = _Presence(t, t, boxes[i].copy(), tid)
                if tid >= 0 or self.rematch_iou is not None:
                    self._objects.append(obj)
            obj.last, obj.box = t, boxes[i].copy()
            if tid >= 0:
                obj.track_id = tid
            first[i] = obj.first
        return first

    def _rematch(self, matched: list[_Presence | None], track_ids: IntArray, boxes: FloatArray) -> None:
        taken = {id(o) for o in matched if o is not None}
        free = [o for o in self._objects if id(o) not in taken and (o.track_id < 0 or o.track_id not in track_ids)]
        rows = [i for i, o in enumerate(matched) if o is None]
        if not free or not rows:
            return
        assert self.rematch_iou is not None
        sim = iou_matrix(boxes[rows], np.stack([o.box for o in free]))
        pairs, _, _ = assign(sim, self.rematch_iou)
        for r, c in pairs:
            matched[rows[r]] = free[c]


def nms_any_label(xyxy: FloatArray, confidence: FloatArray, iou: float) -> IntArray:
    """Indices kept by class-agnostic greedy NMS (highest confidence first), in descending confidence order."""
    order = np.argsort(-confidence, kind="stable")
    if len(order) <= 1:
        return order.astype(np.int64)
    overlap = iou_matrix(xyxy, xyxy)
    keep: list[int] = []
    suppressed = np.zeros(len(order), dtype=np.bool_)
    for i in order.tolist():
        if suppressed[i]:
            continue
        keep.append(i)
        suppressed |= overlap[i] > iou
    return np.asarray(keep, dtype=np.int64)


class ZonePresence:
    """Base of the rules "an object with one of `labels` is in one of the zones now" (`intrusion`, `ebike_indoor`):
    one per-track Violation per object and zone. Confirmation over time is the incident manager's `min_seconds`."""

    type: str = ""

    def __init__(
        self,
        key: str,
        labels: Sequence[str],
        zones: Sequence[WatchedZone],
        *,
        min_confidence: float | None = None,
        tracked: bool = True,
    ) -> None:
        self.key = key
        self.labels = tuple(labels)
        self.zones = list(zones)
        self.min_confidence = min_confidence
        self.tracked = tracked
        self.required_labels = frozenset(self.labels)

    def reset(self) -> None:
        """Stateless: nothing to forget."""

    def evaluate(self, ctx: FrameContext) -> list[Violation]:
        det = ctx.detections
        cand = select(det, self.labels, self.min_confidence)
        if self.tracked:
            cand &= det.tracker_id >= 0
        if not cand.any():
            return []
        out: list[Violation] = []
        for zone in self.zones:
            rows = np.flatnonzero(cand & zone.contains(det, ctx.frame.width, ctx.frame.height))
            out += subject_violations(self.key, self.type, zone.name, det, rows, tracked=self.tracked)
        return out
