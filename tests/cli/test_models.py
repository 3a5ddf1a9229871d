from __future__ import annotations

import json
import pathlib
import shutil

import pytest
import yaml

from cli.main import main
from tests.vision.detect.helpers import DEFAULT, YOLOV8N, built_default_models_dir, make_v8_conv, write_card
from vision.detect.card import load_card
from vision.detect.registry import ModelRegistry


@pytest.fixture
def models(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> pathlib.Path:
    out = tmp_path / "models"
    out.mkdir()
    monkeypatch.setenv("SAFEWATCH_MODELS_DIR", str(out))
    return out


def test_list_shows_built_state_and_sha(models: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = built_default_models_dir()
    shutil.copy(src / f"{DEFAULT}.yaml", models)
    assert main(["models", "list", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["name"] == DEFAULT and not row["built"] and row["sha256"] == "-" and "truck" in row["labels"]
    shutil.copy(src / f"{DEFAULT}.onnx", models)
    assert main(["models", "list"]) == 0
    line = capsys.readouterr().out.splitlines()[1]
    assert line.split()[:5] == [DEFAULT, "darknet-yolo", "yes", "yes", "ok"]


def test_validate_reports_file_field_message(models: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    (models / "bad.yaml").write_text(yaml.safe_dump({"name": "bad", "format": "yolov5", "colour": 1}))
    assert main(["models", "validate"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert f"{models / 'bad.yaml'}: format: Input should be 'yolov8' or 'darknet-yolo'" in err
    assert any(line.startswith(f"{models / 'bad.yaml'}: colour: ") for line in err)


def test_validate_loads_built_models(models: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_v8_conv(models / "tiny.onnx", ["person", "dog"])
    write_card(models, labels={"cat": "person"})
    assert main(["models", "validate"]) == 2
    assert "tiny.yaml: file: " in capsys.readouterr().err  # the card names a class the model lacks
    write_card(models)
    assert main(["models", "validate"]) == 0


def test_build_default_is_cached(capsys: pytest.CaptureFixture[str]) -> None:
    built_default_models_dir()
    assert main(["models", "build"]) == 0
    assert f"{DEFAULT}: cached" in capsys.readouterr().out
    assert main(["models", "build", "nope"]) == 2


def test_build_sha256_mismatch_is_an_error_unless_allowed(
    models: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = built_default_models_dir()
    card = yaml.safe_load((src / f"{DEFAULT}.yaml").read_text(encoding="utf-8"))
    real = card["sha256"]
    card["sha256"] = "0" * 64  # the card expects other bytes than the (reproducible) build gives
    (models / f"{DEFAULT}.yaml").write_text(yaml.safe_dump(card), encoding="utf-8")
    out = models / f"{DEFAULT}.onnx"
    corrupt = bytearray((src / f"{DEFAULT}.onnx").read_bytes())
    corrupt[1000] ^= 0xFF
    out.write_bytes(bytes(corrupt))
    capsys.readouterr()
    assert main(["models", "build", DEFAULT]) == 1
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        f"{DEFAULT}: {out}: sha256 mismatch: expected {'0' * 64}, got {real} (--allow-mismatch keeps it)"
    ]
    assert out.read_bytes() == corrupt and sorted(p.name for p in models.iterdir()) == [out.name, f"{DEFAULT}.yaml"]
    assert main(["models", "build", DEFAULT, "--allow-mismatch"]) == 0
    assert "sha256 DIFFERS from the card" in capsys.readouterr().out
    assert ModelRegistry(models).status(DEFAULT).sha256_ok is False
    assert out.read_bytes() == (src / out.name).read_bytes()


def test_import_tiny_v8(models: pathlib.Path, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = make_v8_conv(tmp_path / "user.onnx", ["person", "With Helmet", "Without Helmet"])
    labels = tmp_path / "labels.yaml"
    labels.write_text("person: person\nWith Helmet: helmet\nWithout Helmet: no_helmet\n")
    assert main(["models", "import", str(src), "--name", "site-ppe", "--labels", str(labels)]) == 0
    card = load_card(models / "site-ppe.yaml")
    assert card.format == "yolov8" and card.preprocess == "letterbox" and card.dynamic_batch
    assert card.provides == ["helmet", "no_helmet", "person"] and card.input_size == (320, 320)
    assert ModelRegistry(models).status("site-ppe").sha256_ok is True
    assert main(["models", "import", str(src), "--name", "site-ppe"]) == 2
    assert "already exists" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("labels", "message"),
    [("cat: person\n", "classes the model does not have: cat"), ("- a\n", "expected a mapping")],
)
def test_import_bad_labels(
    models: pathlib.Path, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str], labels: str, message: str
) -> None:
    src = make_v8_conv(tmp_path / "user.onnx", ["person", "dog"])
    (tmp_path / "l.yaml").write_text(labels)
    assert main(["models", "import", str(src), "--name", "x", "--labels", str(tmp_path / "l.yaml")]) == 2
    assert message in capsys.readouterr().err
    assert not (models / "x.onnx").exists() and not (models / "x.yaml").exists()


def test_import_rejects_non_detectors(
    models: pathlib.Path, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "junk.onnx").write_bytes(b"\x00" * 64)
    assert main(["models", "import", str(tmp_path / "junk.onnx"), "--name", "junk"]) == 2
    assert "junk.onnx" in capsys.readouterr().err


@pytest.mark.skipif(not YOLOV8N.is_file(), reason="models/.build/yolov8n.onnx is made by the export helper's recipe")
def test_import_real_ultralytics_export(models: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "import", str(YOLOV8N), "--name", "yolov8n"]) == 0
    card = load_card(models / "yolov8n.yaml")
    assert card.format == "yolov8" and card.input_size == (640, 640) and card.class_names == "from metadata"
    assert {"person": "person", "motorcycle": "motorcycle", "truck": "truck"}.items() <= card.labels.items()
