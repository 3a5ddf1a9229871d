"""`MotionMask`: changed pixels between consecutive analysed frames, the input of the motion regions."""

from __future__ import annotations

import numpy as np

from vision.motion import MotionMask, small_gray


def _frame(x: int | None) -> np.ndarray:
    img = np.full((90, 160, 3), 100, dtype=np.uint8)
    if x is not None:
        img[30:60, x : x + 10] = 220
    return img


def test_a_mover_shows_at_its_old_and_new_place_and_nothing_else() -> None:
    motion = MotionMask(width=160, pixel_threshold=20)
    assert not motion.update(_frame(20)).any()  # first frame: nothing to compare with
    mask = motion.update(_frame(60))
    cols = np.flatnonzero(mask.any(axis=0))
    assert cols.min() >= 18 and cols.max() <= 72  # both places (blurred by one pixel), nothing in between
    assert not mask[:, 35:55].any() and not mask[:25].any()
    assert not motion.update(_frame(60)).any()  # still: no change


def test_shared_gray_and_size_changes() -> None:
    motion = MotionMask(width=80)
    first = _frame(20)
    motion.update(first, gray=small_gray(first, 80))
    assert motion.update(_frame(60), gray=small_gray(_frame(60), 80)).any()
    resized = motion.update(np.zeros((40, 40, 3), dtype=np.uint8))  # another frame size: starts over
    assert resized.shape == (80, 80) and not resized.any()
    motion.reset()
    assert not motion.update(_frame(20)).any()
