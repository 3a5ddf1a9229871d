from __future__ import annotations

import pathlib
import shutil

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from tests.vision.detect.helpers import DEFAULT, built_default_models_dir
from vision.detect.card import load_card
from vision.detect.images import sample_frames
from vision.detect.quantize import float_stem, head_convs, quantize_model
from vision.detect.registry import ModelRegistry


def test_head_convs_are_the_two_yolo_heads() -> None:
    models = built_default_models_dir()
    model = onnx.load(str(models / f"{DEFAULT}.onnx"))
    heads = head_convs(model)
    by_name = {n.name: n for n in model.graph.node}
    assert len(heads) == 2
    weights = {i.name: i for i in model.graph.initializer}
    shapes = [onnx.numpy_helper.to_array(weights[by_name[h].input[1]]).shape for h in heads]
    assert all(s[0] == 255 for s in shapes)


def _run(model: onnx.ModelProto, x: np.ndarray) -> list[np.ndarray]:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return [np.asarray(o) for o in session.run(None, {session.get_inputs()[0].name: x})]


def test_float_stem_reorders_activation_and_pool_bit_identically() -> None:
    model = onnx.load(str(built_default_models_dir() / f"{DEFAULT}.onnx"))
    original = onnx.ModelProto()
    original.CopyFrom(model)
    stem = float_stem(model)
    assert len(stem) == 1  # yolov3-tiny: one convolution reads the image
    onnx.checker.check_model(model)  # still a valid, topologically sorted graph
    by_output = {o: n for n in model.graph.node for o in n.output}
    conv = next(n for n in model.graph.node if n.name == stem[0])
    assert conv.input[0] == model.graph.input[0].name
    pool = next(n for n in model.graph.node if conv.output[0] in n.input)
    act = next(n for n in model.graph.node if pool.output[0] in n.input)
    assert (pool.op_type, act.op_type) == ("MaxPool", "LeakyRelu") and by_output[act.input[0]] is pool
    x = np.random.default_rng(0).random((2, 3, 416, 416), dtype=np.float32)
    for before, after in zip(_run(original, x), _run(model, x), strict=True):
        assert np.array_equal(before, after)


def test_built_int8_keeps_the_stem_and_heads_float() -> None:
    models = built_default_models_dir()
    base = onnx.load(str(models / f"{DEFAULT}.onnx"))
    int8 = onnx.load(str(models / f"{DEFAULT}-int8.onnx"))
    producers = {o: n for n in int8.graph.node for o in n.output}
    float_convs = set()
    for node in int8.graph.node:
        if node.op_type == "Conv" and producers.get(node.input[0], node).op_type != "DequantizeLinear":
            float_convs.add(node.name)
    assert float_convs == set(head_convs(base)) | set(float_stem(base))
    assert sum(n.op_type == "Conv" for n in int8.graph.node) == sum(n.op_type == "Conv" for n in base.graph.node)


@pytest.mark.slow
def test_int8_agrees_with_fp32(tmp_path: pathlib.Path, sample_clip: pathlib.Path) -> None:
    models = built_default_models_dir()
    shutil.copy(models / f"{DEFAULT}.onnx", tmp_path)
    card = ModelRegistry(models).card(DEFAULT)
    frames = sample_frames(sample_clip, 16, step=40)
    report = quantize_model(card, tmp_path, frames[:10], frames[10:], repeats=1)
    assert report.agreement.matched_rate >= 0.85
    assert report.agreement.mean_confidence_delta < 0.05
    written = load_card(tmp_path / f"{DEFAULT}-int8.yaml")
    assert written.sha256 == report.card.sha256 and written.build is None and "matched" in written.notes
    assert (tmp_path / f"{DEFAULT}-int8.onnx").stat().st_size < (tmp_path / f"{DEFAULT}.onnx").stat().st_size / 2
