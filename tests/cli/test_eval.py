"""`safewatch eval`: COCO metrics on hand-labelled real images, the clip sanity check, and clear errors (exit 2)."""

from __future__ import annotations

import json
import pathlib

import pytest

from cli.main import main
from tests.vision.detect.helpers import DEFAULT, built_default_models_dir
from tests.vision.detect.test_coco_eval import coco_dict, write_coco


@pytest.fixture(scope="module")
def models() -> pathlib.Path:
    return built_default_models_dir()


def test_coco_text_and_json(
    models: pathlib.Path, test_images: pathlib.Path, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ann = write_coco(tmp_path / "ann.json", coco_dict())
    base = ["eval", DEFAULT, "--models-dir", str(models), "--annotations", str(ann), "--images", str(test_images)]
    assert main(base) == 0
    text = capsys.readouterr().out
    assert "mAP@[.5:.95]" in text and "unmatched categories (not scored): tie (1 boxes)" in text
    person_row = next(line.split() for line in text.splitlines() if line.startswith("person"))
    assert person_row[:3] == ["person", "person", "6"] and float(person_row[5]) > 0.8  # AP50 column
    assert main([*base, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    person = next(m for m in out["labels"] if m["label"] == "person")
    assert out["model"] == DEFAULT and out["confidence"] == 0.001 and person["ap50"] > 0.8
    shifted = write_coco(tmp_path / "shifted.json", coco_dict(shift=0.6))
    assert main([*base[:5], str(shifted), "--images", str(test_images), "--json"]) == 0
    low = json.loads(capsys.readouterr().out)
    assert next(m for m in low["labels"] if m["label"] == "person")["ap50"] < 0.2


def test_clip_with_reference(
    models: pathlib.Path, sample_clip: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["eval", DEFAULT, "--models-dir", str(models), "--clip", str(sample_clip), "--frames", "12", "--step", "4"]
    assert main([*args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["frames"] == list(range(0, 48, 4)) and len(out["per_frame"]) == 12
    assert all(pf.get("person", 0) >= 1 for pf in out["per_frame"])
    assert out["latency"]["median_ms"] > 0 and out["reference"] is None  # MODEL is the default: nothing to compare
    assert main([*args, "--reference", DEFAULT]) == 0
    text = capsys.readouterr().out
    assert "latency per frame: median" in text and f"reference {DEFAULT}" in text
    person_row = next(line.split() for line in text.splitlines()[-8:] if line.startswith("person"))
    assert person_row[4] == "100.0%" and person_row[5] == "0.000"


def test_clip_default_reference_is_default_person_model(
    models: pathlib.Path, sample_clip: pathlib.Path, tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An imported copy of the default model is compared with the default model: agreement 1.0 per shared label."""
    original = (models / f"{DEFAULT}.yaml").read_text()
    copy = original.replace(f"name: {DEFAULT}", "name: copy").replace(f"file: {DEFAULT}.onnx", "file: copy.onnx")
    (tmp_path / "copy.yaml").write_text(copy.replace("default: true", "default: false"))
    (tmp_path / f"{DEFAULT}.yaml").write_text(original)
    for name in (f"{DEFAULT}.onnx", "copy.onnx"):
        (tmp_path / name).symlink_to(models / f"{DEFAULT}.onnx")
    args = ["eval", "copy", "--models-dir", str(tmp_path), "--clip", str(sample_clip), "--frames", "6", "--step", "5"]
    assert main([*args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["reference"] == DEFAULT
    person = next(a for a in out["agreement"] if a["label"] == "person")
    assert person["matched_rate"] == 1.0 and person["reference_boxes"] == person["other_boxes"] > 0


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--clip", "{tmp}/none.mp4"], "none.mp4: file not found"),
        (["--clip", "{tmp}/text.mp4"], "text.mp4: cannot open as video"),
        (["--clip", "{clip}", "--frames", "0"], "--frames and --step must be >= 1"),
        (["--clip", "{clip}", "--reference", "nope"], "unknown model 'nope'"),
        ([], "give exactly one of --annotations"),
        (["--clip", "{clip}", "--annotations", "{tmp}/ann.json"], "give exactly one of --annotations"),
        (["--annotations", "{tmp}/ann.json"], "--annotations needs --images DIR"),
        (["--annotations", "{tmp}/ann.json", "--images", "{tmp}/nodir"], "nodir: images directory not found"),
        (["--annotations", "{tmp}/missing.json", "--images", "{images}"], "missing.json: file not found"),
        (["--annotations", "{tmp}/bad.json", "--images", "{images}"], "bad.json: not valid JSON"),
        (["--annotations", "{tmp}/ann.json", "--images", "{tmp}"], "bus.jpg: image not found (listed in"),
        (["--annotations", "{tmp}/ann.json", "--images", "{images}", "--conf", "2"], "--conf must be within [0, 1]"),
    ],
)
def test_errors_exit_2(
    models: pathlib.Path,
    sample_clip: pathlib.Path,
    test_images: pathlib.Path,
    tmp_path: pathlib.Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    message: str,
) -> None:
    write_coco(tmp_path / "ann.json", coco_dict())
    write_coco(tmp_path / "bad.json", '{"images": [')
    (tmp_path / "text.mp4").write_text("not a video")
    subst = {"tmp": str(tmp_path), "clip": str(sample_clip), "images": str(test_images)}
    args = [a.format(**subst) for a in extra]
    assert main(["eval", DEFAULT, "--models-dir", str(models), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_unknown_model_exit_2(
    models: pathlib.Path, sample_clip: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["eval", "nope", "--models-dir", str(models), "--clip", str(sample_clip)]) == 2
    assert f"unknown model 'nope' in {models}" in capsys.readouterr().err
