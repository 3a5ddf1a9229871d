"""Agreement between two sets of detections of the same frames (fp32 vs int8, ours vs a reference implementation)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from vision.types import Detections


def box_iou(a: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """Pairwise IoU of (N, 4) and (M, 4) xyxy boxes → (N, M)."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=2)
    area_a = np.clip(a[:, 2:] - a[:, :2], 0, None).prod(axis=1)
    area_b = np.clip(b[:, 2:] - b[:, :2], 0, None).prod(axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    out: npt.NDArray[np.float32] = np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0).astype(np.float32)
    return out


def match(ref: Detections, other: Detections, iou: float = 0.5) -> list[tuple[int, int, float]]:
    """Greedy one-to-one matching of same-class boxes, best IoU first: (ref index, other index, IoU)."""
    if len(ref) == 0 or len(other) == 0:
        return []
    ious = box_iou(ref.xyxy, other.xyxy)
    ious[ref.class_id[:, None] != other.class_id[None, :]] = 0.0
    pairs: list[tuple[int, int, float]] = []
    used_r: set[int] = set()
    used_o: set[int] = set()
    for flat in np.argsort(-ious, axis=None):
        r, o = divmod(int(flat), ious.shape[1])
        if ious[r, o] < iou:
            break
        if r not in used_r and o not in used_o:
            pairs.append((r, o, float(ious[r, o])))
            used_r.add(r)
            used_o.add(o)
    return pairs


@dataclass(frozen=True, slots=True)
class Agreement:
    reference_boxes: int
    other_boxes: int
    matched: int
    mean_confidence_delta: float  # mean |conf_other - conf_ref| over matched pairs
    min_iou: float  # over matched pairs (1.0 when none)

    @property
    def matched_rate(self) -> float:
        """Matched pairs over the larger of the two box counts (1.0 when both are empty)."""
        denom = max(self.reference_boxes, self.other_boxes)
        return 1.0 if denom == 0 else self.matched / denom


def agreement(refs: list[Detections], others: list[Detections], iou: float = 0.5) -> Agreement:
    n_ref = n_other = matched = 0
    deltas: list[float] = []
    ious: list[float] = []
    for ref, other in zip(refs, others, strict=True):
        pairs = match(ref, other, iou)
        n_ref, n_other, matched = n_ref + len(ref), n_other + len(other), matched + len(pairs)
        deltas += [abs(float(other.confidence[o]) - float(ref.confidence[r])) for r, o, _ in pairs]
        ious += [v for _, _, v in pairs]
    return Agreement(n_ref, n_other, matched, float(np.mean(deltas)) if deltas else 0.0, min(ious, default=1.0))
