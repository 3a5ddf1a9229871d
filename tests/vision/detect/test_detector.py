from __future__ import annotations

import pathlib

import numpy as np
import onnxruntime as ort
import pytest

from tests.vision.detect.helpers import (
    DEFAULT,
    YOLOV8N,
    built_default_models_dir,
    make_v8_constant,
    make_v8_conv,
    write_card,
)
from vision.detect.detector import Detector, DetectorOptions
from vision.detect.errors import ImageError, ModelError
from vision.detect.images import sample_frames
from vision.detect.registry import ModelRegistry
from vision.detect.session import SessionConfig, resolve_providers

NAMES = ["person", "helmet", "dog"]
# cx, cy, w, h in input pixels of a 320x320 input, then scores for person, helmet, dog
CONST = np.array(
    [[100, 160, 40, 80, 0.9, 0.0, 0.0], [200, 100, 20, 20, 0.0, 0.8, 0.0], [50, 50, 10, 10, 0.0, 0.0, 0.95]], np.float32
).T


@pytest.fixture(scope="module")
def default_detector() -> Detector:
    models = built_default_models_dir()
    return Detector(ModelRegistry(models).card(DEFAULT), models)


def test_labels_and_data_columns(default_detector: Detector, sample_clip: pathlib.Path) -> None:
    frame = sample_frames(sample_clip, 1)[0]
    det = default_detector.detect(frame)
    assert len(det) >= 3 and set(det.label) <= {"person", "car", "truck", "bus", "bicycle", "motorcycle"}
    assert set(det.data["model"]) == {DEFAULT}
    assert "truck" in det.label  # the parked van, resized input (see the card)
    assert (det.xyxy[:, 2] <= frame.shape[1]).all() and (det.xyxy[:, 3] <= frame.shape[0]).all()
    assert (np.diff(det.confidence) <= 0).all()


def test_batch_equals_single(default_detector: Detector, sample_clip: pathlib.Path) -> None:
    frames = sample_frames(sample_clip, 3, step=100)
    batch = default_detector.detect_batch(frames)
    for frame, det in zip(frames, batch, strict=True):
        single = default_detector.detect(frame)
        np.testing.assert_allclose(det.xyxy, single.xyxy, atol=1e-3)
        np.testing.assert_array_equal(det.label, single.label)


def test_constant_v8_model_maps_boxes_back_exactly(tmp_path: pathlib.Path) -> None:
    make_v8_constant(tmp_path / "tiny.onnx", CONST, NAMES, (320, 320))
    card = write_card(tmp_path, labels={"person": "person", "helmet": "helmet"}, dynamic_batch=True)
    det = Detector(card, tmp_path).detect(np.zeros((160, 320, 3), np.uint8))  # letterbox: scale 1, pad_y 80
    np.testing.assert_array_equal(det.label, ["person", "helmet"])  # dog has no label: dropped
    np.testing.assert_allclose(det.xyxy, [[80, 40, 120, 120], [190, 10, 210, 30]], atol=1e-4)
    np.testing.assert_array_equal(det.data["class_name"], ["person", "helmet"])
    everything = Detector(card, tmp_path, DetectorOptions(keep_unmapped=True)).detect(np.zeros((160, 320, 3), np.uint8))
    assert list(everything.label) == ["", "person", "helmet"] and everything.data["class_name"][0] == "dog"


def test_rectangular_letterbox_for_dynamic_hw(tmp_path: pathlib.Path) -> None:
    make_v8_conv(tmp_path / "tiny.onnx", NAMES)
    card = write_card(tmp_path)
    det = Detector(card, tmp_path)
    ((blob, indices, _),) = det.prepare([np.zeros((576, 768, 3), np.uint8)])
    assert blob.shape == (1, 3, 256, 320) and indices == [0]
    groups = det.prepare([np.zeros((576, 768, 3), np.uint8), np.zeros((100, 100, 3), np.uint8)] * 2)
    assert sorted(b.shape[0] for b, _, _ in groups) == [2, 2]
    assert len(det.detect_batch([np.zeros((576, 768, 3), np.uint8)] * 3, confidence=0.0)) == 3


@pytest.mark.skipif(not YOLOV8N.is_file(), reason="models/.build/yolov8n.onnx is made by the export helper's recipe")
def test_real_ultralytics_export_runs(tmp_path: pathlib.Path, sample_clip: pathlib.Path) -> None:
    (tmp_path / "tiny.onnx").write_bytes(YOLOV8N.read_bytes())
    card = write_card(tmp_path, input_size=[640, 640])
    det = Detector(card, tmp_path, DetectorOptions(keep_unmapped=True))
    assert det.io.dynamic_batch and det.io.dynamic_hw and len(det.class_names) == 80
    out = det.detect_batch(sample_frames(sample_clip, 2), confidence=0.0)
    assert len(out) == 2 and all(len(d) <= 300 for d in out)


def test_missing_file(tmp_path: pathlib.Path) -> None:
    card = write_card(tmp_path)
    with pytest.raises(ModelError, match=r"tiny\.onnx: model file not found"):
        Detector(card, tmp_path)


def test_not_an_onnx_file(tmp_path: pathlib.Path) -> None:
    (tmp_path / "tiny.onnx").write_bytes(b"not a model")
    with pytest.raises(ModelError, match="not a loadable ONNX model"):
        Detector(write_card(tmp_path), tmp_path)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"input_size": [416, 416]}, "input is 320x320 but the card says input_size"),
        ({"format": "darknet-yolo"}, "unknown output layout"),
        ({"class_names": ["a", "b"], "labels": {"a": "person"}}, "3 classes but 2 class names"),
        ({"labels": {"cat": "person"}}, "classes the model does not have: cat"),
    ],
)
def test_card_and_model_disagree(tmp_path: pathlib.Path, fields: dict[str, object], message: str) -> None:
    make_v8_constant(tmp_path / "tiny.onnx", CONST, NAMES, (320, 320))
    with pytest.raises(ModelError, match=message):
        Detector(write_card(tmp_path, **fields), tmp_path)


@pytest.mark.parametrize(
    ("image", "message"),
    [(np.zeros((10, 10, 3), np.float32), "dtype float32"), (np.zeros((10, 10), np.uint8), "HxWx3")],
)
def test_bad_frames(default_detector: Detector, image: np.ndarray, message: str) -> None:
    with pytest.raises(ImageError, match=message):
        default_detector.detect(image)


def test_providers_and_threads(tmp_path: pathlib.Path) -> None:
    make_v8_conv(tmp_path / "tiny.onnx", NAMES)
    config = SessionConfig(providers=("NoSuchExecutionProvider", "CPUExecutionProvider"), intra_op_threads=1)
    det = Detector(write_card(tmp_path), tmp_path, DetectorOptions(session=config))
    assert det.providers == ["CPUExecutionProvider"]
    auto = resolve_providers("auto")
    assert auto[-1] == "CPUExecutionProvider" and set(auto) <= set(ort.get_available_providers())
