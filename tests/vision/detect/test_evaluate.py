"""Clip evaluation with the real default model on the real sample clip, and label agreement on hand-made boxes."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest

from tests.vision.detect.helpers import DEFAULT, built_default_models_dir
from vision.detect.detector import Detector
from vision.detect.errors import EvalError, ModelError
from vision.detect.evaluate import clip_frames, evaluate_clip, evaluate_clip_file, label_agreement, reference_model
from vision.detect.registry import ModelRegistry
from vision.types import Detections


@pytest.fixture(scope="module")
def detector() -> Detector:
    return ModelRegistry(built_default_models_dir()).detector(DEFAULT)


def test_clip_counts_latency_and_self_agreement(detector: Detector, sample_clip: pathlib.Path) -> None:
    indices, frames = clip_frames(sample_clip, 10, step=5)
    assert indices == list(range(0, 50, 5)) and frames[0].shape == (576, 768, 3)
    report = evaluate_clip(detector, frames, indices, reference=detector)
    person = next(c for c in report.labels if c.label == "person")
    assert (
        person.frames_with == 10
        and person.min_per_frame >= 1
        and person.total == sum(pf.get("person", 0) for pf in report.per_frame)
    )
    assert 0 < report.latency.median_ms <= report.latency.p95_ms
    agree = {a.label: a for a in report.agreement}
    assert set(agree) == set(detector.card.provides)
    assert agree["person"].matched_rate == 1.0 and agree["person"].mean_confidence_delta == 0.0
    assert agree["bus"].reference_boxes == 0 and agree["bus"].matched_rate is None  # no bus in vtest


def test_label_agreement_moved_boxes() -> None:
    def det(boxes: list[list[float]], labels: list[str], conf: float, class_ids: list[int]) -> Detections:
        n = len(boxes)
        return Detections(xyxy=np.asarray(boxes, np.float32).reshape(-1, 4), confidence=np.full(n, conf, np.float32),
                          class_id=np.asarray(class_ids), label=np.asarray(labels, dtype=np.str_))  # fmt: skip

    ref = [det([[0, 0, 10, 10], [20, 20, 40, 40]], ["person", "car"], 0.9, [0, 2])]
    # other class ids (another model's class list): boxes are matched by label, not by class id
    other = [det([[1, 1, 11, 11], [60, 60, 80, 80]], ["person", "car"], 0.7, [5, 1])]
    by = {a.label: a for a in label_agreement(ref, other, ["person", "car", "bus"])}
    assert by["person"].matched == 1 and by["person"].matched_rate == 1.0
    assert by["person"].mean_confidence_delta == pytest.approx(0.2)
    assert by["car"].matched == 0 and by["car"].matched_rate == 0.0
    assert by["bus"].matched_rate is None


def test_clip_errors(tmp_path: pathlib.Path) -> None:
    with pytest.raises(EvalError, match=r"missing\.mp4: file not found"):
        clip_frames(tmp_path / "missing.mp4", 5)
    (tmp_path / "text.mp4").write_text("not a video")
    with pytest.raises(EvalError, match=r"text\.mp4: cannot open as video"):
        clip_frames(tmp_path / "text.mp4", 5)


def test_clip_file_compares_with_the_reference_it_is_given(sample_clip: pathlib.Path) -> None:
    registry = ModelRegistry(built_default_models_dir())
    result = evaluate_clip_file(registry, DEFAULT, sample_clip, frames=3, step=10, reference=DEFAULT)
    assert result.report.frames == [0, 10, 20] and result.report.reference == DEFAULT and result.note is None
    assert {a.label: a.matched_rate for a in result.report.agreement}["person"] == 1.0
    alone = evaluate_clip_file(registry, DEFAULT, sample_clip, frames=2, step=10, reference=DEFAULT, compare=False)
    assert alone.report.reference is None and alone.report.agreement == [] and alone.note is None


def test_reference_model_defaults_to_the_person_model_sharing_a_label() -> None:
    registry = ModelRegistry(built_default_models_dir())
    assert reference_model(registry, DEFAULT, None) == (None, None)  # the model is the default itself
    assert reference_model(registry, "helmet", "other") == ("other", None)  # explicit: not checked here
    name, note = reference_model(registry, "helmet", None)  # helmet/no_helmet: no label shared with the default
    assert name is None and note == f"no comparison: the default reference {DEFAULT} shares no label with helmet"


def test_clip_file_checks_the_model_before_the_clip(tmp_path: pathlib.Path) -> None:
    registry = ModelRegistry(built_default_models_dir())
    with pytest.raises(ModelError, match="unknown model 'nope'"):
        evaluate_clip_file(registry, "nope", tmp_path / "missing.mp4")
    with pytest.raises(ModelError, match="unknown model 'gone'"):
        evaluate_clip_file(registry, DEFAULT, tmp_path / "missing.mp4", reference="gone")
    with pytest.raises(EvalError, match=r"missing\.mp4: file not found"):
        evaluate_clip_file(registry, DEFAULT, tmp_path / "missing.mp4", reference="gone", compare=False)
