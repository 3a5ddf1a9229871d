"""Shared by the detection tests (also imported by tests/api): the built default model and tiny real ONNX models."""

from __future__ import annotations

import pathlib

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from vision.detect.build import build_model
from vision.detect.card import ModelCard, Source, dump_card
from vision.detect.registry import ModelRegistry

ROOT = pathlib.Path(__file__).resolve().parents[3]
MODELS = ROOT / "models"
DEFAULT = "coco-yolov3-tiny"
YOLOV8N = MODELS / ".build" / "yolov8n.onnx"


def built_default_models_dir() -> pathlib.Path:
    """models/ with the default model built (cached: the sdist lives in .cache/, the build is skipped when valid)."""
    reg = ModelRegistry(MODELS)
    build_model(reg.card(DEFAULT), MODELS, repo_root=ROOT, cache_dir=ROOT / ".cache")
    return MODELS


def _save(model: onnx.ModelProto, path: pathlib.Path, names: list[str]) -> pathlib.Path:
    helper.set_model_props(model, {"names": repr(dict(enumerate(names))), "imgsz": "[320, 320]", "stride": "32"})
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def make_v8_conv(path: pathlib.Path, names: list[str], seed: int = 0) -> pathlib.Path:
    """A small real Ultralytics-layout model: a stride-32 conv head → [B, 4+nc, N], dynamic batch/H/W, `names`."""
    rng = np.random.default_rng(seed)
    c = 4 + len(names)
    w = rng.normal(0, 0.05, (c, 3, 32, 32)).astype(np.float32)
    b = np.concatenate([[16, 16, 40, 40], np.zeros(len(names))]).astype(np.float32)
    nodes = [
        helper.make_node("Conv", ["images", "w", "b"], ["feat"], kernel_shape=[32, 32], strides=[32, 32]),
        helper.make_node("Reshape", ["feat", "shape"], ["raw"]),
        helper.make_node("Sigmoid", ["raw"], ["sig"]),
        helper.make_node("Slice", ["raw", "s0", "s4", "ax"], ["boxes"]),
        helper.make_node("Slice", ["sig", "s4", "send", "ax"], ["scores"]),
        helper.make_node("Concat", ["boxes", "scores"], ["output0"], axis=1),
    ]
    inits = [
        numpy_helper.from_array(w, "w"),
        numpy_helper.from_array(b, "b"),
        numpy_helper.from_array(np.array([0, c, -1], np.int64), "shape"),
        numpy_helper.from_array(np.array([0], np.int64), "s0"),
        numpy_helper.from_array(np.array([4], np.int64), "s4"),
        numpy_helper.from_array(np.array([c], np.int64), "send"),
        numpy_helper.from_array(np.array([1], np.int64), "ax"),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny_v8",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, "height", "width"])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, ["batch", c, "anchors"])],
        initializer=inits,
    )
    return _save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), path, names)


def make_v8_constant(path: pathlib.Path, output: np.ndarray, names: list[str], hw: tuple[int, int]) -> pathlib.Path:
    """A v8-layout model whose output is `output` ([4+nc, N], input pixels) for any input: known boxes in, known out."""
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["mean"], keepdims=1),
        helper.make_node("Reshape", ["mean", "b11"], ["m"]),
        helper.make_node("Mul", ["m", "zero"], ["z"]),
        helper.make_node("Add", ["z", "const"], ["output0"]),
    ]
    inits = [
        numpy_helper.from_array(output[None].astype(np.float32), "const"),
        numpy_helper.from_array(np.array([-1, 1, 1], np.int64), "b11"),
        numpy_helper.from_array(np.zeros(1, np.float32), "zero"),
    ]
    graph = helper.make_graph(
        nodes,
        "const_v8",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, hw[0], hw[1]])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, ["batch", *output.shape])],
        initializer=inits,
    )
    return _save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), path, names)


def write_card(models_dir: pathlib.Path, **fields: object) -> ModelCard:
    """Write a card (defaults: a letterbox yolov8 model named `tiny`) into `models_dir` and return it."""
    base: dict[str, object] = {
        "name": "tiny",
        "file": "tiny.onnx",
        "format": "yolov8",
        "input_size": [320, 320],
        "preprocess": "letterbox",
        "dynamic_batch": True,
        "labels": {"person": "person"},
        "source": Source(package="test", licence="test"),
    }
    card = ModelCard.model_validate({**base, **fields})
    dump_card(card, models_dir / f"{card.name}.yaml")
    return card
