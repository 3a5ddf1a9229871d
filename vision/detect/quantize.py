"""Static int8 QDQ quantisation of a detector (onnxruntime.quantization), calibrated on real frames.

Only convolutions are quantised (per-channel int8 weights, uint8 activations). The head convolutions — those from
which the graph output is reachable without passing another Conv — stay float, and so does any decode step after
them (sigmoid/exp/grid/anchors): box coordinates in pixels do not survive an 8-bit activation scale. The stem
convolutions (those reading the image itself) stay float too (`float_stem`): with 3 input channels an int8
convolution is an im2col GEMM of depth 27 that ONNX Runtime runs ~2.3x slower than its float kernel, on the
largest feature map of the network, and the first layer is the one quantisation hurts most.

`quantize_file` writes the int8 copy of a model and measures its agreement with the fp32 model on held-aside frames
(`vision.detect.compare`: boxes matched one-to-one at IoU >= 0.5 with the same class, over the larger box count).
The `quantize` build recipe (`vision.detect.build`) uses it with frames of the sample clip and refuses a copy below
the recipe's `min_agreement`; `quantize_model` is the ad-hoc `safewatch models quantize NAME`.
"""

from __future__ import annotations

import logging
import os
import pathlib
import statistics
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import onnx
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

from vision.detect.card import ModelCard, dump_card, load_card
from vision.detect.compare import Agreement, agreement
from vision.detect.detector import Detector, DetectorOptions
from vision.detect.errors import BuildError, ImageError
from vision.digest import sha256_file
from vision.types import FloatArray, ImageArray

log = logging.getLogger(__name__)


class _FrameReader(CalibrationDataReader):  # type: ignore[misc]
    def __init__(self, detector: Detector, frames: Sequence[ImageArray]) -> None:
        self._name = detector.io.input_name
        self._blobs: Iterator[FloatArray] = (b for f in frames for b, _, _ in detector.prepare([f]))

    def get_next(self) -> dict[str, FloatArray] | None:
        blob = next(self._blobs, None)
        return None if blob is None else {self._name: blob}


def head_convs(model: onnx.ModelProto) -> list[str]:
    """Conv nodes from which a graph output is reachable without passing through another Conv."""
    producer = {out: node for node in model.graph.node for out in node.output}
    found: list[str] = []
    seen: set[str] = set()
    stack = [o.name for o in model.graph.output]
    while stack:
        tensor = stack.pop()
        node = producer.get(tensor)
        if node is None or node.name in seen:
            continue
        seen.add(node.name)
        if node.op_type == "Conv":
            found.append(node.name)
        else:
            stack.extend(node.input)
    return sorted(found)


_MONOTONE = frozenset({"LeakyRelu", "Relu"})


def float_stem(model: onnx.ModelProto) -> list[str]:
    """The Conv nodes that read the graph input (kept float), after reordering `Conv → LeakyRelu → MaxPool` behind
    each of them into `Conv → MaxPool → LeakyRelu` in place. The two orders give bit-identical outputs (a
    non-decreasing activation commutes with a max, and float rounding is monotone); the reorder matters because
    the int8 part starts at the activation: ONNX Runtime moves a quantisation up across a MaxPool but not across an
    activation, so in the original order the first pooling would run on uint8 in NCHW layout (a kernel ~16x slower
    than the float NCHWc one), in this order on float before quantisation."""
    graph = model.graph
    inputs = {i.name for i in graph.input}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    stem = [n for n in graph.node if n.op_type == "Conv" and n.input and n.input[0] in inputs]
    for conv in stem:
        after = consumers.get(conv.output[0], [])
        act = after[0] if len(after) == 1 and after[0].op_type in _MONOTONE else None
        pooled = consumers.get(act.output[0], []) if act is not None else []
        if act is None or len(pooled) != 1 or pooled[0].op_type != "MaxPool":
            continue
        pool = pooled[0]
        conv_out, act_out, pool_out = conv.output[0], act.output[0], pool.output[0]
        pool.input[0], pool.output[0] = conv_out, act_out
        act.input[0], act.output[0] = act_out, pool_out
        nodes = list(graph.node)
        i, j = nodes.index(act), nodes.index(pool)
        nodes[i], nodes[j] = nodes[j], nodes[i]  # keep the node list topologically sorted
        del graph.node[:]
        graph.node.extend(nodes)
    return [n.name for n in stem]


@dataclass(frozen=True, slots=True)
class QuantReport:
    card: ModelCard
    agreement: Agreement
    fp32_ms: float
    int8_ms: float


def frames_at(video: pathlib.Path, indices: Sequence[int]) -> dict[int, ImageArray]:
    """The RGB frames of `video` at the given decode indices, in one pass."""
    import av  # local: only calibration decodes video here

    wanted, out = set(indices), {}
    try:
        with av.open(str(video)) as container:
            for i, frame in enumerate(container.decode(video=0)):
                if i in wanted:
                    out[i] = np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8)
                    if len(out) == len(wanted):
                        break
    except (OSError, av.FFmpegError) as exc:
        raise ImageError(f"{video}: cannot decode: {exc}") from None
    missing = sorted(wanted - set(out))
    if missing:
        raise ImageError(f"{video}: has no frames at {missing[:5]}{'…' if len(missing) > 5 else ''}")
    return out


