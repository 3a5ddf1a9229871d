"""Model rollout inside one process (the embedded service's wiring): real cameras over the looped sample clip, the
real default model, a new version of it published in the catalogue → the unpinned camera swaps it in between frames
(same pipeline, same source: not restarted), the pinned one keeps the shipped version, and a version whose stored
file no longer matches its hash is refused while the running one stays."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from pipelines.camera.sinks import CountingSink
from pipelines.distributed.model_catalog import LocalModelCatalog, new_version
from pipelines.worker.camera_worker import CameraWorker
from pipelines.worker.model_sync import ModelSync
from tests.fixtures.pushed_models import reexport
from tests.pipelines.e2e import harness
from vision.detect.model_store import ModelCache, ModelStore, validate_model

NAME = "coco-yolov3-tiny"
SHIPPED = yaml.safe_load((harness.ROOT / "models" / f"{NAME}.yaml").read_text())["sha256"]


def _wait(what: str, predicate: Callable[[], object], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def _runs(catalog: LocalModelCatalog, camera_id: str, sha: str) -> bool:
    r = catalog.running().get(camera_id)
    return r is not None and r.models.get(NAME) == sha


@pytest.mark.slow
def test_a_published_version_is_swapped_in_and_a_pin_is_kept(
    tmp_path: Path, coco_v2: Path, coco_card_text: str
) -> None:
    configs = tmp_path / "cameras"
    configs.mkdir()
    lawn = harness.load("quiet_lawn.yaml")
    harness.write_camera(lawn, configs / "free.yaml", id="free", name="free", analysis_fps=2.0)
    harness.write_camera(lawn, configs / "pinned.yaml", id="pinned", name="pinned", analysis_fps=2.0,
                         models={NAME: SHIPPED[:10]})  # fmt: skip
    store = ModelStore(tmp_path / "store")
    catalog = LocalModelCatalog(store.root / "catalog.json")
    sync = ModelSync(catalog, ModelCache(store, tmp_path / "cache"), "test")
    worker = CameraWorker(configs, harness.registry(), [CountingSink()], poll_s=0.3, models=sync)
    worker.start()
    try:
        _wait("both cameras on the shipped version", lambda: _runs(catalog, "free", SHIPPED) and
              _runs(catalog, "pinned", SHIPPED))  # fmt: skip
        before = {rt.camera.id: rt for rt in worker.runtimes()}
        frames_before = before["free"].pipeline.stats.frames

        card = validate_model(coco_v2, coco_card_text)
        sha = card.sha256
        assert sha is not None
        store.add(coco_v2, card)
        catalog.publish(new_version(NAME, sha, coco_v2.stat().st_size, card.model_dump(mode="json")))
        pushed_at = time.monotonic()
        _wait("the free camera on the new version", lambda: _runs(catalog, "free", sha))
        assert time.monotonic() - pushed_at < 15.0
        free = {rt.camera.id: rt for rt in worker.runtimes()}["free"]
        assert free is before["free"] and free.source is before["free"].source  # swapped in place, not restarted
        assert free.pipeline.detect.slots[0].detector.path == tmp_path / "cache" / card.file  # type: ignore[attr-defined]
        _wait("frames after the swap", lambda: free.pipeline.stats.frames > frames_before + 4)
        assert _runs(catalog, "pinned", SHIPPED)  # the pin holds

        bad = reexport(tmp_path / "v3.onnx", "safewatch-test-v3")
        card3 = validate_model(bad, coco_card_text)
        assert card3.sha256 is not None
        stored = store.add(bad, card3)
        stored.write_bytes(stored.read_bytes()[:-1] + b"\0")  # the store's copy no longer has its hash
        catalog.publish(new_version(NAME, card3.sha256, bad.stat().st_size, card3.model_dump(mode="json")))
        _wait("the refusal reported", lambda: "sha256 mismatch" in (catalog.running()["free"].error or ""))
        assert _runs(catalog, "free", sha)  # the verified version keeps running
        assert not (tmp_path / "cache" / card3.file).exists()
    finally:
        worker.stop(timeout=20)
