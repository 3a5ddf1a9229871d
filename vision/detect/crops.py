"""`CropDetector`: one model on windows of a frame (`vision/detect/regions.py`), at the model's whole-frame scale.

The frame is pre-processed exactly as for a whole-frame inference (resize or letterbox to the model input); the
windows are planned on that input, `side`×`side` model pixels with corners on the model stride, and cut from it, so
a crop holds the very pixels and grid cells the whole-frame inference would see there. The windows run together in
one `session.run` when the model has a dynamic batch. A model with dynamic H/W runs them in its own session; a
fixed-size `darknet-yolo` model in a second session of the same weights at the crop size
(`vision/detect/input_size.py`); any other fixed-size model at its own input size (no cheaper than a whole frame,
so the caller's cost check sends it to whole frames). Boxes come back in frame pixels, without those cut at an inner
window edge, de-duplicated across windows.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence

import numpy as np
import onnxruntime as ort

from vision.detect.detector import Detector
from vision.detect.errors import ModelError
from vision.detect.input_size import open_resized
from vision.detect.preprocess import PAD_VALUE, Transform, prepare, target_shape, to_blob
from vision.detect.regions import Box, Window, covered, plan_windows, seam_filter, seam_nms
from vision.detect.session import SessionConfig
from vision.types import Detections, ImageArray

log = logging.getLogger(__name__)

_SESSIONS: dict[tuple[str, int, SessionConfig], ort.InferenceSession] = {}
_SESSIONS_LOCK = threading.Lock()


def _resized(detector: Detector, side: int) -> ort.InferenceSession:
    """The crop-size session of `detector`'s model, shared by every camera (sessions are thread-safe to run)."""
    key = (str(detector.path), side, detector.options.session)
    with _SESSIONS_LOCK:
        if key not in _SESSIONS:
            _SESSIONS[key] = open_resized(detector.path, (side, side), detector.options.session)
        return _SESSIONS[key]


class CropDetector:
    """Runs `detector` on windows of frames; `crop_input` is the model input side of one window, `context` extra model
    pixels of image kept around every region inside its window (default 0: the regions' own padding is the
    context; measured on vtest, a crop then gives the whole-frame box at median IoU 0.99, tests/vision/detect)."""

    def __init__(self, detector: Detector, crop_input: int, context: int | None = None) -> None:
        self.detector = detector
        self.context = 0 if context is None else context
        full = min(detector.input_hw)
        stride = detector.card.stride
        side = max(stride, crop_input // stride * stride)
        self.session: ort.InferenceSession = detector.session
        if side >= full:
            side = full
        elif not detector.io.dynamic_hw:
            try:
                self.session = _resized(detector, side)
            except ModelError as exc:
                log.warning("model %s cannot run crops at %d px (%s); crops use %d px", detector.name, side, exc, full)
                side = full
        self.side = side

    @property
    def name(self) -> str:
        return self.detector.name

    def input_shape(self, frame_wh: tuple[int, int]) -> tuple[int, int]:
        """(H, W) of this model's whole-frame input for a frame of `frame_wh`."""
        d = self.detector
        return target_shape((frame_wh[1], frame_wh[0]), d.input_hw, d.card.preprocess, d.card.stride, d.io.dynamic_hw)

    def transform(self, frame_wh: tuple[int, int]) -> Transform:
        """Frame → whole-frame model input mapping (what `prepare` would return), without an image."""
        (fw, fh), (h, w) = frame_wh, self.input_shape(frame_wh)
        if self.detector.card.preprocess == "resize":
            return Transform(w / fw, h / fh, 0.0, 0.0, fw, fh)
        r = min(h / fh, w / fw)
        nh, nw = max(1, round(fh * r)), max(1, round(fw * r))
        return Transform(nw / fw, nh / fh, float((w - nw) // 2), float((h - nh) // 2), fw, fh)

    def plan(self, regions: Sequence[Box], frame_wh: tuple[int, int]) -> list[Window] | None:
        """Windows (model-input pixels) that hold `regions` (frame pixels); None when one does not fit in a window."""
        if not regions:
            return []
        h, w = self.input_shape(frame_wh)
        boxes = self.transform(frame_wh).to_input(np.asarray(regions, dtype=np.float32).reshape(-1, 4))
        c = float(self.context)
        model_boxes = [
            (max(0.0, b[0] - c), max(0.0, b[1] - c), min(w, b[2] + c), min(h, b[3] + c)) for b in boxes.tolist()
        ]
        return plan_windows(model_boxes, (self.side, self.side), (w, h), align=self.detector.card.stride)

    def covers(self, box: Box, windows: Sequence[Window], frame_wh: tuple[int, int], margin: float = 2.0) -> bool:
        """True when `box` (frame pixels) lies whole inside one of `windows` (model-input pixels)."""
        b = self.transform(frame_wh).to_input(np.asarray([box], dtype=np.float32))[0]
        return covered((float(b[0]), float(b[1]), float(b[2]), float(b[3])), windows, margin)

    def cost(self, windows: int, frame_wh: tuple[int, int]) -> float:
        """Model pixels of `windows` crops as a fraction of one whole-frame inference's."""
        h, w = self.input_shape(frame_wh)
        return windows * self.side * self.side / float(h * w)

    def detect(self, image: ImageArray, windows: Sequence[Window]) -> Detections:
        """Detections (frame pixels) of `windows` (from `plan`) of `image`."""
        if not windows:
            return Detections.empty()
        d = self.detector
        conf = d.options.confidence if d.options.confidence is not None else d.card.thresholds.confidence
        iou = d.options.iou if d.options.iou is not None else d.card.thresholds.iou
        shape = self.input_shape((int(image.shape[1]), int(image.shape[0])))
        full, to_frame = prepare(image, shape, d.card.preprocess)
        bounds = (shape[1], shape[0])
        limit = d.options.max_batch if d.io.dynamic_batch else 1
        parts: list[Detections] = []
        for start in range(0, len(windows), limit):
            chunk = windows[start : start + limit]
            crops = [_cut(full, w, self.side) for w in chunk]
            output = self.session.run(None, {d.io.input_name: to_blob(crops)})[0]
            offsets = [Transform(1.0, 1.0, -float(w.x1), -float(w.y1), bounds[0], bounds[1]) for w in chunk]
            for w, det in zip(chunk, d.finish(output, offsets, conf, iou), strict=True):
                kept = seam_filter(det, w, bounds)
                if len(kept):
                    k = kept
                    parts.append(Detections(to_frame.to_frame(k.xyxy), k.confidence, k.class_id, k.label, data=k.data))
        return seam_nms(Detections.merge(parts), iou)


def _cut(full: ImageArray, w: Window, side: int) -> ImageArray:
    """The `side`×`side` crop of the model input under window `w` (grey where the window leaves the input)."""
    crop = full[w.y1 : w.y2, w.x1 : w.x2]
    if crop.shape[:2] == (side, side):
        return np.ascontiguousarray(crop)
    out = np.full((side, side, 3), PAD_VALUE, dtype=np.uint8)
    out[: crop.shape[0], : crop.shape[1]] = crop
    return out
