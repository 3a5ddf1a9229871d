"""`CropDetector` on the real default model and real frames: crops see what the whole frame sees."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest

from tests.vision.detect.helpers import DEFAULT, built_default_models_dir
from vision.detect.crops import CropDetector
from vision.detect.detector import Detector
from vision.detect.images import sample_frames
from vision.detect.regions import Box
from vision.detect.registry import ModelRegistry
from vision.track.matching import iou_matrix
from vision.types import ImageArray


@pytest.fixture(scope="module")
def detector() -> Detector:
    models = built_default_models_dir()
    return Detector(ModelRegistry(models).card(DEFAULT), models)


@pytest.fixture(scope="module")
def frames(sample_clip: pathlib.Path) -> list[ImageArray]:
    return sample_frames(sample_clip, 4, step=150)


def _around(box: np.ndarray, frame_wh: tuple[int, int]) -> Box:
    w, h = box[2] - box[0], box[3] - box[1]
    return (
        max(0.0, float(box[0] - w / 4)),
        max(0.0, float(box[1] - h / 4)),
        min(float(frame_wh[0]), float(box[2] + w / 4)),
        min(float(frame_wh[1]), float(box[3] + h / 4)),
    )


def test_geometry_of_the_default_model(detector: Detector) -> None:
    crops = CropDetector(detector, 160)
    assert crops.side == 160 and crops.session is not detector.session
    assert crops.cost(2, (768, 576)) == pytest.approx(2 * 160 * 160 / (416 * 416))
    t = crops.transform((768, 576))
    assert (t.scale_x, t.scale_y, t.pad_x, t.pad_y) == pytest.approx((416 / 768, 416 / 576, 0.0, 0.0))
    assert CropDetector(detector, 512).side == 416  # never above the model's own input


def test_crops_find_the_whole_frame_objects_at_their_place(detector: Detector, frames: list[ImageArray]) -> None:
    crops = CropDetector(detector, 160)
    ious, found, wanted = [], 0, 0
    for frame in frames:
        wh = (frame.shape[1], frame.shape[0])
        full = detector.detect(frame)
        for i in np.flatnonzero(full.confidence >= 0.5):
            windows = crops.plan([_around(full.xyxy[i], wh)], wh)
            if not windows:  # larger than a window: the stage runs the whole frame for it
                continue
            wanted += 1
            got = crops.detect(frame, windows)
            same = got[got.label == full.label[i]]
            if len(same):
                best = float(iou_matrix(full.xyxy[i : i + 1], same.xyxy).max())
                found += best >= 0.5
                ious.append(best)
    assert wanted >= 8
    assert found == wanted
    assert float(np.median(ious)) >= 0.95


def test_batched_windows_equal_one_at_a_time(detector: Detector, frames: list[ImageArray]) -> None:
    crops = CropDetector(detector, 160)
    frame = frames[0]
    wh = (frame.shape[1], frame.shape[0])
    full = detector.detect(frame)
    regions = [_around(b, wh) for b in full.xyxy[full.confidence >= 0.5]]
    regions = [r for r in regions if crops.plan([r], wh)][:4]
    windows = crops.plan(regions, wh)
    assert windows and len(windows) >= 2
    together = crops.detect(frame, windows)
    apart = [crops.detect(frame, [w]) for w in windows]
    for one in apart:  # every box of a lone window is in the batch, or suppressed there by an overlapping one
        for box, label in zip(one.xyxy, one.label, strict=True):
            same = together.xyxy[together.label == label]
            assert float(iou_matrix(box[None], same).max()) >= 0.45
    assert len(crops.detect(frame, [])) == 0
