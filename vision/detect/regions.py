"""Motion regions: where in a frame the detector has to look, as a few model-sized windows, and the way back.

Pure geometry on numpy + OpenCV, no model: `boxes_from_mask` finds the moving blobs of a low-resolution motion mask
(frame pixels out), `pad_boxes` grows them, `plan_windows` merges them into as few windows of one size as it can
(a region joins a window whose regions' union still fits in one window with it),
`shift` maps a window's boxes back to the frame and `seam_filter` drops what a window saw cut at one of its inner
edges, then `seam_nms` de-duplicates across overlapping windows (class-aware, best first).

The caller chooses the coordinate space; `vision/detect/crops.py` plans the windows on the model's whole-frame
input, aligned to the model stride, so a crop holds exactly the pixels (and grid cells) that the whole-frame
inference sees there: an object looks the same to the model in both modes; only the context around it differs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from vision.types import BoolArray, Detections, FloatArray

Box = tuple[float, float, float, float]


@dataclass(frozen=True, slots=True)
class Window:
    """An integer crop rectangle of the frame, x1 y1 x2 y2 (x2, y2 exclusive), and the regions it covers."""

    x1: int
    y1: int
    x2: int
    y2: int
    regions: tuple[Box, ...] = ()

    @property
    def xyxy(self) -> Box:
        return float(self.x1), float(self.y1), float(self.x2), float(self.y2)


def boxes_from_mask(mask: BoolArray, frame_wh: tuple[int, int], min_area: int = 2, dilate: int = 1) -> list[Box]:
    """Bounding boxes (frame pixels) of the connected blobs of a low-resolution boolean mask; blobs smaller than
    `min_area` mask pixels (after `dilate` pixels of dilation, which joins the pieces of one mover) are noise."""
    if mask.size == 0 or not mask.any():
        return []
    m = mask.astype(np.uint8)
    if dilate > 0:
        m = np.asarray(cv2.dilate(m, np.ones((2 * dilate + 1, 2 * dilate + 1), dtype=np.uint8)), dtype=np.uint8)
    n, _, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    sx, sy = frame_wh[0] / mask.shape[1], frame_wh[1] / mask.shape[0]
    out: list[Box] = []
    for x, y, w, h, area in stats[1:n].tolist():
        if area >= min_area:
            out.append((x * sx, y * sy, (x + w) * sx, (y + h) * sy))
    return out


def pad_boxes(boxes: Sequence[Box], frac: float, min_px: float, frame_wh: tuple[int, int]) -> list[Box]:
    """Grow each box by `frac` of its size (at least `min_px`) on every side, clipped to the frame."""
    fw, fh = frame_wh
    out: list[Box] = []
    for x1, y1, x2, y2 in boxes:
        px, py = max(min_px, frac * (x2 - x1)), max(min_px, frac * (y2 - y1))
        out.append((max(0.0, x1 - px), max(0.0, y1 - py), min(float(fw), x2 + px), min(float(fh), y2 + py)))
    return [b for b in out if b[2] > b[0] and b[3] > b[1]]


def _union(a: Box, b: Box) -> Box:
    return min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])


def _fits(box: Box, size: tuple[int, int]) -> bool:
    return box[2] - box[0] <= size[0] and box[3] - box[1] <= size[1]


def _place(span: tuple[float, float], size: int, limit: int, align: int) -> int:
    """Left (or top) edge of a `size` window that holds `span` (lo, hi), a multiple of `align`, inside
    [0, limit], as central as those allow."""
    lo, hi = max(0.0, span[1] - size), min(span[0], float(limit - size))
    centred = (span[0] + span[1] - size) / 2
    first, last = math.ceil(lo / align) * align, math.floor(hi / align) * align
    if first > last:  # no aligned position holds it
        return int(min(max(0.0, math.floor(centred)), limit - size))
    return int(min(max(first, round(centred / align) * align), last))


def plan_windows(
    regions: Sequence[Box], size: tuple[int, int], bounds_wh: tuple[int, int], align: int = 1
) -> list[Window] | None:
    """Pack `regions` into windows of `size` (w, h) inside `bounds_wh`, greedily, largest first: a region joins the
    first window whose regions' union still fits with it, else opens a new one. Window corners are multiples of
    `align` where they can be (the model stride: a window's cells are then the whole-frame inference's cells).
    None when a region is larger than a window (the caller runs the whole frame instead)."""
    slack = align if align > 1 else 0
    room = (size[0] - slack, size[1] - slack)
    if any(not _fits(r, room) for r in regions):
        return None
    clusters: list[tuple[Box, list[Box]]] = []
    for region in sorted(regions, key=lambda r: (r[2] - r[0]) * (r[3] - r[1]), reverse=True):
        for i, (bound, members) in enumerate(clusters):
            joined = _union(bound, region)
            if _fits(joined, room):
                clusters[i] = (joined, [*members, region])
                break
        else:
            clusters.append((region, [region]))
    windows = []
    for bound, members in clusters:
        x = _place((bound[0], bound[2]), size[0], bounds_wh[0], align)
        y = _place((bound[1], bound[3]), size[1], bounds_wh[1], align)
        windows.append(Window(x, y, x + size[0], y + size[1], tuple(members)))
    return windows


def covered(box: Box, windows: Sequence[Window], margin: float = 0.0) -> bool:
    """True when `box` lies inside one of `windows`, at least `margin` pixels from its inner edges."""
    for w in windows:
        if box[0] >= w.x1 + margin and box[1] >= w.y1 + margin and box[2] <= w.x2 - margin and box[3] <= w.y2 - margin:
            return True
    return False


def shift(det: Detections, dx: float, dy: float) -> Detections:
    """`det` moved by (dx, dy) pixels (crop → frame coordinates); every other column unchanged."""
    if len(det) == 0:
        return det
    xyxy = det.xyxy + np.array([dx, dy, dx, dy], dtype=np.float32)
    return Detections(xyxy, det.confidence, det.class_id, det.label, det.tracker_id, det.data)


def seam_filter(det: Detections, window: Window, bounds_wh: tuple[int, int], tol: float = 2.0) -> Detections:
    """Drop boxes (in the window's coordinates) that touch one of `window`'s inner edges (an edge that is not on
    the bounds): the window saw only part of that object; the window that holds it whole reports it."""
    if len(det) == 0:
        return det
    b = det.xyxy
    cut = np.zeros(len(det), dtype=np.bool_)
    if window.x1 > 0:
        cut |= b[:, 0] <= window.x1 + tol
    if window.y1 > 0:
        cut |= b[:, 1] <= window.y1 + tol
    if window.x2 < bounds_wh[0]:
        cut |= b[:, 2] >= window.x2 - tol
    if window.y2 < bounds_wh[1]:
        cut |= b[:, 3] >= window.y2 - tol
    return det[~cut] if cut.any() else det


def seam_nms(det: Detections, iou: float) -> Detections:
    """Class-aware NMS over boxes gathered from overlapping windows: the best box of each object stays."""
    if len(det) < 2:
        return det
    xywh: FloatArray = det.xyxy.copy()
    xywh[:, 2:] -= xywh[:, :2]
    keep = cv2.dnn.NMSBoxesBatched(xywh, det.confidence, det.class_id.astype(np.int32), 0.0, iou)  # type: ignore[arg-type]
    idx = np.asarray(keep, dtype=np.int64).reshape(-1)
    return det[np.sort(idx)]
