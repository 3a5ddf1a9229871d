"""ONNX Runtime sessions: execution-provider choice, thread counts, and what a model file says about itself."""

from __future__ import annotations

import ast
import logging
import pathlib
from dataclasses import dataclass
from typing import Literal

import onnxruntime as ort
from pydantic import BaseModel, ConfigDict, Field

from vision.detect.errors import ModelError

log = logging.getLogger(__name__)

# Preference order when providers="auto": accelerators first, CPU always last.
AUTO_PROVIDERS = (
    "TensorrtExecutionProvider",
    "CUDAExecutionProvider",
    "OpenVINOExecutionProvider",
    "CoreMLExecutionProvider",
    "CPUExecutionProvider",
)


class SessionConfig(BaseModel):
    """How to run a model: execution providers and ONNX Runtime thread pools (0 = ORT's default)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    providers: tuple[str, ...] | Literal["auto"] = Field(
        default=("CPUExecutionProvider",), description="ONNX Runtime execution providers in order, or 'auto'"
    )
    intra_op_threads: int = Field(default=0, ge=0, description="threads inside one operator (0: ORT default)")
    inter_op_threads: int = Field(default=0, ge=0, description="threads across operators (0: ORT default)")
    spin: bool = Field(
        default=False,
        description="let ORT's worker threads busy-wait between runs (lower latency on an idle machine; on a "
        "busy one they steal the cores that decode, tracking and the other cameras need)",
    )


def resolve_providers(wanted: tuple[str, ...] | Literal["auto"]) -> list[str]:
    available = ort.get_available_providers()
    if wanted == "auto":
        return [p for p in AUTO_PROVIDERS if p in available]
    missing = [p for p in wanted if p not in available]
    if missing:
        log.warning("execution providers not available, skipped: %s (available: %s)", missing, available)
    chosen = [p for p in wanted if p in available]
    return chosen or ["CPUExecutionProvider"]


def open_session(path: pathlib.Path, config: SessionConfig) -> ort.InferenceSession:
    if not path.is_file():
        raise ModelError(f"{path}: model file not found (build it with `safewatch models build`)")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = config.intra_op_threads
    options.inter_op_num_threads = config.inter_op_threads
    options.log_severity_level = 3
    spin = "1" if config.spin else "0"
    options.add_session_config_entry("session.intra_op.allow_spinning", spin)
    options.add_session_config_entry("session.inter_op.allow_spinning", spin)
    try:
        return ort.InferenceSession(str(path), options, providers=resolve_providers(config.providers))
    except Exception as exc:  # ORT raises its own exception types for every kind of bad file
        raise ModelError(f"{path}: not a loadable ONNX model: {exc}") from exc


Dim = int | None


@dataclass(frozen=True, slots=True)
class ModelIO:
    """Input and output of a single-input detector: shapes with None for dynamic dims, and the `names` metadata."""

    input_name: str
    input_shape: tuple[Dim, Dim, Dim, Dim]
    output_shape: tuple[Dim, ...]
    names: list[str] | None
    imgsz: tuple[int, int] | None = None  # metadata `imgsz` ([h, w] or an int), when present

    @property
    def dynamic_batch(self) -> bool:
        return self.input_shape[0] is None

    @property
    def dynamic_hw(self) -> bool:
        return self.input_shape[2] is None or self.input_shape[3] is None


def _dims(shape: list[object]) -> tuple[Dim, ...]:
    return tuple(d if isinstance(d, int) and d > 0 else None for d in shape)


def parse_names(raw: str) -> list[str]:
    """Ultralytics writes `names` as a Python dict literal `{0: 'person', ...}`; a list literal is accepted too."""
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError) as exc:
        raise ValueError(f"metadata `names` is not a dict/list literal: {raw[:80]!r}") from exc
    if isinstance(value, dict) and all(isinstance(k, int) for k in value):
        if sorted(value) != list(range(len(value))):
            raise ValueError("metadata `names` keys must be 0..nc-1")
        return [str(value[i]) for i in range(len(value))]
    if isinstance(value, list):
        return [str(v) for v in value]
    raise ValueError(f"metadata `names` must map class index to name, got {type(value).__name__}")


def inspect_session(session: ort.InferenceSession, path: pathlib.Path) -> ModelIO:
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1:
        raise ModelError(f"{path}: expected one image input, found {len(inputs)}: {[i.name for i in inputs]}")
    shape = _dims(list(inputs[0].shape))
    if len(shape) != 4 or shape[1] != 3:
        raise ModelError(f"{path}: input {inputs[0].name!r} must be [B, 3, H, W], got {list(inputs[0].shape)}")
    if inputs[0].type != "tensor(float)":
        raise ModelError(f"{path}: input {inputs[0].name!r} must be float32, got {inputs[0].type}")
    meta = session.get_modelmeta().custom_metadata_map
    try:
        names = parse_names(meta["names"]) if "names" in meta else None
    except ValueError as exc:
        raise ModelError(f"{path}: {exc}") from exc
    in_shape = (shape[0], shape[1], shape[2], shape[3])
    return ModelIO(inputs[0].name, in_shape, _dims(list(outputs[0].shape)), names, _imgsz(meta.get("imgsz")))


def _imgsz(raw: str | None) -> tuple[int, int] | None:
    try:
        value = ast.literal_eval(raw) if raw else None
    except (ValueError, SyntaxError):
        return None
    if isinstance(value, int):
        return value, value
    if isinstance(value, list | tuple) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return int(value[0]), int(value[1])
    return None
