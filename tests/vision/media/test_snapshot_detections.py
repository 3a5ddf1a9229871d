"""`snapshot_detections.json`: the real detector's boxes on a real vtest frame, written beside the raw snapshot, in the
raw snapshot's pixels (also when it is downscaled), read back; a missing raw snapshot and a bad file."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from tests.vision.detect.helpers import DEFAULT, built_default_models_dir
from vision.detect.detector import Detector
from vision.detect.registry import ModelRegistry
from vision.media.config import SnapshotConfig
from vision.media.results import WriteResult
from vision.media.snapshot import EvidenceFrame, save_snapshots
from vision.media.snapshot_detections import (
    DETECTIONS_NAME,
    DetectionsUnreadable,
    read_snapshot_detections,
    write_snapshot_detections,
)
from vision.types import Detections, ImageArray

MODELS = {DEFAULT: "ab" * 32}


@pytest.fixture(scope="module")
def evidence(sample_clip: Path) -> EvidenceFrame:
    """Frame 100 of vtest.mp4 with the default detector's persons on it (tracker ids as a tracker would set)."""
    with av.open(str(sample_clip)) as c:
        frame = next(f for i, f in enumerate(c.decode(video=0)) if i == 100)
    image: ImageArray = np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8)
    models = built_default_models_dir()
    found = Detector(ModelRegistry(models).card(DEFAULT), models).detect(image)
    persons = found[found.label == "person"]
    assert len(persons) >= 3, "vtest frame 100 shows several people"
    tracked = Detections(
        persons.xyxy, persons.confidence, persons.class_id, persons.label, np.arange(len(persons)), persons.data
    )
    return EvidenceFrame(image, tracked, float(persons.confidence.max()), pts=10.0, wall_time=1714543402.5)


@pytest.mark.parametrize("raw_max_side", [None, 384])
def test_boxes_in_raw_snapshot_pixels(evidence: EvidenceFrame, tmp_path: Path, raw_max_side: int | None) -> None:
    cfg = SnapshotConfig(raw_max_side=raw_max_side)
    snaps = save_snapshots(evidence.image, evidence.image, tmp_path, cfg)
    result = write_snapshot_detections(tmp_path, snaps.raw, evidence, models=MODELS, raw_max_side=raw_max_side)
    assert not result.missing and result.path == tmp_path / DETECTIONS_NAME
    stored = read_snapshot_detections(result.path)
    expected = (768, 576) if raw_max_side is None else (384, 288)
    with Image.open(snaps.raw.path) as raw:
        assert (stored.image.width, stored.image.height) == raw.size == expected
    assert stored.image.path == "snapshot_raw.jpg" and stored.image.sha256 == snaps.raw.sha256
    assert (stored.frame.width, stored.frame.height, stored.frame.pts) == (768, 576, 10.0)
    assert [(m.name, m.sha256) for m in stored.models] == list(MODELS.items())
    scale = stored.image.width / 768
    det = evidence.detections
    assert len(stored.detections) == len(det)
    for i, box in enumerate(stored.detections):
        np.testing.assert_allclose(box.xyxy, det.xyxy[i] * scale, atol=0.002)
        assert (box.label, box.class_name, box.model, box.tracker_id) == ("person", "person", DEFAULT, i)
        assert box.confidence == pytest.approx(float(det.confidence[i]), abs=1e-4)


def test_missing_raw_snapshot_gives_a_missing_result(evidence: EvidenceFrame, tmp_path: Path) -> None:
    raw = WriteResult.failed(tmp_path / "snapshot_raw.jpg", "disk full (ENOSPC)")
    result = write_snapshot_detections(tmp_path, raw, evidence, models=MODELS, raw_max_side=None)
    assert result.missing and result.reason == "raw snapshot not written: disk full (ENOSPC)"
    assert not (tmp_path / DETECTIONS_NAME).exists()


def test_unreadable_files(evidence: EvidenceFrame, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_snapshot_detections(tmp_path / DETECTIONS_NAME)
    snaps = save_snapshots(evidence.image, evidence.image, tmp_path, SnapshotConfig())
    path = write_snapshot_detections(tmp_path, snaps.raw, evidence, models=MODELS, raw_max_side=None).path
    body = json.loads(path.read_text(encoding="utf-8"))
    for change, message in [
        ({"version": 2}, "version: Input should be 1"),
        ({"image": {**body["image"], "sha256": "nope"}}, "image.sha256: String should match pattern"),
        ({"extra": 1}, "extra: Extra inputs are not permitted"),
    ]:
        path.write_text(json.dumps(body | change), encoding="utf-8")
        with pytest.raises(DetectionsUnreadable, match=message):
            read_snapshot_detections(path)
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(DetectionsUnreadable, match=DETECTIONS_NAME):
        read_snapshot_detections(path)
