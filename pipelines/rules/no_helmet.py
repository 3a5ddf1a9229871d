"""`no_helmet`: a person in a helmet-required zone (or anywhere, without zones) with a bare head.

Evidence comes from a helmet model's head boxes: `helmet_labels` (a hard hat, default `helmet`) and
`no_helmet_labels` (a bare head, default `no_helmet`; add `head` for models whose `head` class means a bare head).
Head boxes first go through class-agnostic NMS (a model firing `helmet` and `no_helmet` on one head keeps the more
confident), then each is assigned to at most one person (`associate_heads`): its centre must lie in the person's head
region — the top `head_fraction` of the box, widened by `head_slack` of the box width on each side and reaching
`HEAD_ABOVE` of the box height above it — and among candidates the one-to-one assignment prefers the person whose
expected head point is nearest. So a bare head on one person never flags the person standing next to them.

Per person: with a bare-head box more confident than any helmet box on the same head → Violation (subject
`track:<person id>`, confidence = that box's, evidence = person + head boxes); with a helmet box → none; with neither
→ `missing_evidence`: `ignore` (default — absence of evidence is not a violation) or `violation`.
Zone membership is the person box's, with the zone's anchor, label filter and minimum size.

Bare heads no person claims (`orphan_heads`, default on; the person detector missed a partly hidden body): each is a
Violation of its own, in the zones containing the head box's centre. Its subject is the person track its head track
was last assigned to (remembered for `OWNER_MEMORY_S`), otherwise the head's own track (`track:<head id>`), so one
worker's incident does not split in two when the person box drops out. Untracked rows: see `pipelines.rules.common`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from pipelines.config.rules import NoHelmetRule
from pipelines.rules.base import FrameContext, SingleFrame, Violation
from pipelines.rules.common import WatchedZone, nms_any_label, select, subject_violations
from vision.track.matching import assign
from vision.types import Detections, IntArray

HEAD_NMS_IOU = 0.5
HEAD_ABOVE = 0.05
OWNER_MEMORY_S = 10.0


def associate_heads(
    persons: npt.NDArray[np.float32], heads: npt.NDArray[np.float32], head_fraction: float, slack: float
) -> IntArray:
    """For (M, 4) head boxes, the index of the (N, 4) person box each belongs to, or -1 (one-to-one)."""
    owner = np.full(len(heads), -1, dtype=np.int64)
    if len(persons) == 0 or len(heads) == 0:
        return owner
    p = persons.astype(np.float64)[None, :, :]
    hc = ((heads[:, :2] + heads[:, 2:]) / 2).astype(np.float64)[:, None, :]
    pw = np.maximum(p[..., 2] - p[..., 0], 1e-6)
    ph = np.maximum(p[..., 3] - p[..., 1], 1e-6)
    inside = (
        (hc[..., 0] >= p[..., 0] - slack * pw)
        & (hc[..., 0] <= p[..., 2] + slack * pw)
        & (hc[..., 1] >= p[..., 1] - HEAD_ABOVE * ph)
        & (hc[..., 1] <= p[..., 1] + head_fraction * ph)
    )
    expected_x = (p[..., 0] + p[..., 2]) / 2
    expected_y = p[..., 1] + 0.25 * head_fraction * ph
    dist = np.hypot((hc[..., 0] - expected_x) / pw, (hc[..., 1] - expected_y) / (head_fraction * ph))
    similarity = np.where(inside, 1.0 / (1.0 + dist), 0.0)
    pairs, _, _ = assign(similarity, 1e-9)
    for h, person in pairs:
        owner[h] = person
    return owner


class NoHelmet:
    type = "no_helmet"
    needs_every_frame = False
    uses_static_scene = False
    dwell_s = 0.0
    single_frame = SingleFrame()

    def __init__(self, key: str, params: NoHelmetRule, zones: Sequence[WatchedZone], *, tracked: bool = True) -> None:
        self.key = key
        self.params = params
        self.zones = list(zones) or [WatchedZone.whole_frame()]
        self.tracked = tracked
        self.required_labels = frozenset(params.labels) | frozenset(params.helmet_labels + params.no_helmet_labels)
        self._owner: dict[int, tuple[int, float]] = {}  # head track id -> (person track id, last seen)

    def reset(self) -> None:
        self._owner.clear()

    def evaluate(self, ctx: FrameContext) -> list[Violation]:
        det, p, t = ctx.detections, self.params, ctx.frame.pts
        persons = np.flatnonzero(select(det, p.labels, p.min_confidence))
        heads = np.flatnonzero(select(det, [*p.helmet_labels, *p.no_helmet_labels], p.min_confidence))
        if heads.size == 0 and p.missing_evidence == "ignore":
            return []
        heads = heads[nms_any_label(det.xyxy[heads], det.confidence[heads], HEAD_NMS_IOU)]
        owner = associate_heads(det.xyxy[persons], det.xyxy[heads], p.head_fraction, p.head_slack)
        self._remember(det, persons, heads, owner, t)
        bare = det.has_label(*p.no_helmet_labels)[heads]
        conf = det.confidence[heads].astype(np.float64)
        helmet_conf = np.zeros(len(persons))
        bare_conf = np.zeros(len(persons))
        owned = owner >= 0
        np.maximum.at(helmet_conf, owner[owned & ~bare], conf[owned & ~bare])
        np.maximum.at(bare_conf, owner[owned & bare], conf[owned & bare])
        violating = bare_conf > helmet_conf
        if p.missing_evidence == "violation":
            violating |= (bare_conf == 0) & (helmet_conf == 0)
        v_conf = np.where(bare_conf > 0, bare_conf, det.confidence[persons])
        evidence = {int(persons[j]): heads[owner == j] for j in np.flatnonzero(violating)}
        orphans = heads[~owned & bare] if p.orphan_heads else heads[:0]
        return self._violations(ctx, persons, violating, v_conf, evidence, orphans)

    def _violations(
        self,
        ctx: FrameContext,
        persons: IntArray,
        violating: npt.NDArray[np.bool_],
        v_conf: npt.NDArray[np.float64],
        evidence: dict[int, IntArray],
        orphans: IntArray,
    ) -> list[Violation]:
        det, w, h = ctx.detections, ctx.frame.width, ctx.frame.height
        bad_persons = det[persons[violating]]
        orphan_ids = self._orphan_subjects(det.tracker_id[orphans])
        centres = (det.xyxy[orphans, :2] + det.xyxy[orphans, 2:]) / 2
        out: list[Violation] = []
        for zone in self.zones:
            inside = zone.contains(bad_persons, w, h)
            rows = persons[violating][inside]
            out += subject_violations(
                self.key,
                self.type,
                zone.name,
                det,
                rows,
                tracked=self.tracked,
                confidence=v_conf[violating][inside],
                evidence=evidence,
            )
            o_in = zone.contains_points(centres, w, h)
            out += subject_violations(
                self.key, self.type, zone.name, det, orphans[o_in], tracked=self.tracked, subject_ids=orphan_ids[o_in]
            )
        return out

    def _remember(self, det: Detections, persons: IntArray, heads: IntArray, owner: IntArray, t: float) -> None:
        self._owner = {h: o for h, o in self._owner.items() if 0.0 <= t - o[1] <= OWNER_MEMORY_S}
        for h, j in zip(det.tracker_id[heads].tolist(), owner.tolist(), strict=True):
            if h >= 0 and j >= 0 and int(det.tracker_id[persons[j]]) >= 0:
                self._owner[h] = (int(det.tracker_id[persons[j]]), t)
            elif h >= 0 and j < 0 and h in self._owner:
                self._owner[h] = (self._owner[h][0], t)  # still the same worker, body not detected

    def _orphan_subjects(self, head_ids: IntArray) -> IntArray:
        return np.asarray([self._owner[h][0] if h in self._owner else h for h in head_ids.tolist()], dtype=np.int64)
