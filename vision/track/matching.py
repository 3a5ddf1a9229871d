"""Association helpers: IoU matrix and a thresholded Hungarian assignment."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment

from vision.types import Float64Array

Pairs = list[tuple[int, int]]


def iou_matrix(a: npt.NDArray[np.floating], b: npt.NDArray[np.floating]) -> Float64Array:
    """Pairwise IoU of (N, 4) and (M, 4) xyxy boxes → (N, M)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    if a.shape[0] == 0 or b.shape[0] == 0:
        return np.zeros((a.shape[0], b.shape[0]))
    ix1 = np.maximum(a[:, None, 0], b[None, :, 0])
    iy1 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix2 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    out: Float64Array = np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)
    return out


def expand(xyxy: npt.NDArray[np.floating], ratio: float) -> Float64Array:
    """Grow (N, 4) boxes by `ratio` of their width/height on each side (the "buffered IoU" of C-BIoU)."""
    b = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    if ratio == 0:
        return b
    w = (b[:, 2] - b[:, 0]) * ratio
    h = (b[:, 3] - b[:, 1]) * ratio
    return b + np.stack([-w, -h, w, h], axis=1)


def assign(similarity: Float64Array, min_similarity: float) -> tuple[Pairs, list[int], list[int]]:
    """Maximum-similarity one-to-one assignment keeping only pairs with similarity ≥ `min_similarity`.

    Returns (matched (row, col) pairs, unmatched rows, unmatched cols).
    """
    rows, cols = similarity.shape
    if rows == 0 or cols == 0:
        return [], list(range(rows)), list(range(cols))
    r_idx, c_idx = linear_sum_assignment(-similarity)
    pairs = [(int(r), int(c)) for r, c in zip(r_idx, c_idx, strict=True) if similarity[r, c] >= min_similarity]
    used_r = {r for r, _ in pairs}
    used_c = {c for _, c in pairs}
    return pairs, [r for r in range(rows) if r not in used_r], [c for c in range(cols) if c not in used_c]
