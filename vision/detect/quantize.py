"""Static int8 QDQ quantisation of a detector (onnxruntime.quantization), calibrated on real frames.

Only convolutions are quantised (per-channel int8 weights, uint8 activations). The head convolutions — those from
which the graph output is reachable without passing another Conv — stay float, and so does any decode step after
them (sigmoid/exp/grid/anchors): box coordinates in pixels do not survive an 8-bit activation scale.
"""

from __future__ import annotations

import logging
import pathlib
import statistics
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import onnx
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

from vision.detect.card import ModelCard, dump_card
from vision.detect.compare import Agreement, agreement
from vision.detect.detector import Detector, DetectorOptions
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


@dataclass(frozen=True, slots=True)
class QuantReport:
    card: ModelCard
    agreement: Agreement
    fp32_ms: float
    int8_ms: float


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
    fp32 = Detector(card, models_dir, options)
    name = f"{card.name}-int8"
    out = models_dir / f"{name}.onnx"
    model = onnx.load(str(fp32.path), load_external_data=False)
    exclude = [n.name for n in model.graph.node if n.name in set(head_convs(model))]
    unnamed = [n for n in model.graph.node if n.op_type == "Conv" and not n.name]
    if unnamed:
        log.warning("%d Conv nodes have no name; they cannot be excluded and may be quantised", len(unnamed))
    quantize_static(
        str(fp32.path),
        str(out),
        _FrameReader(fp32, calibration),
        quant_format=QuantFormat.QDQ,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        per_channel=True,
        op_types_to_quantize=["Conv"],
        nodes_to_exclude=exclude,
    )
    int8_card = card.model_copy(
        update={
            "name": name,
            "file": out.name,
            "default": False,
            "sha256": sha256_file(out),
            "build": None,
            "notes": f"static int8 QDQ of {card.name} ({len(calibration)} calibration frames); head convs float",
        }
    )
    int8 = Detector(int8_card, models_dir, options)
    agree = agreement(fp32.detect_batch(list(evaluation)), int8.detect_batch(list(evaluation)))
    fp32_ms = _median_ms(fp32, evaluation, repeats)
    int8_ms = _median_ms(int8, evaluation, repeats)
    notes = (
        f"{int8_card.notes}. vs fp32 on {len(evaluation)} frames: matched {agree.matched_rate:.1%} at IoU 0.5, "
        f"mean |conf delta| {agree.mean_confidence_delta:.3f}; median latency {int8_ms:.1f} ms vs {fp32_ms:.1f} ms"
    )
    int8_card = int8_card.model_copy(update={"notes": notes})
    dump_card(int8_card, models_dir / f"{name}.yaml")
    return QuantReport(int8_card, agree, fp32_ms, int8_ms)
