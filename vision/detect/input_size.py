"""A fixed-input model at another input size, for running it on small crops (`vision/detect/regions.py`).

A model with dynamic H/W needs nothing: its own session takes any stride-aligned size. A `darknet-yolo` model built
by `vision/detect/darknet.py` has H and W fixed because its YOLO heads are decoded in the graph with the grids baked
in; its convolutions are size-independent, so the same graph at another stride-aligned size only needs the head
constants redone: the two Reshape shapes per head (`[-1, a, k, h, w]` and `[-1, a*h*w, k]`), the cell grid and the
per-cell anchors (`[1, a*h*w, 2]` each). The box stride in pixels stays the same. `resize_input` does exactly that
and nothing else, on the fp32 graph and on its QDQ-quantised variant (onnxruntime's quantiser stores those constants
as `<name>_quantized` with a scale and a zero point; they are re-quantised with the same ones); anything it does not
recognise is a `ModelError`, so callers fall back to the model's own size.
"""

from __future__ import annotations

import logging
import pathlib
import re
from collections.abc import Callable

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

from vision.detect.errors import ModelError
from vision.detect.session import SessionConfig, resolve_providers

log = logging.getLogger(__name__)


def _grid_hw(grid: np.ndarray) -> tuple[int, int, int]:
    """(anchors, h, w) of a baked-in `[1, a*h*w, 2]` cell grid (x, y per row)."""
    w, h = int(grid[0, :, 0].max()) + 1, int(grid[0, :, 1].max()) + 1
    n = grid.shape[1]
    if n % (h * w):
        raise ModelError(f"grid of {n} rows is not anchors x {h} x {w}")
    return n // (h * w), h, w


def _new_grid(a: int, h: int, w: int) -> np.ndarray:
    gy, gx = np.meshgrid(np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32), indexing="ij")
    return np.ascontiguousarray(np.broadcast_to(np.stack([gx, gy], -1)[None], (a, h, w, 2)).reshape(1, -1, 2))


def _new_anchor(anchor: np.ndarray, a: int, h: int, w: int, nh: int, nw: int) -> np.ndarray:
    per = anchor.reshape(a, h * w, 2)[:, 0, :]
    return np.ascontiguousarray(np.broadcast_to(per[:, None, None, :], (a, nh, nw, 2)).reshape(1, -1, 2))


def _scaled(n: int, new: int, old: int) -> int:
    if (n * new) % old:
        raise ModelError(f"a {n}-cell head does not divide evenly at input {new} (from {old})")
    return n * new // old


def resize_input(model: onnx.ModelProto, hw: tuple[int, int]) -> onnx.ModelProto:
    """A copy of a `darknet-yolo` graph (from vision/detect/darknet.py, fp32 or its QDQ-quantised variant, whose
    grid and anchor constants are `<name>_quantized` with a `_scale` and `_zero_point`) taking `hw` (H, W) input."""
    try:
        return _resize(model, hw)
    except (IndexError, KeyError, ValueError) as exc:  # a graph of another shape than expected
        raise ModelError(f"not a darknet-yolo graph this can resize: {exc}") from exc


def _resize(model: onnx.ModelProto, hw: tuple[int, int]) -> onnx.ModelProto:
    out = onnx.ModelProto()
    out.CopyFrom(model)
    graph = out.graph
    dims = graph.input[0].type.tensor_type.shape.dim
    if len(dims) != 4 or not dims[2].dim_value or not dims[3].dim_value:
        raise ModelError("input must be [B, 3, H, W] with fixed H and W")
    old, new = (dims[2].dim_value, dims[3].dim_value), hw
    inits = {t.name: t for t in graph.initializer}
    grids: dict[int, tuple[int, int, int]] = {}  # rows → (a, h, w) of the head with that many rows
    changed = 0
    for name, tensor in inits.items():
        if _GRID.match(name):
            grid, requantise = _values(inits, name)
            a, h, w = _grid_hw(grid)
            grids[grid.shape[1]] = (a, h, w)
            fresh = _new_grid(a, _scaled(h, new[0], old[0]), _scaled(w, new[1], old[1]))
            tensor.CopyFrom(numpy_helper.from_array(requantise(fresh), name))
            changed += 1
    for name, tensor in inits.items():
        value = numpy_helper.to_array(tensor)
        if _ANCHOR.match(name) and value.ndim == 3 and value.shape[1] in grids:
            a, h, w = grids[value.shape[1]]
            nh, nw = _scaled(h, new[0], old[0]), _scaled(w, new[1], old[1])
            tensor.CopyFrom(numpy_helper.from_array(_new_anchor(value, a, h, w, nh, nw), name))
            changed += 1
        elif _SHAPE.match(name) and value.dtype == np.int64 and value.ndim == 1:
            changed += _reshape(tensor, value, grids, old, hw)
    if not grids or changed != 4 * len(grids):
        raise ModelError(f"not a darknet-yolo graph this can resize ({len(grids)} heads, {changed} constants)")
    dims[2].dim_value, dims[3].dim_value = new
    del graph.value_info[:]  # inferred shapes of the old size, if a tool (a quantiser) stored any
    for output in graph.output:
        for i, dim in enumerate(output.type.tensor_type.shape.dim):
            if i == 1 and dim.dim_value:
                dim.dim_param = "anchors"  # the row count follows the input size
    for prop in out.metadata_props:
        if prop.key == "imgsz":
            prop.value = repr([new[0], new[1]])
    return out


