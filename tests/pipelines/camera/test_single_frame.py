"""Detections on still images (`detect_image`, `detect_files`, `load_detectors`) with the real default and helmet
models on real images; the JSON entry of one image; a camera's rules on one image."""

from __future__ import annotations

import json
import pathlib

import pytest

from pipelines.camera.assemble import PipelineConfigError
from pipelines.camera.single_frame import detect_files, detect_image, load_detectors
from tests.pipelines.rules.scenario import WHOLE, camera
from tests.vision.detect.helpers import DEFAULT, built_default_models_dir
from vision.detect.detector import Detector
from vision.detect.errors import ModelError
from vision.detect.images import load_image
from vision.detect.registry import ModelRegistry


@pytest.fixture(scope="module")
def registry() -> ModelRegistry:
    return ModelRegistry(built_default_models_dir())


@pytest.fixture(scope="module")
def default(registry: ModelRegistry) -> list[Detector]:
    return load_detectors(registry, None, None)


def test_files_go_on_past_a_bad_image(
    default: list[Detector], test_images: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    (tmp_path / "text.jpg").write_bytes(b"not an image")
    paths = [test_images / "bus.jpg", tmp_path / "text.jpg", test_images / "zidane.jpg"]
    bus, bad, zidane = detect_files(paths, default)
    assert [r.path for r in (bus, bad, zidane)] == paths
    assert bus.image is not None and bus.image.shape == (1080, 810, 3) and bus.error is None
    assert bad.image is None and len(bad.detections) == 0 and bad.error is not None and "not an image" in bad.error
    assert bad.as_json() == {"image": str(paths[1]), "detections": [], "error": bad.error}
    entry = zidane.as_json()
    assert list(entry) == ["image", "detections"] and entry["detections"]  # no camera: no `violations` key
    assert zidane.violations is None


def test_files_with_a_camera_get_its_violations(default: list[Detector], test_images: pathlib.Path) -> None:
    cam = camera([{"name": "all", "polygon": WHOLE}], [{"type": "intrusion", "zones": ["all"], "labels": ["person"]}])
    [result] = detect_files([test_images / "bus.jpg"], default, 0.5, cam)
    assert result.violations is not None and [v.rule for v in result.violations] == ["intrusion"]
    entry = json.loads(json.dumps(result.as_json()))  # as the CLI prints it
    assert list(entry) == ["image", "detections", "violations"]
    [violation] = entry["violations"]
    people = [d for d in entry["detections"] if d["label"] == "person"]
    assert violation["zone"] == "all" and len(violation["boxes"]) == len(people) >= 3


def test_image_merges_every_model_and_times_each(registry: ModelRegistry, test_images: pathlib.Path) -> None:
    image = load_image(test_images / "bus.jpg")
    detectors = [registry.detector(DEFAULT), registry.detector("helmet")]
    timed: list[tuple[str, float]] = []
    merged = detect_image(detectors, image, 0.3, on_inference=lambda name, s: timed.append((name, s)))
    alone = [d.detect(image, confidence=0.3) for d in detectors]
    assert len(merged) == sum(len(a) for a in alone) and {"person", "no_helmet"} <= set(merged.label.tolist())
    assert [name for name, _ in timed] == [DEFAULT, "helmet"] and all(s > 0 for _, s in timed)
    assert len(detect_image(detectors[:1], image, 0.3)) == len(alone[0])  # one model: its own detections


def test_load_detectors_model_then_camera_then_default(registry: ModelRegistry) -> None:
    helmets = camera([], [{"type": "no_helmet"}])  # people and their heads: two models
    assert [d.name for d in load_detectors(registry, helmets, DEFAULT)] == [DEFAULT]  # the model wins
    assert sorted(d.name for d in load_detectors(registry, helmets, None)) == [DEFAULT, "helmet"]
    assert [d.name for d in load_detectors(registry, None, None)] == [DEFAULT]
    assert load_detectors(registry, None, None, keep_unmapped=True)[0].options.keep_unmapped
    with pytest.raises(ModelError, match="unknown model 'nope'"):
        load_detectors(registry, None, "nope")
    with pytest.raises(PipelineConfigError):
        load_detectors(
            registry,
            camera(
                [{"name": "all", "polygon": WHOLE}], [{"type": "intrusion", "zones": ["all"], "labels": ["unicorn"]}]
            ),
            None,
        )
