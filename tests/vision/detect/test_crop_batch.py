"""`CropBatchDetector`: crop sizing, the exact inverse mapping, the real helmet model on crops of bus.jpg's people."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest

from tests.vision.detect.helpers import MODELS, built_default_models_dir
from vision.detect.compare import box_iou
from vision.detect.crop_batch import CropBatchDetector, CropSizing, clip_regions, letterbox
from vision.detect.images import load_image
from vision.detect.registry import ModelRegistry


@pytest.mark.parametrize(
    ("crop_hw", "scale", "expected"),
    [
        ((319, 255), 0.593, 192),  # a bus.jpg person's upper body at the 640-on-1080 full-frame scale
        ((50, 40), 0.833, 64),  # a small vtest person: never below min_side
        ((900, 300), 1.0, 224),  # capped at max_side
    ],
)
def test_crop_side(crop_hw: tuple[int, int], scale: float, expected: int) -> None:
    assert CropSizing(max_side=224, min_side=64).side(crop_hw, scale, 32) == expected


def test_small_crops_are_enlarged_to_min_crop_large_ones_keep_the_scale() -> None:
    sizing = CropSizing(min_crop=128, max_enlarge=3.0)
    assert sizing.crop_scale((319, 255), 0.593) == pytest.approx(0.593)  # 189 px already: unchanged
    assert sizing.crop_scale((64, 50), 0.833) == pytest.approx(128 / 64)  # 53 px -> 128 px
    assert sizing.crop_scale((30, 20), 0.833) == pytest.approx(0.833 * 3.0)  # at most 3x
    assert sizing.side((64, 50), sizing.crop_scale((64, 50), 0.833), 32) == 128
    assert CropSizing().crop_scale((64, 50), 0.833) == pytest.approx(0.833)  # min_crop 0: off


def test_letterbox_keeps_the_scale_and_inverts_exactly() -> None:
    image = np.zeros((50, 40, 3), dtype=np.uint8)
    canvas, t = letterbox(image, (64, 64), 0.8)
    assert canvas.shape == (64, 64, 3) and (t.scale_x, t.scale_y) == (32 / 40, 40 / 50)  # not blown up to 64
    box = np.asarray([[4.0, 5.0, 30.0, 45.0]], dtype=np.float32)
    np.testing.assert_allclose(t.to_frame(t.to_input(box)), box, atol=1e-4)


def test_clip_regions_to_the_frame() -> None:
    regions = np.asarray([[-10, -5, 50, 60], [630, 350, 700, 400], [10, 10, 10, 10], [700, 400, 710, 410]])
    assert clip_regions(regions, 640, 360).tolist() == [
        [0, 0, 50, 60],
        [630, 350, 640, 360],
        [10, 10, 11, 11],  # empty: one pixel
        [639, 359, 640, 360],  # outside: the nearest pixel
    ]


@pytest.mark.export
def test_helmet_model_on_person_crops_finds_the_full_frame_heads(test_images: pathlib.Path) -> None:
    registry = ModelRegistry(MODELS)
    if not registry.is_built("helmet"):
        pytest.skip("the optional helmet model is not built (`make models-optional`)")
    bus = load_image(test_images / "bus.jpg")
    people = ModelRegistry(built_default_models_dir()).detector("coco-yolov3-tiny").detect(bus)
    people = people[(people.label == "person") & (people.confidence >= 0.5)]
    full = registry.detector("helmet").detect(bus)
    crops = CropBatchDetector(registry.detector("helmet"))
    regions = np.stack([people.xyxy[:, 0] - 20, people.xyxy[:, 1] - 30, people.xyxy[:, 2] + 20,
                        people.xyxy[:, 1] + 250], axis=1).astype(np.int64)  # fmt: skip
    found = crops.detect(bus, regions)
    assert crops.inferences == 1, "crops of one size share one session.run"
    heads = [d for d in found if len(d)]
    assert len(heads) == len(full) == 2 and all(set(d.label.tolist()) == {"no_helmet"} for d in heads)
    for d in heads:  # same place as the full-frame pass, in frame pixels
        assert box_iou(d.xyxy, full.xyxy).max() >= 0.8
