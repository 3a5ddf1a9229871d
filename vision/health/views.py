"""Evidence images of camera health: the reference view and the current view side by side."""

from __future__ import annotations

import cv2
import numpy as np

from vision.types import ImageArray

_GAP = 8  # pixels of dark gray between the two views


def side_by_side(reference: ImageArray | None, current: ImageArray) -> ImageArray:
    """One RGB image: `reference` (left, scaled to `current`'s size; gray when there is none) and `current` (right),
    each captioned ("reference", "now")."""
    h, w = current.shape[:2]
    if reference is None:
        left = np.full_like(current, 64)
    elif reference.shape[:2] != (h, w):
        left = np.asarray(cv2.resize(reference, (w, h), interpolation=cv2.INTER_AREA), dtype=np.uint8)
    else:
        left = reference.copy()
    right = current.copy()
    for image, caption in ((left, "reference"), (right, "now")):
        _caption(image, caption)
    gap = np.full((h, _GAP, 3), 32, dtype=np.uint8)
    return np.ascontiguousarray(np.hstack([left, gap, right]))


def _caption(image: ImageArray, text: str) -> None:
    scale = max(0.5, image.shape[0] / 600)
    thickness = max(1, round(scale * 2))
    origin = (10, image.shape[0] - 12)
    cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), thickness + 2, cv2.LINE_AA)
    cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), thickness, cv2.LINE_AA)
