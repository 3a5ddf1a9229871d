"""`--precision` / `SAFEWATCH_PRECISION`: read once with the other settings and handed to the model registry."""

from __future__ import annotations

import pathlib

import cv2
import numpy as np
import pytest

from api.app import create_app
from api.service import EmbeddedService
from api.settings import Settings
from cli.common import model_registry, read_settings
from cli.main import build_parser, main
from pipelines.worker.settings import RuntimeSettings
from tests.vision.detect.helpers import make_v8_conv, write_card

RECIPE = {
    "kind": "quantize",
    "base": "tiny",
    "clip": "sample_media/vtest.mp4",
    "calibration": {"start": 0, "step": 10, "count": 4},
    "evaluation": {"start": 5, "step": 10, "count": 4},
}
CAMERA = pathlib.Path(__file__).resolve().parents[1] / "pipelines" / "e2e" / "intrusion_path.yaml"


@pytest.fixture
def models(tmp_path: pathlib.Path) -> pathlib.Path:
    """`tiny` built, its int8 variant's card only (not built): `int8` must fail, `fp32` and `auto` run `tiny`."""
    out = tmp_path / "models"
    out.mkdir()
    make_v8_conv(out / "tiny.onnx", ["person"])
    write_card(out, default=True)
    write_card(out, name="tiny-int8", file="tiny-int8.onnx", variant_of="tiny", precision="int8", agreement=0.99,
               build=RECIPE)  # fmt: skip
    return out


@pytest.fixture
def image(tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "frame.png"
    cv2.imwrite(str(path), np.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=np.uint8))
    return path


@pytest.mark.parametrize("command", ["run", "worker", "replay", "eval", "detect"])
def test_commands_take_the_flag_over_the_environment(command: str, monkeypatch: pytest.MonkeyPatch) -> None:
    positional = {"replay": ["clip.mp4", "--camera", "cam.yaml"], "detect": ["a.jpg"]}.get(command, [])
    parser = build_parser()
    monkeypatch.setenv("SAFEWATCH_PRECISION", "int8")
    assert read_settings(RuntimeSettings, parser.parse_args([command, *positional])).precision == "int8"
    args = parser.parse_args([command, *positional, "--precision", "fp32"])
    assert read_settings(RuntimeSettings, args).precision == "fp32"
    monkeypatch.delenv("SAFEWATCH_PRECISION")
    assert read_settings(RuntimeSettings, parser.parse_args([command, *positional])).precision == "auto"


def test_bad_values_are_refused(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["detect", "a.jpg", "--precision", "int4"])
    assert info.value.code == 2 and "invalid choice: 'int4'" in capsys.readouterr().err
    monkeypatch.setenv("SAFEWATCH_PRECISION", "fp16")
    assert main(["detect", "a.jpg"]) == 2
    assert "bad setting SAFEWATCH_PRECISION" in capsys.readouterr().err


def test_the_registry_gets_the_precision(models: pathlib.Path) -> None:
    args = build_parser().parse_args(["detect", "a.jpg", "--models-dir", str(models), "--precision", "fp32"])
    reg = model_registry(args)
    assert reg.models_dir == models and reg.precision == "fp32"


def test_detect_runs_the_precision_asked_for(
    models: pathlib.Path, image: pathlib.Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["detect", str(image), "--models-dir", str(models), "--json"]
    assert main([*common, "--precision", "int8"]) == 2
    assert "tiny-int8 is not built" in capsys.readouterr().err
    assert main([*common, "--precision", "fp32"]) == 0
    assert main(common) == 0  # auto: the variant is not built, so fp32
    monkeypatch.setenv("SAFEWATCH_PRECISION", "int8")
    assert main(common) == 2
    assert main([*common, "--precision", "fp32"]) == 0


def test_replay_runs_the_precision_asked_for(
    models: pathlib.Path, sample_clip: pathlib.Path, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ["replay", str(sample_clip), "--camera", str(CAMERA), "--models-dir", str(models), "--quiet"]
    assert main([*common, "--out", str(tmp_path / "out"), "--precision", "int8"]) == 2
    assert "tiny-int8 is not built" in capsys.readouterr().err


def test_the_embedded_service_and_its_app_share_the_setting(tmp_path: pathlib.Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", config_dir=tmp_path / "cameras", precision="fp32",
                        database_url=f"sqlite:///{tmp_path / 'db.sqlite'}")  # fmt: skip
    service = EmbeddedService(settings)
    assert service.registry.precision == "fp32" and service.app.state.ctx.registry is service.registry
    app = create_app(settings.model_copy(update={"precision": "int8"}), store=service.store)
    assert app.state.ctx.registry.precision == "int8"
