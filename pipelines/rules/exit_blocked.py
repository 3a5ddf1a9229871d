"""`exit_blocked`: a fire exit / passage zone obstructed for `dwell_seconds`.

Two kinds of evidence, per zone; the zone is blocked when either holds:

(a) Classified obstacles: detections with one of the rule's `labels` (never one of `person_labels`) inside the zone
    (the zone's anchor / label filter / minimum size decide "inside"; use `anchor: overlap` for boxes that lean into
    a narrow lane). Each obstacle has its own dwell time (`DwellTimer` with grace `grace_seconds`); an obstacle that
    reappears under a new or no tracker id with IoU ≥ `REMATCH_IOU` to a recently seen one keeps its time, so a
    parked van that the detector loses for a few frames does not restart its dwell. An obstacle counts once it has
    been in the zone for `dwell_seconds`. `occupancy` does not apply to (a): one parked vehicle inside the zone blocks.

(b) Class-agnostic static objects (`static_scene: true` and the pipeline passes `ctx.static_mask` from
    `vision.motion.StaticSceneModel`): the part of the zone not hidden by a person box (grown by `PERSON_MARGIN`)
    must be covered by static pixels for more than `occupancy` of its area, continuously (dips shorter than
    `grace_seconds` bridged) for `dwell_seconds`. If people hide all but `MIN_VISIBLE` of the zone, the state is
    held as it was (people walking past a parked pallet neither clear nor create the blockage). Note that the
    static-scene model only marks pixels static after its own `dwell_s`, so the total delay is that plus
    `dwell_seconds`.

People never count: person detections are not obstacles and their boxes are cut out of the static evidence.
The Violation is zone-level (subject None): one incident however many obstacles; `track_ids`/`labels`/`evidence`
are the counted obstacles, plus the label `static_object` while (b) holds; confidence is the best obstacle
confidence or the static occupancy (capped at 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pipelines.config.rules import ExitBlockedRule
from pipelines.rules.base import FrameContext, SingleFrame, Violation
from pipelines.rules.common import DwellTimer, WatchedZone, select
from vision.geometry import Zone as GeoZone
from vision.types import Detections

STATIC_LABEL = "static_object"
REMATCH_IOU = 0.5
PERSON_MARGIN = 0.1  # of the box size on each side
MIN_VISIBLE = 0.2  # of the zone area


@dataclass(slots=True)
class _Static:
    since: float | None = None
    last: float = 0.0
    occupancy: float = 0.0


class ExitBlocked:
    type = "exit_blocked"
    needs_every_frame = False
    reads_whole_frame = False
    single_frame = SingleFrame(
        still={"dwell_seconds": 0.0},
        note="dwell_seconds ignored; static-scene evidence needs video, only detected obstacles count",
    )

    def __init__(self, key: str, params: ExitBlockedRule, zones: Sequence[WatchedZone]) -> None:
        self.key = key
        self.params = params
        self.uses_static_scene = params.static_scene
        self.dwell_s = params.dwell_seconds
        self.zones = list(zones)
        self.required_labels = frozenset(params.labels) | frozenset(params.person_labels)
        self._obstacle_labels = tuple(x for x in params.labels if x not in set(params.person_labels))
        self._timers = [DwellTimer(params.grace_seconds, REMATCH_IOU) for _ in self.zones]
        self._static = [_Static() for _ in self.zones]

    def reset(self) -> None:
        for timer in self._timers:
            timer.reset()
        self._static = [_Static() for _ in self.zones]

    def evaluate(self, ctx: FrameContext) -> list[Violation]:
        det, t, p = ctx.detections, ctx.frame.pts, self.params
        w, h = ctx.frame.width, ctx.frame.height
        cand = select(det, self._obstacle_labels, p.min_confidence)
        persons = det.xyxy[det.has_label(*p.person_labels)] if p.person_labels else det.xyxy[:0]
        out: list[Violation] = []
        for zone, timer, static in zip(self.zones, self._timers, self._static, strict=True):
            rows = np.flatnonzero(cand & zone.contains(det, w, h)) if cand.any() else np.empty(0, dtype=np.int64)
            first = timer.update(t, det.tracker_id[rows], det.xyxy[rows])
            blocking = rows[t - first >= p.dwell_seconds - 1e-9]
            occupancy = self._static_blocking(zone, static, ctx, persons) if p.static_scene else None
            if blocking.size or occupancy is not None:
                out.append(self._violation(zone.name, det[blocking], occupancy))
        return out

    def _static_blocking(
        self, zone: WatchedZone, state: _Static, ctx: FrameContext, persons: npt.NDArray[np.float32]
    ) -> float | None:
        """The static occupancy when (b) holds now, else None; advances the zone's static timer."""
        mask, p, t = ctx.static_mask, self.params, ctx.frame.pts
        if mask is None or mask.size == 0 or zone.geo is None:
            return None
        occ = visible_occupancy(zone.geo, mask, persons, ctx.frame.width, ctx.frame.height)
        if state.since is not None and not 0.0 <= t - state.last <= p.grace_seconds:
            state.since = None  # dipped for longer than the grace (or time went backwards)
        if occ is None:  # mostly hidden by people: hold the state as it was
            if state.since is None:
                return None
        elif occ <= p.occupancy:
            return None
        else:
            state.occupancy = occ
            if state.since is None:
                state.since = t
        state.last = t
        return state.occupancy if t - state.since >= p.dwell_seconds - 1e-9 else None

    def _violation(self, zone: str | None, obstacles: Detections, occupancy: float | None) -> Violation:
        labels = set(obstacles.label.tolist())
        conf = float(obstacles.confidence.max()) if len(obstacles) else 0.0
        if occupancy is not None:
            labels.add(STATIC_LABEL)
            conf = max(conf, min(1.0, occupancy))
        return Violation(
            rule_key=self.key,
            rule=self.type,
            zone=zone,
            subject=None,
            track_ids=tuple(sorted({int(i) for i in obstacles.tracker_id if i >= 0})),
            labels=tuple(sorted(labels)),
            confidence=conf,
            evidence=obstacles,
        )