def quantize_file(
    fp32: Detector, out: pathlib.Path, calibration: Sequence[ImageArray], evaluation: Sequence[ImageArray],
    *, iou: float = 0.5,
) -> Agreement:  # fmt: skip
    """Write the static int8 QDQ copy of `fp32`'s model to `out` (calibrated on `calibration`); its agreement with
    `fp32` on `evaluation` (frames the calibration has not seen)."""
    model = onnx.load(str(fp32.path), load_external_data=False)
    heads = set(head_convs(model))
    exclude = [n.name for n in model.graph.node if n.name in heads]
    exclude += [name for name in float_stem(model) if name and name not in heads]
    unnamed = [n for n in model.graph.node if n.op_type == "Conv" and not n.name]
    if unnamed:
        log.warning("%d Conv nodes have no name; they cannot be excluded and may be quantised", len(unnamed))
    quantize_static(
        model,
        str(out),
        _FrameReader(fp32, calibration),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        per_channel=True,
        op_types_to_quantize=["Conv"],
        nodes_to_exclude=exclude,
    )
    int8_card = fp32.card.model_copy(update={"file": out.name, "sha256": None, "build": None})
    int8 = Detector(int8_card, out.parent, fp32.options)
    return agreement(fp32.detect_batch(list(evaluation)), int8.detect_batch(list(evaluation)), iou)


def build_int8(
    base: ModelCard,
    out: pathlib.Path,
    *,
    models_dir: pathlib.Path,
    video: pathlib.Path,
    calibration: Sequence[int],
    evaluation: Sequence[int],
    min_agreement: float,
    iou: float = 0.5,
) -> Agreement:
    """The `quantize` build recipe: the int8 copy of `base` (built in `models_dir`) calibrated on the frames of `video`
    at the `calibration` indices, checked on the held-aside `evaluation` frames. Written to `out` only when the
    agreement is at least `min_agreement`; otherwise a BuildError and nothing is written (fp32 stays in use)."""
    shared = sorted(set(calibration) & set(evaluation))
    if shared:
        raise BuildError(f"{out.name}: evaluation frames must be held aside from calibration; both use {shared[:5]}")
    fp32 = Detector(base, models_dir)
    frames = frames_at(video, [*calibration, *evaluation])
    tmp = out.with_name(f".{out.stem}.tmp.onnx")
    try:
        agree = quantize_file(fp32, tmp, [frames[i] for i in calibration], [frames[i] for i in evaluation], iou=iou)
        if agree.matched_rate < min_agreement:
            raise BuildError(
                f"{out.name}: int8 agrees with {base.name} on only {describe(agree, iou)} of the boxes on "
                f"{len(evaluation)} held-aside frames of {video.name}, below min_agreement {min_agreement:.0%}: "
                f"not written, {base.name} (fp32) stays in use"
            )
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    log.info(
        "%s: agreement with %s %s on %d held-aside frames", out.name, base.name, describe(agree, iou), len(evaluation)
    )
    return agree


def describe(agree: Agreement, iou: float = 0.5) -> str:
    """`282/285 boxes (98.9%) at IoU >= 0.5, same class`."""
    total = max(agree.reference_boxes, agree.other_boxes)
    return f"{agree.matched}/{total} boxes ({agree.matched_rate:.1%}) at IoU >= {iou:g}, same class"


def _median_ms(detector: Detector, frames: Sequence[ImageArray], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        for frame in frames:
            start = time.perf_counter()
            detector.detect(frame)
            times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def quantize_model(
    card: ModelCard,
    models_dir: pathlib.Path,
    calibration: Sequence[ImageArray],
    evaluation: Sequence[ImageArray],
    *,
    options: DetectorOptions | None = None,
    repeats: int = 2,
) -> QuantReport:
    """Write `<name>-int8.onnx` and its card next to the fp32 model; report agreement and latency of both."""
    name = f"{card.name}-int8"
    out = models_dir / f"{name}.onnx"
    existing = models_dir / f"{name}.yaml"
    if existing.is_file() and load_card(existing).build is not None:
        raise BuildError(f"{existing} has a build recipe: `safewatch models build {name}` makes that model")
    fp32 = Detector(card, models_dir, options)
    agree = quantize_file(fp32, out, calibration, evaluation)
    int8_card = card.model_copy(
        update={
            "name": name,
            "file": out.name,
            "default": False,
            "variant_of": card.name,
            "precision": "int8",
            "agreement": round(agree.matched_rate, 4),
            "sha256": sha256_file(out),
            "build": None,
            "notes": f"static int8 QDQ of {card.name} ({len(calibration)} calibration frames); head convs float",
        }
    )
    int8 = Detector(int8_card, models_dir, options)
    fp32_ms = _median_ms(fp32, evaluation, repeats)
    int8_ms = _median_ms(int8, evaluation, repeats)
    notes = (
        f"{int8_card.notes}. vs fp32 on {len(evaluation)} frames: matched {agree.matched_rate:.1%} at IoU 0.5, "
        f"mean |conf delta| {agree.mean_confidence_delta:.3f}; median latency {int8_ms:.1f} ms vs {fp32_ms:.1f} ms"
    )
    int8_card = int8_card.model_copy(update={"notes": notes})
    dump_card(int8_card, models_dir / f"{name}.yaml")
    return QuantReport(int8_card, agree, fp32_ms, int8_ms)
