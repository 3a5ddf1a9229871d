"""Head evidence from a helmet model run on the upper-body crops of people, not on the whole frame.

`no_helmet` needs a helmet model's verdict only on the heads of the people it watches. `HeadCrops` crops the upper
body of each such person (the head region of `associate_heads` with some context: the top `UPPER_BODY` of the box,
widened by the rule's slack, from `CROP_ABOVE` of its height above it), runs the model on all crops of a frame in one
batch (`vision.detect.crop_batch.CropBatchDetector`, a small input), keeps the heads that belong to that person, and
remembers them per track, relative to the person box:

- at most one crop run per `interval_s` of media time (the rule's rate: the helmet model's `model_fps`);
- a person confirmed bare-headed or helmeted (a head of theirs was found) is re-checked only after `recheck_s`;
  until then their remembered heads follow their box. A person without a verdict is re-checked on the next run
  once their box has moved (IoU with the box at the last check below `STILL_IOU`) or after `recheck_s` — a still
  person shows the model the same pixels, which is what the motion gate assumes for whole frames too;
- untracked rows (no tracker: a single image) are checked on every call and not remembered.

Bare heads whose body the person detector missed cannot be found this way (there is no crop for them): the rule's
`orphan_heads` only works with full-frame head detections.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from vision.track.matching import assign, iou_matrix
from vision.types import Detections, FloatArray, ImageArray, IntArray

HEAD_ABOVE = 0.05  # the head region reaches this fraction of the person box height above the box
UPPER_BODY = 0.5  # a crop reaches this fraction of the person box height below its top
CROP_ABOVE = 0.1  # and starts this fraction of the height above it
STILL_IOU = 0.9  # a person box this close to the one at the last check has not moved


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


def upper_body_regions(persons: FloatArray, head_fraction: float, slack: float) -> IntArray:
    """(N, 4) integer crop rectangles around the head regions of (N, 4) person boxes (not clipped to the frame)."""
    p = persons.astype(np.float64).reshape(-1, 4)
    w, h = p[:, 2] - p[:, 0], p[:, 3] - p[:, 1]
    below = max(UPPER_BODY, head_fraction)
    out = np.stack([p[:, 0] - slack * w, p[:, 1] - CROP_ABOVE * h, p[:, 2] + slack * w, p[:, 1] + below * h], axis=1)
    out[:, :2] = np.floor(out[:, :2])
    out[:, 2:] = np.ceil(out[:, 2:])
    return out.astype(np.int64)


class CropModel(Protocol):
    """A detector run on crops (vision.detect.crop_batch.CropBatchDetector): one Detections per region, frame pixels."""

    @property
    def name(self) -> str: ...

    def detect(self, image: ImageArray, regions: IntArray) -> list[Detections]: ...


@dataclass(frozen=True, slots=True)
class HeadCropConfig:
    interval_s: float = 0.0  # at most one crop run per interval (media time): the rule's rate
    recheck_s: float = 5.0  # a verdict is reused for at most this long


@dataclass(slots=True)
class _Verdict:
    checked_at: float
    last_seen: float
    box: FloatArray  # the person box at the check
    heads: Detections  # the person's heads at the check
    rel: FloatArray  # their boxes relative to the person box: (xyxy - [x1, y1, x1, y1]) / [w, h, w, h]

    @property
    def confirmed(self) -> bool:
        return len(self.heads) > 0


def _relative(boxes: FloatArray, person: FloatArray) -> FloatArray:
    wh = np.maximum(person[2:] - person[:2], 1e-6)
    out: FloatArray = ((boxes - np.tile(person[:2], 2)) / np.tile(wh, 2)).astype(np.float32)
    return out


def _absolute(rel: FloatArray, person: FloatArray) -> FloatArray:
    wh = np.maximum(person[2:] - person[:2], 1e-6)
    out: FloatArray = (rel * np.tile(wh, 2) + np.tile(person[:2], 2)).astype(np.float32)
    return out


class HeadCrops:
    """Per-track head evidence from a `CropModel` (see the module docs)."""

    def __init__(
        self,
        model: CropModel,
        config: HeadCropConfig,
        *,
        head_fraction: float,
        slack: float,
        min_confidence: float | None = None,
    ) -> None:
        self.model = model
        self.config = config
        self.head_fraction = head_fraction
        self.slack = slack
        self.min_confidence = min_confidence
        self.runs = 0  # crop runs so far
        self.crops = 0  # crops sent to the model so far
        self._verdicts: dict[int, _Verdict] = {}
        self._last_run = -math.inf

    def reset(self) -> None:
        self._verdicts.clear()
        self._last_run = -math.inf

    def heads(self, image: ImageArray, t: float, persons: Detections) -> Detections:
        """Head boxes (frame pixels) of `persons`: checked now when due, else remembered and moved with the box."""
        ids = persons.tracker_id.tolist()
        self._forget(t)
        fresh: dict[int, Detections] = {}
        due = t - self._last_run >= self.config.interval_s - 1e-6
        check = [i for i, tid in enumerate(ids) if tid < 0 or (due and not self._fresh(tid, persons.xyxy[i], t))]
        if check:
            fresh = self._check(image, t, persons, check)
        out: list[Detections] = []
        for i, tid in enumerate(ids):
            if tid < 0:
                out.append(fresh.get(i, Detections.empty()))
            elif (v := self._verdicts.get(tid)) is not None:
                v.last_seen = t
                moved = _absolute(v.rel, persons.xyxy[i])
                out.append(Detections(moved, v.heads.confidence, v.heads.class_id, v.heads.label, data=v.heads.data))
        return _merge(out)

    def _fresh(self, tid: int, box: FloatArray, t: float) -> bool:
        v = self._verdicts.get(tid)
        if v is None or t - v.checked_at >= self.config.recheck_s - 1e-6:
            return False
        return v.confirmed or float(iou_matrix(box[None, :], v.box[None, :])[0, 0]) >= STILL_IOU

    def _forget(self, t: float) -> None:
        keep = max(self.config.recheck_s, self.config.interval_s)
        self._verdicts = {k: v for k, v in self._verdicts.items() if 0.0 <= t - v.last_seen <= keep}

    def _check(self, image: ImageArray, t: float, persons: Detections, rows: list[int]) -> dict[int, Detections]:
        """Run the model on the crops of `rows`; remember tracked results; return untracked ones by row."""
        regions = upper_body_regions(persons.xyxy[rows], self.head_fraction, self.slack)
        results = self.model.detect(image, regions)
        if any(int(persons.tracker_id[i]) >= 0 for i in rows):
            self._last_run = t
        self.runs += 1
        self.crops += len(rows)
        untracked: dict[int, Detections] = {}
        for i, found in zip(rows, results, strict=True):
            own = self._own_heads(found, persons.xyxy[i])
            tid = int(persons.tracker_id[i])
            if tid < 0:
                untracked[i] = own
            else:
                box = persons.xyxy[i].copy()
                self._verdicts[tid] = _Verdict(t, t, box, own, _relative(own.xyxy, box))
        return untracked

    def _own_heads(self, found: Detections, person: FloatArray) -> Detections:
        if self.min_confidence is not None:
            found = found[found.confidence >= np.float32(self.min_confidence)]
        owner = associate_heads(person[None, :], found.xyxy, self.head_fraction, self.slack)
        return found[owner == 0]


def _merge(parts: list[Detections]) -> Detections:
    parts = [p for p in parts if len(p)]
    if not parts:
        return Detections.empty()
    keys = set.intersection(*(set(p.data) for p in parts))
    return Detections.merge([Detections(p.xyxy, p.confidence, p.class_id, p.label, p.tracker_id,
                                        {k: p.data[k] for k in keys}) for p in parts])  # fmt: skip


def conform(det: Detections, data: Mapping[str, npt.NDArray[Any]]) -> Detections:
    """`det` with exactly the data columns of `data` (missing ones filled with empty strings), for merging."""
    n = len(det)
    cols = {k: det.data[k] if k in det.data else np.full(n, "", dtype=np.str_) for k in data}
    return Detections(det.xyxy, det.confidence, det.class_id, det.label, det.tracker_id, cols)
