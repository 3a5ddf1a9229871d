"""A fixed-input darknet-yolo model at another input size: same weights, head constants redone."""

from __future__ import annotations

import pathlib

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, quantize_static

from tests.vision.detect.helpers import DEFAULT, built_default_models_dir, make_v8_conv
from vision.detect.errors import ModelError
from vision.detect.images import sample_frames
from vision.detect.input_size import open_resized, resize_input
from vision.detect.preprocess import prepare, to_blob
from vision.detect.session import SessionConfig, open_session
from vision.types import ImageArray


@pytest.fixture(scope="module")
def model_path() -> pathlib.Path:
    return built_default_models_dir() / f"{DEFAULT}.onnx"


@pytest.fixture(scope="module")
def frame(sample_clip: pathlib.Path) -> ImageArray:
    return sample_frames(sample_clip, 1, step=100)[0]


def test_same_size_is_the_same_model(model_path: pathlib.Path, frame: ImageArray) -> None:
    cfg = SessionConfig(intra_op_threads=1)
    blob = to_blob([prepare(frame, (416, 416), "resize")[0]])
    original = open_session(model_path, cfg).run(None, {"images": blob})[0]
    again = open_resized(model_path, (416, 416), cfg).run(None, {"images": blob})[0]
    np.testing.assert_array_equal(original, again)


def test_smaller_input_has_the_smaller_grids_and_finds_the_same_van(
    model_path: pathlib.Path, frame: ImageArray
) -> None:
    resized = resize_input(onnx.load(str(model_path)), (160, 224))
    dims = [d.dim_value for d in resized.graph.input[0].type.tensor_type.shape.dim[2:]]
    assert dims == [160, 224]
    session = open_resized(model_path, (160, 224), SessionConfig(intra_op_threads=1))
    # the van's neighbourhood at the whole-frame scale: 416/768 x 416/576 model pixels per frame pixel
    full = prepare(frame, (416, 416), "resize")[0]
    crop = np.ascontiguousarray(full[0:160, 192:416])
    out = session.run(None, {"images": to_blob([crop])})[0]
    assert out.shape == (1, 3 * (5 * 7 + 10 * 14), 85)  # heads of 5x7 and 10x14 cells, 3 anchors each
    best = out[0][out[0][:, 5 + 7].argmax()]  # COCO class 7: truck
    assert best[5 + 7] > 0.5
    cx, cy = best[0] + 192, best[1]
    assert 650 * 416 / 768 < cx < 712 * 416 / 768 and 50 * 416 / 576 < cy < 85 * 416 / 576


def test_a_graph_it_does_not_know_is_refused(tmp_path: pathlib.Path) -> None:
    other = onnx.load(str(make_v8_conv(tmp_path / "v8.onnx", ["person"])))
    with pytest.raises(ModelError, match=r"fixed H and W|darknet"):
        resize_input(other, (160, 160))


def test_a_size_off_the_grid_is_refused(model_path: pathlib.Path) -> None:
    with pytest.raises(ModelError, match="divide"):
        resize_input(onnx.load(str(model_path)), (150, 160))


def test_a_qdq_quantised_variant_keeps_its_quantised_constants_and_resizes(
    model_path: pathlib.Path, frame: ImageArray, tmp_path: pathlib.Path
) -> None:
    """onnxruntime's static QDQ quantiser stores the grid and anchor constants as `<name>_quantized` + scale + zero
    point; the same graph at its own size is unchanged, and at a crop size it runs with the smaller grids."""
    blob = to_blob([prepare(frame, (416, 416), "resize")[0]])

    class _One(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self.left = [{"images": blob}]

        def get_next(self) -> dict[str, np.ndarray] | None:
            return self.left.pop() if self.left else None

    qdq = tmp_path / "qdq.onnx"
    quantize_static(str(model_path), str(qdq), _One(), quant_format=QuantFormat.QDQ)
    model = onnx.load(str(qdq))
    assert any(t.name.startswith("grid_") and t.name.endswith("_quantized") for t in model.graph.initializer)
    original = ort.InferenceSession(str(qdq)).run(None, {"images": blob})[0]
    same = ort.InferenceSession(resize_input(model, (416, 416)).SerializeToString()).run(None, {"images": blob})[0]
    np.testing.assert_array_equal(original, same)
    small = ort.InferenceSession(resize_input(model, (224, 224)).SerializeToString())
    assert small.run(None, {"images": blob[:, :, :224, :224].copy()})[0].shape == (1, 3 * (7 * 7 + 14 * 14), 85)
