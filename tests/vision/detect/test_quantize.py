from __future__ import annotations

import pathlib
import shutil

import onnx
import pytest

from tests.vision.detect.helpers import DEFAULT, built_default_models_dir
from vision.detect.card import load_card
from vision.detect.images import sample_frames
from vision.detect.quantize import head_convs, quantize_model
from vision.detect.registry import ModelRegistry


def test_head_convs_are_the_two_yolo_heads() -> None:
    models = built_default_models_dir()
    model = onnx.load(str(models / f"{DEFAULT}.onnx"))
    heads = head_convs(model)
    by_name = {n.name: n for n in model.graph.node}
    assert len(heads) == 2
    weights = {i.name: i for i in model.graph.initializer}
    shapes = [onnx.numpy_helper.to_array(weights[by_name[h].input[1]]).shape for h in heads]
    assert all(s[0] == 255 for s in shapes)


@pytest.mark.slow
def test_int8_agrees_with_fp32(tmp_path: pathlib.Path, sample_clip: pathlib.Path) -> None:
    models = built_default_models_dir()
    shutil.copy(models / f"{DEFAULT}.onnx", tmp_path)
    card = ModelRegistry(models).card(DEFAULT)
    frames = sample_frames(sample_clip, 16, step=40)
    report = quantize_model(card, tmp_path, frames[:10], frames[10:], repeats=1)
    assert report.agreement.matched_rate >= 0.85
    assert report.agreement.mean_confidence_delta < 0.05
    written = load_card(tmp_path / f"{DEFAULT}-int8.yaml")
    assert written.sha256 == report.card.sha256 and written.build is None and "matched" in written.notes
    assert (tmp_path / f"{DEFAULT}-int8.onnx").stat().st_size < (tmp_path / f"{DEFAULT}.onnx").stat().st_size / 2
