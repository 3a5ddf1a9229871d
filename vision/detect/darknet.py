"""Darknet cfg + weights → ONNX, built directly with `onnx.helper` (no torch).

Supported layers: convolutional (+batch_normalize, leaky/linear), maxpool (incl. size 2 stride 1 with Darknet's
asymmetric right/bottom padding), route (concat), upsample (nearest), shortcut (add), yolo. BatchNorm is folded into
the convolution with Darknet's own formula `gamma * (x - mean) / (sqrt(var) + 1e-6) + beta`.

The YOLO heads are decoded inside the graph, so the output is `[B, N, 5+nc]` (layout `darknet-yolo`): cx, cy, w, h in
input pixels, objectness, then `objectness * sigmoid(class logit)` per class — the semantics of OpenCV's Darknet
reader, whose rows hold the same values with the box normalised to [0, 1]. The batch dimension is dynamic; H and W
are fixed to the cfg's width/height because the anchors and grids are baked in.

The serialised model is byte-reproducible: fixed producer fields and opset, no timestamps, deterministic names.
"""

from __future__ import annotations

import pathlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import onnx
from onnx import TensorProto, helper, numpy_helper

from vision.detect.darknet_cfg import Section, WeightReader, parse_cfg, read_names
from vision.detect.errors import ModelError

PRODUCER = "safewatch-darknet2onnx"
PRODUCER_VERSION = "1"
OPSET = 17
IR_VERSION = 8
INPUT_NAME = "images"
OUTPUT_NAME = "output0"


@dataclass
class _Tensor:
    name: str
    channels: int
    height: int
    width: int


class _GraphBuilder:
    def __init__(self, net: Section, weights: WeightReader) -> None:
        self.width = net.get_int("width")
        self.height = net.get_int("height")
        self.channels = net.get_int("channels", 3)
        self.weights = weights
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.layers: list[_Tensor] = []
        self.heads: list[str] = []
        self._count = 0

    def _name(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def _const(self, hint: str, array: npt.NDArray[Any]) -> str:
        name = self._name(hint)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def _node(self, op: str, inputs: list[str], hint: str, **attrs: Any) -> str:
        out = self._name(hint)
        self.nodes.append(helper.make_node(op, inputs, [out], name=out, **attrs))
        return out

    def prev(self) -> _Tensor:
        if self.layers:
            return self.layers[-1]
        return _Tensor(INPUT_NAME, self.channels, self.height, self.width)

    def conv(self, s: Section) -> _Tensor:
        src = self.prev()
        filters, size, stride = s.get_int("filters"), s.get_int("size"), s.get_int("stride", 1)
        pad = size // 2 if s.get_int("pad", 0) else s.get_int("padding", 0)
        if s.get_int("groups", 1) != 1:
            raise ModelError(f"cfg line {s.line}: grouped convolutions are not supported")
        bias = self.weights.take(filters)
        if s.get_int("batch_normalize", 0):
            gamma, mean, var = (self.weights.take(filters) for _ in range(3))
            scale = (gamma / (np.sqrt(np.maximum(var, 0)) + np.float32(1e-6))).astype(np.float32)
            bias = bias - mean * scale
        else:
            scale = np.ones(filters, dtype=np.float32)
        kernel = self.weights.take(filters * src.channels * size * size).reshape(filters, src.channels, size, size)
        kernel = (kernel * scale[:, None, None, None]).astype(np.float32)
        w, b = self._const("conv_w", kernel), self._const("conv_b", bias.astype(np.float32))
        out = self._node("Conv", [src.name, w, b], "conv", kernel_shape=[size, size], strides=[stride, stride],
                         pads=[pad, pad, pad, pad])  # fmt: skip
        activation = s.get_str("activation", "linear")
        if activation == "leaky":
            out = self._node("LeakyRelu", [out], "leaky", alpha=0.1)
        elif activation != "linear":
            raise ModelError(f"cfg line {s.line}: activation {activation!r} is not supported (leaky, linear)")
        h = (src.height + 2 * pad - size) // stride + 1
        w_ = (src.width + 2 * pad - size) // stride + 1
        return _Tensor(out, filters, h, w_)

    def maxpool(self, s: Section) -> _Tensor:
        src = self.prev()
        size, stride = s.get_int("size", s.get_int("stride", 1)), s.get_int("stride", 1)
        padding = s.get_int("padding", size - 1)
        begin, end = padding // 2, padding - padding // 2  # Darknet offsets by -padding/2: the rest goes right/bottom
        out = self._node("MaxPool", [src.name], "maxpool", kernel_shape=[size, size], strides=[stride, stride],
                         pads=[begin, begin, end, end])  # fmt: skip
        h = (src.height + padding - size) // stride + 1
        w = (src.width + padding - size) // stride + 1
        return _Tensor(out, src.channels, h, w)

    def _layer(self, index: int, current: int, s: Section) -> _Tensor:
        absolute = index if index >= 0 else current + index
        if not 0 <= absolute < current:
            raise ModelError(f"cfg line {s.line}: layer reference {index} is out of range")
        return self.layers[absolute]

    def route(self, s: Section) -> _Tensor:
        if "groups" in s.options:
            raise ModelError(f"cfg line {s.line}: route groups are not supported")
        parts = [self._layer(i, len(self.layers), s) for i in s.get_ints("layers")]
        if len(parts) == 1:
            return parts[0]
        if len({(p.height, p.width) for p in parts}) != 1:
            raise ModelError(f"cfg line {s.line}: route joins layers of different spatial sizes")
        out = self._node("Concat", [p.name for p in parts], "route", axis=1)
        return _Tensor(out, sum(p.channels for p in parts), parts[0].height, parts[0].width)

    def upsample(self, s: Section) -> _Tensor:
        src, stride = self.prev(), s.get_int("stride", 2)
        scales = self._const("scales", np.array([1, 1, stride, stride], dtype=np.float32))
        out = self._node("Resize", [src.name, "", scales], "upsample", mode="nearest",
                         coordinate_transformation_mode="asymmetric", nearest_mode="floor")  # fmt: skip
        return _Tensor(out, src.channels, src.height * stride, src.width * stride)

    def shortcut(self, s: Section) -> _Tensor:
        src, other = self.prev(), self._layer(s.get_int("from"), len(self.layers), s)
        if s.get_str("activation", "linear") != "linear":
            raise ModelError(f"cfg line {s.line}: shortcut activation must be linear")
        out = self._node("Add", [src.name, other.name], "shortcut")
        return _Tensor(out, src.channels, src.height, src.width)

    def yolo(self, s: Section) -> _Tensor:
        src, nc = self.prev(), s.get_int("classes")
        mask = s.get_ints("mask")
        anchors = np.array([float(v) for v in s.get_str("anchors").split(",")], dtype=np.float32).reshape(-1, 2)
        if s.get_float("scale_x_y", 1.0) != 1.0 or s.get_str("new_coords", "0") != "0":
            raise ModelError(f"cfg line {s.line}: scale_x_y / new_coords YOLO heads are not supported")
        a, h, w, k = len(mask), src.height, src.width, 5 + nc
        if src.channels != a * k:
            raise ModelError(f"cfg line {s.line}: yolo expects {a * k} channels, the previous layer has {src.channels}")
        t = self._node("Reshape", [src.name, self._const("shape", np.array([-1, a, k, h, w], np.int64))], "reshape")
        t = self._node("Transpose", [t], "transpose", perm=[0, 1, 3, 4, 2])
        t = self._node("Reshape", [t, self._const("shape", np.array([-1, a * h * w, k], np.int64))], "rows")
        sig = self._node("Sigmoid", [t], "sigmoid")
        gy, gx = np.meshgrid(np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32), indexing="ij")
        grid = np.broadcast_to(np.stack([gx, gy], -1)[None], (a, h, w, 2)).reshape(1, -1, 2)
        anchor = np.broadcast_to(anchors[mask][:, None, None, :], (a, h, w, 2)).reshape(1, -1, 2)
        stride = np.array([self.width / w, self.height / h], dtype=np.float32)
        xy = self._node("Add", [self._slice(sig, 0, 2), self._const("grid", grid.astype(np.float32))], "xy")
        xy = self._node("Mul", [xy, self._const("stride", stride)], "xy_px")
        wh = self._node("Exp", [self._slice(t, 2, 4)], "wh")
        wh = self._node("Mul", [wh, self._const("anchor", anchor.astype(np.float32))], "wh_px")
        obj = self._slice(sig, 4, 5)
        cls = self._node("Mul", [self._slice(sig, 5, k), obj], "cls")
        self.heads.append(self._node("Concat", [xy, wh, obj, cls], "head", axis=2))
        return src

    def _slice(self, tensor: str, start: int, end: int) -> str:
        starts = self._const("start", np.array([start], np.int64))
        ends = self._const("end", np.array([end], np.int64))
        axes = self._const("axes", np.array([2], np.int64))
        return self._node("Slice", [tensor, starts, ends, axes], "slice")


