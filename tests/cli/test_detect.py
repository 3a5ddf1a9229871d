from __future__ import annotations

import json
import pathlib
import shutil
import subprocess
import sys

import cv2
import pytest

from cli.main import main
from tests.vision.detect.helpers import DEFAULT, ROOT, built_default_models_dir
from tests.vision.detect.test_images import encoded, png_bomb


@pytest.fixture(scope="module")
def models() -> pathlib.Path:
    return built_default_models_dir()


def test_json_per_image_with_errors(
    models: pathlib.Path, test_images: pathlib.Path, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = {
        "empty.jpg": b"",
        "text.jpg": b"not an image",
        "cut.jpg": (test_images / "bus.jpg").read_bytes()[:25000],
        "bomb.png": png_bomb(20000, 20000),
    }
    for name, data in bad.items():
        (tmp_path / name).write_bytes(data)
    images = [test_images / "bus.jpg", *(tmp_path / n for n in bad), test_images / "zidane.jpg"]
    code = main(
        ["detect", *map(str, images), "--json", "--models-dir", str(models), "--annotate", str(tmp_path / "ann")]
    )
    assert code == 1
    out = json.loads(capsys.readouterr().out)
    assert [r["image"] for r in out] == [str(p) for p in images]
    bus = out[0]
    assert "error" not in bus and [d["label"] for d in bus["detections"]] == ["person"] * 3
    assert set(bus["detections"][0]) == {"label", "class_name", "confidence", "box"}
    assert 0.95 <= bus["detections"][0]["confidence"] <= 1.0  # fp32 0.98, int8 (the CPU default) 0.967
    errors = {pathlib.Path(r["image"]).name: r["error"] for r in out[1:5]}
    assert "empty file" in errors["empty.jpg"] and "not an image" in errors["text.jpg"]
    assert "truncated" in errors["cut.jpg"] and "too large" in errors["bomb.png"]
    assert "error" not in out[5] and out[5]["detections"]
    annotated = cv2.imread(str(tmp_path / "ann" / "bus.jpg"))
    assert annotated.shape == (1080, 810, 3)
    assert not (tmp_path / "ann" / "bomb.jpg").exists()


def test_table_and_conf(models: pathlib.Path, test_images: pathlib.Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["detect", str(test_images / "bus.jpg"), "--conf", "0.9", "--models-dir", str(models)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith("2 detections") and lines[1].split()[:2] == ["person", "person"]


def test_all_classes(
    models: pathlib.Path, sample_clip: pathlib.Path, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frame = tmp_path / "frame.png"
    container = cv2.VideoCapture(str(sample_clip))
    ok, bgr = container.read()
    assert ok and cv2.imwrite(str(frame), bgr)
    assert main(["detect", str(frame), "--json", "--all-classes", "--conf", "0.05", "--models-dir", str(models)]) == 0
    names = {d["class_name"] for d in json.loads(capsys.readouterr().out)[0]["detections"]}
    assert {"person", "truck"} <= names


@pytest.mark.parametrize(
    ("argv", "message"),
    [(["--model", "nope"], "unknown model 'nope'"), (["--conf", "2"], "must be within [0, 1]")],
)
def test_usage_errors(
    models: pathlib.Path, test_images: pathlib.Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    try:
        code = main(["detect", str(test_images / "bus.jpg"), "--models-dir", str(models), *argv])
    except SystemExit as exc:  # argparse type errors exit 2 by themselves
        code = int(exc.code or 0)
    assert code == 2 and message in capsys.readouterr().err


def test_missing_model_file(
    tmp_path: pathlib.Path, test_images: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copy(built_default_models_dir() / f"{DEFAULT}.yaml", tmp_path)
    assert main(["detect", str(test_images / "bus.jpg"), "--models-dir", str(tmp_path)]) == 2
    assert "model file not found" in capsys.readouterr().err


def _camera_file(tmp_path: pathlib.Path, polygon: list[list[float]]) -> pathlib.Path:
    path = tmp_path / "cam.yaml"
    path.write_text(
        "id: cli-cam\nsite: s\nname: 测试\nstreams: {detect: x.mp4}\n"
        f"zones: [{{name: area, polygon: {polygon}}}]\n"
        "rules: [{type: intrusion, zones: [area], labels: [person]}]\n",
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize(
    ("polygon", "expected"),
    [
        ([[0, 0], [1, 0], [1, 1], [0, 1]], ["intrusion"]),  # the whole frame: the pedestrians are inside
        ([[0, 0], [1, 0], [1, 0.1], [0, 0.1]], []),  # a strip of sky: nobody's feet there
    ],
)
def test_camera_applies_zones_and_rules(
    models: pathlib.Path,
    test_images: pathlib.Path,
    tmp_path: pathlib.Path,
    capsys: pytest.CaptureFixture[str],
    polygon: list[list[float]],
    expected: list[str],
) -> None:
    cam = _camera_file(tmp_path, polygon)
    code = main(["detect", str(test_images / "bus.jpg"), "--camera", str(cam), "--json", "--models-dir", str(models)])
    assert code == 0
    (entry,) = json.loads(capsys.readouterr().out)
    assert [v["rule"] for v in entry["violations"]] == expected
    if expected:
        assert entry["violations"][0]["labels"] == ["person"] and entry["violations"][0]["boxes"]


def test_camera_config_errors_name_the_file(
    models: pathlib.Path, test_images: pathlib.Path, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: BAD ID\nsite: s\n", encoding="utf-8")
    code = main(["detect", str(test_images / "bus.jpg"), "--camera", str(bad), "--models-dir", str(models)])
    err = capsys.readouterr().err
    assert code == 2 and "bad.yaml" in err and "id" in err


def test_damaged_images_are_error_entries_not_tracebacks(
    models: pathlib.Path, test_images: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    """A truncated PPM used to end the command with a ValueError traceback; now it is one image's error entry."""
    damaged = {
        "cut.ppm": b"P6 100 100 255\n" + b"\x00" * 100,
        "header.ppm": b"P6 100 100",
        "maxval.ppm": b"P6 10 10 0\n" + b"\x00" * 300,
        "cut.png": encoded("PNG")[:20],
        "cut.webp": encoded("WEBP")[:40],
    }
    for name, data in damaged.items():
        (tmp_path / name).write_bytes(data)
    images = [*(str(tmp_path / n) for n in damaged), str(test_images / "bus.jpg")]
    proc = subprocess.run(
        [sys.executable, "-m", "cli.main", "detect", *images, "--json", "--models-dir", str(models)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr
    out = json.loads(proc.stdout)
    assert [pathlib.Path(r["image"]).name for r in out] == [*damaged, "bus.jpg"]
    for entry in out[:-1]:
        assert entry["detections"] == [] and "corrupt or truncated" in entry["error"]
    assert "error" not in out[-1] and out[-1]["detections"]
