"""Pre-processing: frame (RGB uint8 HxWx3) → network input, and the exact inverse mapping of boxes.

`resize` stretches the frame to the input size (what Darknet models were trained on); `letterbox` keeps the aspect
ratio and pads with grey 114 (Ultralytics), to the full input size, or — when the model has dynamic H/W — to the
smallest stride-aligned rectangle. Both use `cv2.INTER_LINEAR`, so a continuous frame coordinate `x` lands at
`x * scale_x + pad_x` in the input; `Transform.to_frame` inverts that exactly (per axis, using the rounded size).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from vision.detect.errors import ImageError
from vision.types import FloatArray, ImageArray

Preprocess = Literal["letterbox", "resize"]
PAD_VALUE = 114


@dataclass(frozen=True, slots=True)
class Transform:
    """Frame → input affine map (per-axis scale then offset) and the frame size for clipping."""

    scale_x: float
    scale_y: float
    pad_x: float
    pad_y: float
    frame_w: int
    frame_h: int

    def to_input(self, xyxy: FloatArray) -> FloatArray:
        out = xyxy.astype(np.float32, copy=True)
        out[:, 0::2] = out[:, 0::2] * self.scale_x + self.pad_x
        out[:, 1::2] = out[:, 1::2] * self.scale_y + self.pad_y
        return out

    def to_frame(self, xyxy: FloatArray) -> FloatArray:
        """Map input-pixel boxes back to frame pixels and clip them to the frame."""
        out = xyxy.astype(np.float32, copy=True)
        out[:, 0::2] = np.clip((out[:, 0::2] - self.pad_x) / self.scale_x, 0, self.frame_w)
        out[:, 1::2] = np.clip((out[:, 1::2] - self.pad_y) / self.scale_y, 0, self.frame_h)
        return out


def check_image(image: object) -> ImageArray:
    """Return `image` if it is an HxWx3 uint8 array, else raise ImageError saying what it is."""
    if not isinstance(image, np.ndarray):
        raise ImageError(f"image must be a numpy array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise ImageError(f"image must be uint8 RGB, got dtype {image.dtype}")
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise ImageError(f"image must have shape HxWx3 (RGB), got {image.shape}")
    return image


def target_shape(
    frame_hw: tuple[int, int], input_hw: tuple[int, int], method: Preprocess, stride: int, dynamic_hw: bool
) -> tuple[int, int]:
    """The (H, W) the network input will have for a frame of `frame_hw`."""
    if method == "resize" or not dynamic_hw:
        return input_hw
    r = min(input_hw[0] / frame_hw[0], input_hw[1] / frame_hw[1])
    h, w = round(frame_hw[0] * r), round(frame_hw[1] * r)
    return math.ceil(h / stride) * stride, math.ceil(w / stride) * stride


def prepare(image: ImageArray, shape_hw: tuple[int, int], method: Preprocess) -> tuple[ImageArray, Transform]:
    """Resize or letterbox one RGB frame to `shape_hw`; returns the HxWx3 uint8 input and its Transform."""
    fh, fw = image.shape[:2]
    th, tw = shape_hw
    if method == "resize":
        out = cv2.resize(image, (tw, th), interpolation=cv2.INTER_LINEAR) if (fh, fw) != (th, tw) else image
        return np.asarray(out, dtype=np.uint8), Transform(tw / fw, th / fh, 0.0, 0.0, fw, fh)
    r = min(th / fh, tw / fw)
    nh, nw = max(1, round(fh * r)), max(1, round(fw * r))
    top, left = (th - nh) // 2, (tw - nw) // 2
    canvas = np.full((th, tw, 3), PAD_VALUE, dtype=np.uint8)
    resized = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_LINEAR) if (nh, nw) != (fh, fw) else image
    canvas[top : top + nh, left : left + nw] = resized
    return canvas, Transform(nw / fw, nh / fh, float(left), float(top), fw, fh)


def to_blob(images: list[ImageArray]) -> FloatArray:
    """Stack HxWx3 uint8 RGB inputs of one shape into a contiguous NCHW float32 blob in [0, 1]."""
    batch = np.stack(images) if len(images) > 1 else images[0][None]
    blob = np.empty((batch.shape[0], 3, batch.shape[1], batch.shape[2]), dtype=np.float32)
    np.multiply(batch.transpose(0, 3, 1, 2), np.float32(1 / 255), out=blob)
    return blob
