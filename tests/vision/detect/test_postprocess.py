from __future__ import annotations

import numpy as np
import pytest

from vision.detect.postprocess import decode, num_classes


def _rows(boxes: list[list[float]], scores: list[list[float]]) -> tuple[np.ndarray, np.ndarray]:
    """cx,cy,w,h rows and per-class scores."""
    return np.array(boxes, np.float32), np.array(scores, np.float32)


BOXES = [[50, 50, 40, 40], [52, 50, 40, 40], [50, 50, 40, 40], [200, 200, 20, 20], [300, 300, 10, 10]]
SCORES = [[0.9, 0.0], [0.8, 0.0], [0.0, 0.7], [0.6, 0.1], [0.1, 0.05]]


def _v8() -> np.ndarray:
    b, s = _rows(BOXES, SCORES)
    return np.concatenate([b, s], axis=1).T[None]


def _darknet() -> np.ndarray:
    b, s = _rows(BOXES, SCORES)
    obj = s.max(axis=1, keepdims=True)
    return np.concatenate([b, obj, s], axis=1)[None]


@pytest.mark.parametrize(("layout", "output"), [("yolov8", _v8()), ("darknet-yolo", _darknet())])
def test_filter_and_class_aware_nms(layout: str, output: np.ndarray) -> None:
    (raw,) = decode(output, layout, conf=0.25, iou=0.45)  # type: ignore[arg-type]
    # box 1 is suppressed by box 0 (same class, IoU 0.9); box 2 overlaps but is another class; box 4 is below 0.25
    np.testing.assert_allclose(raw.confidence, [0.9, 0.7, 0.6])
    np.testing.assert_array_equal(raw.class_id, [0, 1, 0])
    np.testing.assert_allclose(raw.xyxy[0], [30, 30, 70, 70])
    np.testing.assert_allclose(raw.xyxy[2], [190, 190, 210, 210])


def test_batch_items_are_independent_and_max_det_caps() -> None:
    out = np.concatenate([_v8(), np.zeros_like(_v8())])
    first, second = decode(out, "yolov8", conf=0.25, iou=0.45, max_det=2)
    assert len(first.confidence) == 2 and len(second.confidence) == 0


@pytest.mark.parametrize(
    ("layout", "shape", "expected"),
    [("yolov8", (1, 84, 8400), 80), ("darknet-yolo", (1, 2535, 85), 80), ("yolov8", (None, 6, None), 2)],
)
def test_num_classes(layout: str, shape: tuple[int, ...], expected: int) -> None:
    assert num_classes(layout, shape) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("layout", "shape"),
    [("yolov8", (1, 84)), ("yolov8", (1, 4, 100)), ("darknet-yolo", (1, 100, 5)), ("yolov8", (1, None, 9))],
)
def test_num_classes_rejects_unknown_layouts(layout: str, shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="output"):
        num_classes(layout, shape)  # type: ignore[arg-type]