_LAYERS = {
    "convolutional": _GraphBuilder.conv,
    "maxpool": _GraphBuilder.maxpool,
    "route": _GraphBuilder.route,
    "upsample": _GraphBuilder.upsample,
    "shortcut": _GraphBuilder.shortcut,
    "yolo": _GraphBuilder.yolo,
}


def convert_darknet(cfg: pathlib.Path, weights: pathlib.Path, names: pathlib.Path) -> onnx.ModelProto:
    """Convert a Darknet YOLO (v3/v3-tiny style) to an ONNX model with the `darknet-yolo` output layout."""
    sections = parse_cfg(cfg.read_text(encoding="utf-8"))
    builder = _GraphBuilder(sections[0], WeightReader(weights))
    for s in sections[1:]:
        handler = _LAYERS.get(s.type)
        if handler is None:
            raise ModelError(f"{cfg}: line {s.line}: layer [{s.type}] is not supported")
        builder.layers.append(handler(builder, s))
    if builder.weights.remaining:
        raise ModelError(f"{weights}: {builder.weights.remaining} values left over; cfg and weights do not match")
    if not builder.heads:
        raise ModelError(f"{cfg}: no [yolo] layer")
    class_names = read_names(names)
    output = helper.make_node("Concat", builder.heads, [OUTPUT_NAME], name="detections", axis=1)
    nc = 5 + len(class_names)
    graph = helper.make_graph(
        [*builder.nodes, output],
        "darknet_yolo",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["batch", 3, builder.height, builder.width])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["batch", "anchors", nc])],
        initializer=builder.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name=PRODUCER,
                              producer_version=PRODUCER_VERSION, ir_version=IR_VERSION)  # fmt: skip
    metadata = {
        "names": repr(dict(enumerate(class_names))),
        "imgsz": repr([builder.height, builder.width]),
        "stride": "32",
        "task": "detect",
        "layout": "darknet-yolo",
        "source": f"{cfg.name} + {weights.name}",
    }
    helper.set_model_props(model, metadata)
    onnx.checker.check_model(model)
    return model
