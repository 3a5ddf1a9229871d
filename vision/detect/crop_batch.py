"""Running a detector on small crops of a frame instead of the whole frame, batched, with boxes in frame pixels.

Each region (an integer pixel rectangle of the frame) is resized by the scale a full-frame pass of the model would
apply (its input size over the frame size, times `upscale`; enlarged up to `min_crop` input pixels, by at most
`max_enlarge`, when the crop is small; less when the crop would not fit `max_side`) and padded
(grey 114, centred) to a square whose side is the stride-aligned size of the result, clamped to [`min_side`,
`max_side`]. So the model sees a person at the same scale as on whole frames, a small crop costs what its pixels
cost, and crops of one side length share one `session.run` (the model's dynamic batch). A model with a fixed input
size gets every crop letterboxed into that size. Boxes come back in frame pixels, clipped to their region.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from vision.detect.detector import Detector
from vision.detect.preprocess import PAD_VALUE, Transform, to_blob
from vision.types import Detections, ImageArray, IntArray


@dataclass(frozen=True, slots=True)
class CropSizing:
    """How big the network input of one crop is (square side in pixels)."""

    max_side: int = 224
    min_side: int = 64
    upscale: float = 1.0  # relative to the scale of a full-frame pass
    min_crop: int = 0  # a crop whose longer side at that scale is under this many input pixels is enlarged to it,
    max_enlarge: float = 3.0  # by at most this factor (small, distant objects; large ones keep the scale)

    def crop_scale(self, crop_hw: tuple[int, int], scale: float) -> float:
        """Input pixels per frame pixel for one crop: `scale` (a full-frame pass's) × `upscale`, enlarged for a
        small crop (`min_crop`)."""
        scale *= self.upscale
        longest = max(crop_hw) * scale
        if 0 < longest < self.min_crop:
            scale *= min(self.min_crop / longest, self.max_enlarge)
        return scale

    def side(self, crop_hw: tuple[int, int], scale: float, stride: int) -> int:
        aligned = math.ceil(max(crop_hw) * scale / stride) * stride
        return int(min(max(aligned, self.min_side), self.max_side))


def clip_regions(regions: IntArray, width: int, height: int) -> IntArray:
    """(N, 4) x1 y1 x2 y2 rectangles clipped to the frame, each at least one pixel wide and high."""
    out = np.asarray(regions, dtype=np.int64).reshape(-1, 4).copy()
    out[:, 0::2] = np.clip(out[:, 0::2], 0, width)
    out[:, 1::2] = np.clip(out[:, 1::2], 0, height)
    out[:, 2] = np.maximum(out[:, 2], np.minimum(out[:, 0] + 1, width))
    out[:, 3] = np.maximum(out[:, 3], np.minimum(out[:, 1] + 1, height))
    out[:, 0] = np.minimum(out[:, 0], out[:, 2] - 1)
    out[:, 1] = np.minimum(out[:, 1], out[:, 3] - 1)
    return out


class CropBatchDetector:
    """`detector` run on crops of a frame. `detect(image, regions)` returns one `Detections` per region."""

    def __init__(self, detector: Detector, sizing: CropSizing | None = None) -> None:
        self.detector = detector
        self.sizing = sizing or CropSizing()
        self.inferences = 0  # session.run calls so far (one per batch)

    @property
    def name(self) -> str:
        return self.detector.name

    def _scale(self, frame_hw: tuple[int, int]) -> float:
        """Input pixels per frame pixel of a full-frame pass (inf: a fixed-size model, every crop fits the input)."""
        if not self.detector.io.dynamic_hw:
            return math.inf
        (ih, iw), (fh, fw) = self.detector.input_hw, frame_hw
        return min(ih / fh, iw / fw)

    def _side(self, crop_hw: tuple[int, int], scale: float) -> tuple[int, int]:
        if not self.detector.io.dynamic_hw:
            return self.detector.input_hw
        side = self.sizing.side(crop_hw, scale, self.detector.card.stride)
        return side, side

    def detect(self, image: ImageArray, regions: IntArray) -> list[Detections]:
        boxes = clip_regions(regions, image.shape[1], image.shape[0])
        groups: dict[tuple[int, int], list[int]] = {}
        crops: list[ImageArray] = []
        scales: list[float] = []
        frame_scale = self._scale((image.shape[0], image.shape[1]))
        for i, (x1, y1, x2, y2) in enumerate(boxes.tolist()):
            crops.append(image[y1:y2, x1:x2])
            scale = frame_scale if math.isinf(frame_scale) else self.sizing.crop_scale((y2 - y1, x2 - x1), frame_scale)
            scales.append(scale)
            groups.setdefault(self._side((y2 - y1, x2 - x1), scale), []).append(i)
        results = [Detections.empty()] * len(crops)
        for shape, indices in groups.items():
            for chunk in self._chunks(indices):
                for i, det in zip(chunk, self._run(crops, chunk, shape, scales), strict=True):
                    results[i] = _shift(det, boxes[i])
        return results

    def _chunks(self, indices: Sequence[int]) -> list[Sequence[int]]:
        limit = self.detector.options.max_batch if self.detector.io.dynamic_batch else 1
        return [indices[s : s + limit] for s in range(0, len(indices), limit)]

    def _run(
        self, crops: Sequence[ImageArray], chunk: Sequence[int], shape: tuple[int, int], scales: Sequence[float]
    ) -> list[Detections]:
        prepared = [letterbox(crops[i], shape, scales[i]) for i in chunk]
        transforms: list[Transform] = [t for _, t in prepared]
        output = self.detector.infer(to_blob([p for p, _ in prepared]))
        self.inferences += 1
        card, opts = self.detector.card, self.detector.options
        conf = card.thresholds.confidence if opts.confidence is None else opts.confidence
        iou = card.thresholds.iou if opts.iou is None else opts.iou
        return self.detector.finish(output, transforms, conf, iou)


def letterbox(image: ImageArray, shape_hw: tuple[int, int], max_scale: float) -> tuple[ImageArray, Transform]:
    """`image` resized by at most `max_scale` (aspect kept, to fit `shape_hw`), centred on a grey canvas."""
    h, w = image.shape[:2]
    th, tw = shape_hw
    r = min(th / h, tw / w, max_scale)
    nh, nw = min(th, max(1, round(h * r))), min(tw, max(1, round(w * r)))
    top, left = (th - nh) // 2, (tw - nw) // 2
    canvas = np.full((th, tw, 3), PAD_VALUE, dtype=np.uint8)
    resized = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR) if (nh, nw) != (h, w) else image
    canvas[top : top + nh, left : left + nw] = resized
    return canvas, Transform(nw / w, nh / h, float(left), float(top), w, h)


def _shift(det: Detections, region: IntArray) -> Detections:
    if len(det) == 0:
        return det
    offset = np.asarray([region[0], region[1], region[0], region[1]], dtype=np.float32)
    return Detections(det.xyxy + offset, det.confidence, det.class_id, det.label, det.tracker_id, det.data)
