"""COCO metrics with the real default model on real images.

The ground truth below was read off the images by hand (a pixel grid drawn over each, boxes drawn back to check):
bus.jpg (810x1080): three men in front of the bus, the partly visible person at the left edge, and the bus;
zidane.jpg (1280x720): the two men (Zidane's box includes his pointing arm) and Zidane's tie (a COCO category the
model's card does not map, so it must come back as unmatched).
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest

from tests.vision.detect.helpers import DEFAULT, built_default_models_dir
from vision.detect.coco_eval import (
    COCO_CONFIDENCE,
    CocoCategory,
    evaluate_coco,
    evaluate_coco_files,
    load_coco,
    match_categories,
)
from vision.detect.detector import Detector
from vision.detect.errors import EvalError, ModelError
from vision.detect.registry import ModelRegistry

PERSON, BUS, TIE = 1, 6, 28
GT_BOXES: list[tuple[int, int, list[float]]] = [  # (image id, category id, [x, y, w, h])
    (1, PERSON, [48, 398, 197, 504]),
    (1, PERSON, [222, 405, 125, 455]),
    (1, PERSON, [668, 392, 142, 488]),
    (1, PERSON, [0, 550, 65, 325]),
    (1, BUS, [18, 228, 787, 512]),
    (2, PERSON, [125, 200, 1025, 520]),
    (2, PERSON, [750, 42, 390, 678]),
    (2, TIE, [440, 430, 75, 290]),
]


def coco_dict(shift: float = 0.0) -> dict[str, Any]:
    """The hand-made annotations; `shift` moves every box right and down by that fraction of its own size."""
    anns = [
        {
            "id": n + 1,
            "image_id": img,
            "category_id": cat,
            "iscrowd": 0,
            "segmentation": [],
            "bbox": [x + shift * w, y + shift * h, w, h],
        }
        for n, (img, cat, (x, y, w, h)) in enumerate(GT_BOXES)
    ]
    return {
        "info": {"description": "safewatch test annotations"},
        "images": [
            {"id": 1, "file_name": "bus.jpg", "width": 810, "height": 1080},
            {"id": 2, "file_name": "zidane.jpg", "width": 1280, "height": 720},
        ],
        "categories": [{"id": PERSON, "name": "person"}, {"id": BUS, "name": "bus"}, {"id": TIE, "name": "tie"}],
        "annotations": anns,
    }


def write_coco(path: pathlib.Path, data: dict[str, Any] | str) -> pathlib.Path:
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def detector() -> Detector:
    return ModelRegistry(built_default_models_dir()).detector(DEFAULT)


def test_coco_metrics_on_real_images(detector: Detector, test_images: pathlib.Path, tmp_path: pathlib.Path) -> None:
    ann = write_coco(tmp_path / "ann.json", coco_dict())
    report = evaluate_coco(detector, load_coco(ann), test_images, ann)
    by_label = {m.label: m for m in report.labels}
    assert set(by_label) == {"person", "bus"}
    person = by_label["person"]
    assert person.gt_boxes == 6 and person.categories == ["person"]
    assert person.ap50 is not None and person.ap50 > 0.8
    assert person.recall50 is not None and person.recall50 > 0.8
    assert person.ap is not None and 0.3 < person.ap <= person.ap50
    assert report.map50 is not None and report.map50 > 0.8
    assert report.unmatched_categories == [{"id": TIE, "name": "tie", "annotations": 1}]
    assert "person" not in report.unscored_labels and "car" in report.unscored_labels


def test_shifted_ground_truth_scores_low(detector: Detector, test_images: pathlib.Path, tmp_path: pathlib.Path) -> None:
    ann = write_coco(tmp_path / "ann.json", coco_dict(shift=0.6))
    report = evaluate_coco(detector, load_coco(ann), test_images, ann)
    person = next(m for m in report.labels if m.label == "person")
    assert person.ap50 is not None and person.ap50 < 0.2
    assert report.map is not None and report.map < 0.1


def test_no_detections_scores_zero(detector: Detector, test_images: pathlib.Path, tmp_path: pathlib.Path) -> None:
    ann = write_coco(tmp_path / "ann.json", coco_dict())
    report = evaluate_coco(detector, load_coco(ann), test_images, ann, confidence=1.0)
    assert report.map == 0.0 and all(m.ap == 0.0 and m.detections == 0 for m in report.labels)


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("person", "person"),
        ("Person", "person"),
        ("motorbike", "motorcycle"),  # a class name of the card, mapped through its labels
        ("motorcycle", "motorcycle"),  # the label itself
        (" Bus ", "bus"),
        ("tie", None),
        ("traffic light", None),
        ("", None),
    ],
)
def test_match_categories(detector: Detector, name: str, label: str | None) -> None:
    cat = CocoCategory.model_construct(id=1, name=name)
    assert match_categories([cat], detector.card.labels) == {1: label}


def _edit(change: str) -> dict[str, Any] | str:
    data = coco_dict()
    if change == "bad json":
        return "{not json"
    if change == "no images key":
        del data["images"]
    elif change == "bbox of 3":
        data["annotations"][0]["bbox"] = [1, 2, 3]
    elif change == "unknown image":
        data["annotations"][2]["image_id"] = 99
    elif change == "unknown category":
        data["annotations"][1]["category_id"] = 77
    elif change == "zero width":
        data["annotations"][0]["bbox"][2] = 0
    elif change == "duplicate image id":
        data["images"][1]["id"] = 1
    elif change == "no images":
        data.update(images=[], annotations=[])
    return data


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("bad json", "not valid JSON"),
        ("no images key", "images: Field required"),
        ("bbox of 3", "annotations.0.bbox: List should have at least 4 items"),
        ("unknown image", "annotations.2.image_id: 99 is not the id of an image"),
        ("unknown category", "annotations.1.category_id: 77 is not the id of a category"),
        ("zero width", "annotations.0.bbox: width and height must be positive"),
        ("duplicate image id", "images: duplicate id(s) [1]"),
        ("no images", "images: empty"),
    ],
)
def test_load_coco_errors(tmp_path: pathlib.Path, change: str, message: str) -> None:
    ann = write_coco(tmp_path / "ann.json", _edit(change))
    with pytest.raises(EvalError) as err:
        load_coco(ann)
    assert str(ann) in str(err.value) and message in str(err.value)


def test_load_coco_valid_and_missing(tmp_path: pathlib.Path) -> None:
    coco = load_coco(write_coco(tmp_path / "ok.json", coco_dict()))
    assert len(coco.images) == 2 and len(coco.annotations) == len(GT_BOXES)
    with pytest.raises(EvalError, match="file not found"):
        load_coco(tmp_path / "missing.json")


def test_image_errors_name_the_image(detector: Detector, test_images: pathlib.Path, tmp_path: pathlib.Path) -> None:
    data = coco_dict()
    data["images"][1]["file_name"] = "gone.jpg"
    ann = write_coco(tmp_path / "ann.json", data)
    with pytest.raises(EvalError, match=r"gone\.jpg: image not found \(listed in .*ann\.json images\.1, id 2\)"):
        evaluate_coco(detector, load_coco(ann), test_images, ann)
    data = coco_dict()
    data["images"][0]["width"] = 800
    ann = write_coco(tmp_path / "ann2.json", data)
    with pytest.raises(EvalError, match=r"bus\.jpg: image is 810x1080 but .* says 800x1080"):
        evaluate_coco(detector, load_coco(ann), test_images, ann)


def test_no_matching_category(detector: Detector, test_images: pathlib.Path, tmp_path: pathlib.Path) -> None:
    data = coco_dict()
    data["categories"] = [{"id": c["id"], "name": f"thing{c['id']}"} for c in data["categories"]]
    ann = write_coco(tmp_path / "ann.json", data)
    with pytest.raises(EvalError, match="none matches a label of model 'coco-yolov3-tiny'"):
        evaluate_coco(detector, load_coco(ann), test_images, ann)


def test_coco_files_from_the_registry(test_images: pathlib.Path, tmp_path: pathlib.Path) -> None:
    """The whole evaluation from names and paths; the threshold defaults to the whole precision/recall curve."""
    ann = write_coco(tmp_path / "ann.json", coco_dict())
    registry = ModelRegistry(built_default_models_dir())
    report = evaluate_coco_files(registry, DEFAULT, ann, test_images)
    assert report.model == DEFAULT and report.confidence == COCO_CONFIDENCE == 0.001
    assert report.map50 is not None and report.map50 > 0.8
    assert evaluate_coco_files(registry, DEFAULT, ann, test_images, confidence=1.0).map == 0.0


def test_coco_files_check_the_directory_then_the_file_then_the_model(
    test_images: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    registry = ModelRegistry(built_default_models_dir())
    ann = write_coco(tmp_path / "ann.json", "{not json")
    with pytest.raises(EvalError, match=r"nodir: images directory not found"):
        evaluate_coco_files(registry, "nope", ann, tmp_path / "nodir")
    with pytest.raises(EvalError, match="not valid JSON"):
        evaluate_coco_files(registry, "nope", ann, test_images)
    with pytest.raises(ModelError, match="unknown model 'nope'"):
        evaluate_coco_files(registry, "nope", write_coco(tmp_path / "ok.json", coco_dict()), test_images)
