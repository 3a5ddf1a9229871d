"""The optional helmet model (models/helmet.yaml), end to end through safewatch's own ONNX detector.

Built by `make models-optional` (`safewatch models build helmet`, in the export env); skipped when not built.
Real images with bare heads: in ultralytics' bus.jpg the two pedestrians on the left are bare-headed, so the model
must place `no_helmet` boxes on their heads (upper part of the person boxes found by the default COCO model) and
report no `helmet` at all. Measured on this build: no_helmet 0.788 at (255, 397, 317, 481) and 0.756 at
(90, 392, 168, 481); Ultralytics' own predict on the same ONNX and on the converted .pt gives the same boxes.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess

import numpy as np
import pytest

from tests.vision.detect.helpers import MODELS, ROOT, built_default_models_dir
from vision.detect.detector import Detector
from vision.detect.images import load_image
from vision.detect.registry import ModelRegistry
from vision.types import Detections

pytestmark = pytest.mark.export

NAME = "helmet"
BENCH_PYTHON = ROOT / ".venv-bench" / "bin" / "python"


@pytest.fixture(scope="module")
def registry() -> ModelRegistry:
    return ModelRegistry(MODELS)


@pytest.fixture(scope="module")
def helmet(registry: ModelRegistry) -> Detector:
    path = registry.path(NAME)
    if not path.is_file():
        pytest.skip(f"{path} is not built (optional model: `make models-optional` builds it in .venv-export)")
    return registry.detector(NAME)


@pytest.fixture(scope="module")
def bus(test_images: pathlib.Path) -> np.ndarray:
    return load_image(test_images / "bus.jpg")


@pytest.fixture(scope="module")
def bus_heads(helmet: Detector, bus: np.ndarray) -> Detections:
    return helmet.detect(bus)


@pytest.fixture(scope="module")
def bus_people(bus: np.ndarray) -> np.ndarray:
    """Person boxes from the default COCO model (xyxy), most confident first."""
    det = ModelRegistry(built_default_models_dir()).detector("coco-yolov3-tiny").detect(bus)
    people: np.ndarray = det.xyxy[(det.label == "person") & (det.confidence >= 0.5)]
    assert len(people) >= 2, "the default model should find the two pedestrians on the left of bus.jpg"
    return people


def test_built_file_matches_card(registry: ModelRegistry, helmet: Detector) -> None:
    card = registry.card(NAME)
    assert registry.status(NAME).sha256_ok is not False, "models/helmet.onnx differs from the card's sha256"
    assert helmet.class_names == ["With Helmet", "Without Helmet"]
    assert card.provides == ["helmet", "no_helmet"]
    assert helmet.io.dynamic_batch


def _inside(inner: np.ndarray, outer: np.ndarray, slack: float) -> bool:
    return bool(
        inner[0] >= outer[0] - slack
        and inner[1] >= outer[1] - slack
        and inner[2] <= outer[2] + slack
        and inner[3] <= outer[3] + slack
    )


def test_bare_heads_on_bus_are_no_helmet_in_the_head_region(bus_heads: Detections, bus_people: np.ndarray) -> None:
    assert "helmet" not in set(bus_heads.label.tolist()), f"nobody in bus.jpg wears a helmet: {bus_heads.label}"
    heads = bus_heads.xyxy[bus_heads.label == "no_helmet"]
    assert len(heads) >= 2
    for person in bus_people[:2]:  # the two pedestrians on the left, both bare-headed
        pw, ph = person[2] - person[0], person[3] - person[1]
        on_this_person = [h for h in heads if _inside(h, person, slack=0.05 * pw)]
        assert len(on_this_person) == 1, f"expected one bare head on person {person}, got {on_this_person}"
        head = on_this_person[0]
        assert head[3] <= person[1] + 0.25 * ph, f"head {head} is not in the top quarter of person {person}"
        assert head[2] - head[0] <= 0.7 * pw and head[3] - head[1] <= 0.25 * ph, f"{head} is not head-sized"
    assert float(bus_heads.confidence.min()) >= 0.5


def test_batch_of_two_matches_single_frames_and_mirrors(helmet: Detector, bus: np.ndarray) -> None:
    """One session.run over [bus, mirrored bus] (dynamic batch) gives the single-frame boxes, mirrored."""
    mirrored = np.ascontiguousarray(bus[:, ::-1])
    batch = helmet.detect_batch([bus, mirrored])
    single = helmet.detect(bus)
    assert len(helmet.prepare([bus, mirrored])) == 1, "both frames should go through one batched run"
    np.testing.assert_allclose(batch[0].xyxy, single.xyxy, atol=0.01)
    np.testing.assert_allclose(batch[0].confidence, single.confidence, atol=1e-4)
    width = bus.shape[1]
    flipped = batch[1].xyxy[:, [2, 1, 0, 3]] * np.array([-1, 1, -1, 1]) + np.array([width, 0, width, 0])
    order_a, order_b = np.argsort(single.xyxy[:, 0]), np.argsort(flipped[:, 0])
    assert sorted(batch[1].label.tolist()) == sorted(single.label.tolist())
    np.testing.assert_allclose(flipped[order_b], single.xyxy[order_a], atol=12)  # the net is not exactly symmetric


_ULTRALYTICS_PREDICT = """
import json, sys
from ultralytics import YOLO
model = YOLO(sys.argv[1], task="detect")
out = {}
for image in sys.argv[2:]:
    r = model.predict(image, device="cpu", conf=0.25, iou=0.45, verbose=False)[0]
    out[image] = r.boxes.data.tolist()
print(json.dumps(out))
"""


def _ultralytics_predict(onnx: pathlib.Path, images: list[pathlib.Path]) -> dict[str, np.ndarray]:
    env = {**os.environ, "YOLO_OFFLINE": "1", "YOLO_CONFIG_DIR": str(ROOT / ".cache" / "ultralytics")}
    cmd = [str(BENCH_PYTHON), "-c", _ULTRALYTICS_PREDICT, str(onnx), *map(str, images)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=180, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    raw = json.loads(proc.stdout.strip().splitlines()[-1])
    return {k: np.asarray(v, dtype=np.float32).reshape(-1, 6) for k, v in raw.items()}


def test_matches_ultralytics_predict_on_the_same_onnx(helmet: Detector, test_images: pathlib.Path) -> None:
    """Ultralytics' own predict (needs the bench env: torch 2.14.1 + torchvision; the export env cannot predict)."""
    if not BENCH_PYTHON.is_file():
        pytest.skip(f"{BENCH_PYTHON} missing (`make bench-env`); the export env's torchvision cannot run predict")
    images = [test_images / "bus.jpg", test_images / "zidane.jpg"]
    theirs_all = _ultralytics_predict(helmet.path, images)
    for image in images:
        ours, theirs = helmet.detect(load_image(image)), theirs_all[str(image)]
        assert len(theirs) == len(ours) >= 1, f"{image.name}: {len(ours)} boxes here, {len(theirs)} in Ultralytics"
        order_ours = np.lexsort((ours.xyxy[:, 0], ours.class_id))
        order_theirs = np.lexsort((theirs[:, 0], theirs[:, 5]))
        np.testing.assert_array_equal(ours.class_id[order_ours], theirs[order_theirs, 5].astype(int))
        np.testing.assert_allclose(ours.xyxy[order_ours], theirs[order_theirs, :4], atol=1.0)
        np.testing.assert_allclose(ours.confidence[order_ours], theirs[order_theirs, 4], atol=0.01)
