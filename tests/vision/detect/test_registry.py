from __future__ import annotations

import pathlib

import pytest

from tests.vision.detect.helpers import make_v8_conv, write_card
from vision.detect.build import build_model
from vision.detect.card import ModelCard
from vision.detect.errors import BuildError, ModelError
from vision.detect.registry import ModelRegistry


@pytest.fixture
def models(tmp_path: pathlib.Path) -> pathlib.Path:
    make_v8_conv(tmp_path / "tiny.onnx", ["person", "helmet", "dog"])
    write_card(tmp_path, labels={"person": "person", "helmet": "helmet"})
    write_card(tmp_path, name="other", file="other.onnx", default=True, labels={"person": "person"})
    (tmp_path / "broken.yaml").write_text("name: broken\nformat: yolov8\n")
    return tmp_path


def test_cards_errors_and_providers(models: pathlib.Path) -> None:
    reg = ModelRegistry(models)
    assert sorted(reg.cards) == ["other", "tiny"]
    assert any(line.startswith(f"{models / 'broken.yaml'}: file: ") for line in reg.errors)
    assert reg.providers_of("person") == ["other", "tiny"]  # default models first
    assert reg.providers_of("helmet") == ["tiny"] and reg.providers_of("fire") == []
    assert reg.is_built("tiny") and not reg.is_built("other")
    assert reg.default_model("person") == "tiny"  # the built one wins
    st = reg.status("tiny")
    assert st.built and st.sha256_ok is None
    with pytest.raises(ModelError, match="unknown model 'nope'"):
        reg.card("nope")
    with pytest.raises(ModelError, match="provides the label 'smoke'"):
        reg.default_model("smoke")


def test_detectors_are_cached_per_options(models: pathlib.Path) -> None:
    reg = ModelRegistry(models)
    assert reg.detector("tiny") is reg.detector("tiny")
    from vision.detect.detector import DetectorOptions

    assert reg.detector("tiny", DetectorOptions(keep_unmapped=True)) is not reg.detector("tiny")


def test_a_registry_session_applies_to_detectors_asked_without_options(models: pathlib.Path) -> None:
    from vision.detect.detector import DetectorOptions
    from vision.detect.session import SessionConfig

    one = SessionConfig(intra_op_threads=1)
    reg = ModelRegistry(models, session=one)
    assert reg.detector("tiny").options.session == one
    assert reg.detector("tiny", DetectorOptions()).options.session == SessionConfig()  # explicit options win


def test_sha256_mismatch_is_reported(models: pathlib.Path) -> None:
    write_card(models, sha256="0" * 64)
    assert ModelRegistry(models).status("tiny").sha256_ok is False


def test_script_build_without_export_env(models: pathlib.Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    card = ModelCard.model_validate(
        {**ModelRegistry(models).card("other").model_dump(), "build": {"kind": "script", "script": "x.py"}}
    )
    missing = tmp_path_factory.mktemp("env") / "bin" / "python"
    with pytest.raises(BuildError, match="run `make export-env`"):
        build_model(card, models, repo_root=models, cache_dir=models, export_python=missing)
