"""int8 variants: the `quantize` recipe (held-aside frames, the agreement gate) and the registry's precision choice."""

from __future__ import annotations

import pathlib
import shutil
from typing import Any

import pytest
from pydantic import ValidationError

from tests.vision.detect.helpers import DEFAULT, built_default_models_dir, make_v8_conv, write_card
from vision.detect.card import ModelCard, QuantizeBuild, load_card
from vision.detect.detector import DetectorOptions
from vision.detect.errors import BuildError, ModelError
from vision.detect.quantize import build_int8
from vision.detect.registry import ModelRegistry
from vision.detect.session import SessionConfig

ROOT = pathlib.Path(__file__).resolve().parents[3]
RECIPE: dict[str, Any] = {
    "kind": "quantize",
    "base": "tiny",
    "clip": "sample_media/vtest.mp4",
    "calibration": {"start": 0, "step": 10, "count": 4},
    "evaluation": {"start": 5, "step": 10, "count": 4},
}


def _models(tmp_path: pathlib.Path, *, agreement: float | None = 0.99, built: bool = True) -> pathlib.Path:
    """`tiny` and its int8 variant (any loadable file stands for the quantised one: the choice reads cards only)."""
    make_v8_conv(tmp_path / "tiny.onnx", ["person"])
    write_card(tmp_path, default=True)
    if built:
        shutil.copy(tmp_path / "tiny.onnx", tmp_path / "tiny-int8.onnx")
    write_card(tmp_path, name="tiny-int8", file="tiny-int8.onnx", default=True, variant_of="tiny", precision="int8",
               agreement=agreement, build=RECIPE)  # fmt: skip
    return tmp_path


def test_recipe_needs_held_aside_frames() -> None:
    QuantizeBuild.model_validate(RECIPE)
    with pytest.raises(ValidationError, match="held aside"):
        QuantizeBuild.model_validate({**RECIPE, "evaluation": {"start": 20, "step": 5, "count": 4}})  # 20, 30 shared


def test_a_quantize_build_is_an_int8_variant_of_its_base(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ValidationError, match="variant_of: tiny, precision: int8"):
        write_card(tmp_path, name="tiny-int8", file="tiny-int8.onnx", build=RECIPE)
    with pytest.raises(ValidationError, match="variant of itself"):
        write_card(tmp_path, variant_of="tiny")


@pytest.mark.parametrize(
    ("precision", "agreement", "built", "runs"),
    [
        ("auto", 0.99, True, "tiny-int8.onnx"),  # CPU only, built, agreement above the recipe's 95 %
        ("auto", 0.90, True, "tiny.onnx"),  # below the gate
        ("auto", None, True, "tiny.onnx"),  # no agreement recorded
        ("auto", 0.99, False, "tiny.onnx"),  # not built
        ("fp32", 0.99, True, "tiny.onnx"),
        ("int8", 0.90, True, "tiny-int8.onnx"),  # asked for explicitly
    ],
)
def test_precision_choice(
    tmp_path: pathlib.Path, precision: Any, agreement: float | None, built: bool, runs: str
) -> None:
    reg = ModelRegistry(_models(tmp_path, agreement=agreement, built=built), precision=precision)
    det = reg.detector("tiny")
    assert det.path.name == runs and det.name == "tiny", "the detector keeps the model's name"
    assert reg.runtime_card("tiny").file == runs


def test_variants_are_never_chosen_for_a_label(tmp_path: pathlib.Path) -> None:
    reg = ModelRegistry(_models(tmp_path))
    assert reg.providers_of("person") == ["tiny"] and reg.default_model("person") == "tiny"
    assert reg.int8_variant("tiny") is not None and reg.int8_variant("tiny-int8") is None


def test_int8_when_not_built_is_an_error(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ModelError, match="not built"):
        ModelRegistry(_models(tmp_path, built=False), precision="int8").detector("tiny")


def test_auto_keeps_fp32_unless_the_session_is_cpu_only(tmp_path: pathlib.Path) -> None:
    reg = ModelRegistry(_models(tmp_path))
    other = DetectorOptions(session=SessionConfig(providers=("AzureExecutionProvider", "CPUExecutionProvider")))
    assert reg.runtime_card("tiny", other).file == "tiny.onnx"  # (available here; stands for any non-CPU provider)
    auto = DetectorOptions(session=SessionConfig(providers="auto"))  # no accelerator on this machine
    assert reg.runtime_card("tiny", auto).file == "tiny-int8.onnx"


def test_committed_int8_card_is_the_default_models_variant() -> None:
    """The int8 copy of the default model, a default model itself (`make models` builds it; `auto` runs it on CPU)."""
    card = load_card(ROOT / "models" / f"{DEFAULT}-int8.yaml")
    assert isinstance(card.build, QuantizeBuild) and card.build.min_agreement >= 0.95
    assert card.variant_of == DEFAULT and card.default and card.agreement is not None
    assert card.agreement >= card.build.min_agreement
    assert not set(card.build.calibration.indices) & set(card.build.evaluation.indices)


@pytest.mark.slow
def test_build_int8_writes_only_above_the_gate(tmp_path: pathlib.Path, sample_clip: pathlib.Path) -> None:
    models = built_default_models_dir()
    base: ModelCard = ModelRegistry(models).card(DEFAULT)
    shutil.copy(models / base.file, tmp_path / base.file)
    out = tmp_path / f"{DEFAULT}-int8.onnx"
    frames = {"calibration": range(0, 400, 40), "evaluation": range(400, 795, 10)}  # 10 and 40 frames
    with pytest.raises(BuildError, match="below min_agreement 100%: not written"):
        build_int8(base, out, models_dir=tmp_path, video=sample_clip, min_agreement=1.0, **frames)  # type: ignore[arg-type]
    assert not out.exists() and list(tmp_path.glob(".*")) == []
    agree = build_int8(base, out, models_dir=tmp_path, video=sample_clip, min_agreement=0.95, **frames)  # type: ignore[arg-type]
    assert agree.matched_rate >= 0.95 and out.stat().st_size < (tmp_path / base.file).stat().st_size / 2
    with pytest.raises(BuildError, match="held aside"):
        build_int8(base, out, models_dir=tmp_path, video=sample_clip, calibration=[0, 10], evaluation=[10, 20],
                   min_agreement=0.95)  # fmt: skip
