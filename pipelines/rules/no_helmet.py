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

With `crops` (`pipelines.rules.head_crops.HeadCrops`, wired by `factory.head_crops`), head boxes do not come from a
full-frame pass of the helmet model: it runs only on the upper-body crops of the people in the rule's zones, at the
rule's rate, and a person confirmed bare-headed or helmeted is not re-checked for a few seconds. Head boxes in the
frame's detections are then ignored, and orphan heads cannot be found (no body, no crop).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from pipelines.config.rules import NoHelmetRule
from pipelines.rules.base import FrameContext, SingleFrame, Violation
from pipelines.rules.common import WatchedZone, nms_any_label, select, subject_violations
from pipelines.rules.head_crops import HEAD_ABOVE, HeadCrops, associate_heads, conform
from vision.types import Detections, IntArray

__all__ = ["HEAD_ABOVE", "NoHelmet", "associate_heads"]

HEAD_NMS_IOU = 0.5
OWNER_MEMORY_S = 10.0


class NoHelmet:
    type = "no_helmet"
    needs_every_frame = False
    reads_whole_frame = False
    uses_static_scene = False
    dwell_s = 0.0
    single_frame = SingleFrame()

    def __init__(
        self,
        key: str,
        params: NoHelmetRule,
        zones: Sequence[WatchedZone],
        *,
        tracked: bool = True,
        crops: HeadCrops | None = None,
    ) -> None:
        self.key = key
        self.params = params
        self.zones = list(zones) or [WatchedZone.whole_frame()]
        self.tracked = tracked
        self.crops = crops
        self.required_labels = frozenset(params.labels) | frozenset(params.helmet_labels + params.no_helmet_labels)
        self._owner: dict[int, tuple[int, float]] = {}  # head track id -> (person track id, last seen)

    def reset(self) -> None:
        self._owner.clear()
        if self.crops is not None:
            self.crops.reset()

    def evaluate(self, ctx: FrameContext) -> list[Violation]:
        det = ctx.detections if self.crops is None else self._with_crop_heads(ctx, self.crops)
        return self._evaluate(ctx, det)

    def _with_crop_heads(self, ctx: FrameContext, crops: HeadCrops) -> Detections:
        """The frame's detections without head boxes, plus the heads `crops` finds on the watched people."""
        det, p, w, h = ctx.detections, self.params, ctx.frame.width, ctx.frame.height
        body = ~det.has_label(*p.helmet_labels, *p.no_helmet_labels)
        persons = select(det, p.labels, p.min_confidence) & body
        if self.tracked:
            persons &= det.tracker_id >= 0
        rows = np.flatnonzero(persons)
        watched = np.zeros(len(rows), dtype=np.bool_)
        for zone in self.zones:
            watched |= zone.contains(det[rows], w, h)
        heads = crops.heads(ctx.frame.image, ctx.frame.pts, det[rows[watched]])
        return Detections.merge([det[body], conform(heads, det.data)]) if len(heads) else det[body]

    def _evaluate(self, ctx: FrameContext, det: Detections) -> list[Violation]:
        p, t = self.params, ctx.frame.pts
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
        return self._violations(ctx, det, persons, violating, v_conf, evidence, orphans)

    def _violations(
        self,
        ctx: FrameContext,
        det: Detections,
        persons: IntArray,
        violating: npt.NDArray[np.bool_],
        v_conf: npt.NDArray[np.float64],
        evidence: dict[int, IntArray],
        orphans: IntArray,
    ) -> list[Violation]:
        w, h = ctx.frame.width, ctx.frame.height
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