def visible_occupancy(
    zone: GeoZone, mask: npt.NDArray[np.bool_], persons: npt.NDArray[np.float32], width: int, height: int
) -> float | None:
    """Fraction of the zone's person-free part covered by `mask` (any resolution); None when people (boxes in
    width x height pixels, grown by PERSON_MARGIN) hide more than 1 - MIN_VISIBLE of the zone."""
    mh, mw = mask.shape
    area = zone.raster(mw, mh)
    total = int(np.count_nonzero(area))
    if total == 0:
        return None
    visible = area
    if len(persons):
        visible = area.copy()
        sx, sy = mw / width, mh / height
        bw, bh = persons[:, 2] - persons[:, 0], persons[:, 3] - persons[:, 1]
        x1 = np.floor((persons[:, 0] - PERSON_MARGIN * bw) * sx).clip(0, mw).astype(np.int64)
        x2 = np.ceil((persons[:, 2] + PERSON_MARGIN * bw) * sx).clip(0, mw).astype(np.int64)
        y1 = np.floor((persons[:, 1] - PERSON_MARGIN * bh) * sy).clip(0, mh).astype(np.int64)
        y2 = np.ceil((persons[:, 3] + PERSON_MARGIN * bh) * sy).clip(0, mh).astype(np.int64)
        for a, b, c, d in zip(x1.tolist(), x2.tolist(), y1.tolist(), y2.tolist(), strict=True):
            visible[c:d, a:b] = False
    seen = int(np.count_nonzero(visible))
    if seen < MIN_VISIBLE * total:
        return None
    return float(np.count_nonzero(mask & visible)) / seen
