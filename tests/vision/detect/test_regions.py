"""Motion-region geometry: blobs from a mask, padding, merging, window packing, seam filtering and seam NMS."""

from __future__ import annotations

import numpy as np
import pytest

from vision.detect.regions import (
    Box,
    Window,
    boxes_from_mask,
    covered,
    pad_boxes,
    plan_windows,
    seam_filter,
    seam_nms,
    shift,
)
from vision.types import Detections


def _det(boxes: list[Box], conf: list[float], labels: list[str]) -> Detections:
    return Detections(
        xyxy=np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
        confidence=np.asarray(conf, dtype=np.float32),
        class_id=np.asarray([0 if lbl == "person" else 7 for lbl in labels], dtype=np.int64),
        label=np.asarray(labels),
    )


def test_boxes_from_mask_scales_blobs_to_frame_pixels_and_drops_specks() -> None:
    mask = np.zeros((90, 160), dtype=np.bool_)
    mask[10:20, 30:40] = True  # a mover
    mask[70, 150] = True  # one noisy pixel
    boxes = boxes_from_mask(mask, (640, 360), min_area=10, dilate=0)
    assert boxes == [(120.0, 40.0, 160.0, 80.0)]


def test_boxes_from_mask_dilation_joins_the_pieces_of_one_mover() -> None:
    mask = np.zeros((90, 160), dtype=np.bool_)
    mask[10:20, 30:34] = True
    mask[10:20, 35:40] = True  # a one-pixel gap
    assert len(boxes_from_mask(mask, (160, 90), dilate=0)) == 2
    assert len(boxes_from_mask(mask, (160, 90), dilate=1)) == 1
    assert boxes_from_mask(np.zeros((90, 160), dtype=np.bool_), (160, 90)) == []


@pytest.mark.parametrize(
    ("box", "frac", "min_px", "expected"),
    [
        ((100.0, 100.0, 120.0, 140.0), 0.5, 0.0, (90.0, 80.0, 130.0, 160.0)),
        ((100.0, 100.0, 120.0, 140.0), 0.0, 8.0, (92.0, 92.0, 128.0, 148.0)),
        ((0.0, 0.0, 20.0, 20.0), 1.0, 0.0, (0.0, 0.0, 40.0, 40.0)),  # clipped at the frame's edge
        ((630.0, 350.0, 640.0, 360.0), 1.0, 0.0, (620.0, 340.0, 640.0, 360.0)),
    ],
)
def test_pad_boxes(box: Box, frac: float, min_px: float, expected: Box) -> None:
    assert pad_boxes([box], frac, min_px, (640, 360)) == [expected]


def test_plan_windows_packs_regions_that_fit_together_and_aligns_corners() -> None:
    regions = [(100.0, 100.0, 130.0, 180.0), (150.0, 120.0, 190.0, 170.0), (350.0, 300.0, 380.0, 380.0)]
    windows = plan_windows(regions, (160, 160), (416, 416), align=32)
    assert windows is not None and len(windows) == 2
    for w in windows:
        assert (w.x2 - w.x1, w.y2 - w.y1) == (160, 160)
        assert w.x1 % 32 == 0 and w.y1 % 32 == 0
        assert w.x1 >= 0 and w.x2 <= 416 and w.y1 >= 0 and w.y2 <= 416
        assert all(covered(r, [w]) for r in w.regions)
    assert sorted(len(w.regions) for w in windows) == [1, 2]


def test_plan_windows_refuses_a_region_larger_than_a_window() -> None:
    assert plan_windows([(0.0, 0.0, 200.0, 50.0)], (160, 160), (416, 416), align=32) is None
    assert plan_windows([], (160, 160), (416, 416)) == []


def test_plan_windows_at_the_bounds_edge_stays_inside() -> None:
    windows = plan_windows([(400.0, 400.0, 416.0, 416.0)], (160, 160), (416, 416), align=32)
    assert windows == [Window(256, 256, 416, 416, ((400.0, 400.0, 416.0, 416.0),))]


def test_seam_filter_drops_boxes_cut_by_an_inner_edge_only() -> None:
    window = Window(100, 0, 260, 160)
    det = _det(
        [(100, 50, 130, 120), (150, 50, 180, 120), (230, 0, 260, 60), (150, 0, 180, 40)], [0.9] * 4, ["person"] * 4
    )
    kept = seam_filter(det, window, (416, 416))
    # left (x=100) and right (x=260) are inner edges; the top (y=0) is the frame's own edge
    assert kept.xyxy.tolist() == [[150, 50, 180, 120], [150, 0, 180, 40]]


def test_shift_and_seam_nms_deduplicate_across_windows_per_class() -> None:
    a = shift(_det([(10, 10, 50, 110)], [0.9], ["person"]), 100, 0)
    b = _det([(111, 12, 151, 110), (111, 12, 151, 110)], [0.8, 0.7], ["person", "truck"])
    merged = seam_nms(Detections.merge([a, b]), 0.45)
    assert merged.label.tolist() == ["person", "truck"]
    assert merged.xyxy[0].tolist() == [110, 10, 150, 110]
    assert merged.confidence.tolist() == pytest.approx([0.9, 0.7])


def test_covered_needs_the_whole_box_inside_with_margin() -> None:
    w = [Window(0, 0, 100, 100)]
    assert covered((10, 10, 90, 90), w, margin=2)
    assert not covered((10, 10, 99, 90), w, margin=2)
    assert not covered((90, 10, 120, 50), w)
