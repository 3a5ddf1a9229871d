"""Post-processing: raw network output → per-class confidence filter → class-aware NMS → boxes in input pixels.

Two layouts (see models/README.md): `yolov8` `[B, 4+nc, N]` and `darknet-yolo` `[B, N, 5+nc]`; both carry
cx, cy, w, h in input pixels and per-class confidences. NMS is OpenCV's `cv2.dnn.NMSBoxesBatched` (class-aware,
C++), so nothing here loops over boxes in Python.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
import numpy.typing as npt

Layout = Literal["yolov8", "darknet-yolo"]
MAX_CANDIDATES = 30000


@dataclass(frozen=True, slots=True)
class RawDetections:
    """Boxes of one image in input pixels (xyxy), their confidence and model class index, after NMS."""

    xyxy: npt.NDArray[np.float32]
    confidence: npt.NDArray[np.float32]
    class_id: npt.NDArray[np.int64]


def num_classes(layout: Layout, output_shape: tuple[int | None, ...]) -> int:
    """Classes implied by an output of `output_shape` (the last two dims), or ValueError when it cannot be."""
    if len(output_shape) != 3:
        raise ValueError(f"expected a 3-d output [B, ., .], got {list(output_shape)}")
    channels = output_shape[1] if layout == "yolov8" else output_shape[2]
    extra = 4 if layout == "yolov8" else 5
    if not isinstance(channels, int) or channels <= extra:
        raise ValueError(f"{layout} output {list(output_shape)}: the box dimension must be {extra}+nc")
    return channels - extra


def _candidates(rows: npt.NDArray[np.float32], scores: npt.NDArray[np.float32], conf: float) -> RawDetections:
    class_id = scores.argmax(axis=1)
    confidence = np.take_along_axis(scores, class_id[:, None], axis=1)[:, 0]
    keep = confidence >= conf
    boxes = rows[keep]
    xyxy = np.empty((boxes.shape[0], 4), dtype=np.float32)
    half_w, half_h = boxes[:, 2] * 0.5, boxes[:, 3] * 0.5
    xyxy[:, 0], xyxy[:, 1] = boxes[:, 0] - half_w, boxes[:, 1] - half_h
    xyxy[:, 2], xyxy[:, 3] = boxes[:, 0] + half_w, boxes[:, 1] + half_h
    return RawDetections(xyxy, confidence[keep].astype(np.float32), class_id[keep].astype(np.int64))


def _nms(cand: RawDetections, iou: float, max_det: int) -> RawDetections:
    n = len(cand.confidence)
    if n == 0:
        return cand
    if n > MAX_CANDIDATES:
        top = np.argpartition(-cand.confidence, MAX_CANDIDATES)[:MAX_CANDIDATES]
        cand = RawDetections(cand.xyxy[top], cand.confidence[top], cand.class_id[top])
    xywh = cand.xyxy.copy()
    xywh[:, 2:] -= xywh[:, :2]
    keep = cv2.dnn.NMSBoxesBatched(xywh, cand.confidence, cand.class_id.astype(np.int32), 0.0, iou)  # type: ignore[arg-type]
    idx = np.asarray(keep, dtype=np.int64).reshape(-1)
    idx = idx[np.argsort(-cand.confidence[idx], kind="stable")][:max_det]
    return RawDetections(cand.xyxy[idx], cand.confidence[idx], cand.class_id[idx])


def decode(
    output: npt.NDArray[np.float32], layout: Layout, conf: float, iou: float, max_det: int = 300
) -> list[RawDetections]:
    """One RawDetections per batch item: confidence ≥ conf, then class-aware NMS at `iou`, best first."""
    results = []
    for item in output:
        if layout == "yolov8":
            # Filter on the class maximum before transposing: only candidate columns are copied.
            best = item[4:].max(axis=0)
            cols = item[:, best >= conf].T
            rows, scores = cols[:, :4], cols[:, 4:]
        else:
            sel = item[item[:, 5:].max(axis=1) >= conf]
            rows, scores = sel[:, :4], sel[:, 5:]
        results.append(_nms(_candidates(rows, scores, conf), iou, max_det))
    return results