_GRID = re.compile(r"^grid_\d+(_quantized)?$")
_ANCHOR = re.compile(r"^anchor_\d+(_quantized)?$")
_SHAPE = re.compile(r"^shape_\d+$")


def _values(inits: dict[str, onnx.TensorProto], name: str) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    """A constant's float values, and how to store new float values the way it is stored (quantised or not)."""
    raw = numpy_helper.to_array(inits[name])
    if not name.endswith("_quantized"):
        return raw, lambda v: v.astype(raw.dtype)
    base = name.removesuffix("_quantized")
    scale = float(numpy_helper.to_array(inits[f"{base}_scale"]))
    zero = int(numpy_helper.to_array(inits[f"{base}_zero_point"]))
    info = np.iinfo(raw.dtype)
    values = ((raw.astype(np.float64) - zero) * scale).round().astype(np.float32)

    def requantise(v: np.ndarray) -> np.ndarray:
        return np.clip(np.round(v / scale) + zero, info.min, info.max).astype(raw.dtype)

    return values, requantise


def _reshape(
    tensor: onnx.TensorProto,
    value: np.ndarray,
    grids: dict[int, tuple[int, int, int]],
    old: tuple[int, int],
    new: tuple[int, int],
) -> int:
    heads = set(grids.values())
    if value.size == 5 and (int(value[1]), int(value[3]), int(value[4])) in heads:
        nh, nw = _scaled(int(value[3]), new[0], old[0]), _scaled(int(value[4]), new[1], old[1])
        fixed = np.array([value[0], value[1], value[2], nh, nw], dtype=np.int64)
    elif value.size == 3 and int(value[1]) in grids:
        a, h, w = grids[int(value[1])]
        fixed = np.array([value[0], a * _scaled(h, new[0], old[0]) * _scaled(w, new[1], old[1]), value[2]], np.int64)
    else:
        return 0
    tensor.CopyFrom(numpy_helper.from_array(fixed, tensor.name))
    return 1


def open_resized(path: pathlib.Path, hw: tuple[int, int], config: SessionConfig) -> ort.InferenceSession:
    """An ONNX Runtime session of the model at `path` with input size `hw` (ModelError when it cannot be)."""
    try:
        model = onnx.load(str(path))
    except Exception as exc:  # onnx raises DecodeError and friends
        raise ModelError(f"{path}: not a loadable ONNX model: {exc}") from exc
    resized = resize_input(model, hw)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = config.intra_op_threads
    options.inter_op_num_threads = config.inter_op_threads
    options.log_severity_level = 3
    spin = "1" if config.spin else "0"
    options.add_session_config_entry("session.intra_op.allow_spinning", spin)
    options.add_session_config_entry("session.inter_op.allow_spinning", spin)
    providers = resolve_providers(config.providers)
    try:
        session = ort.InferenceSession(resized.SerializeToString(), options, providers=providers)
    except Exception as exc:  # ORT raises its own exception types for a graph it cannot load
        raise ModelError(f"{path}: the graph at input {hw[0]}x{hw[1]} does not load: {exc}") from exc
    log.info("opened %s at input %dx%d for crops", path.name, hw[0], hw[1])
    return session
