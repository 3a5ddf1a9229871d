"""A worker's model cache stays bounded: cached copies of versions that left the catalogue and that no camera of the
worker runs are deleted (real ONNX files, the file catalogue of the embedded service)."""

from __future__ import annotations

import pathlib

from pipelines.distributed.model_catalog import LocalModelCatalog, new_version
from pipelines.worker.model_sync import ModelSync
from tests.fixtures.pushed_models import reexport
from vision.detect.model_store import ModelCache, ModelStore, validate_model

NAME = "coco-yolov3-tiny"


def _push(store: ModelStore, catalog: LocalModelCatalog, path: pathlib.Path, card_text: str) -> str:
    card = validate_model(path, card_text)
    assert card.sha256 is not None
    store.add(path, card)
    catalog.publish(new_version(NAME, card.sha256, path.stat().st_size, card.model_dump(mode="json")))
    return card.sha256


def test_versions_that_left_the_catalogue_leave_the_cache(tmp_path: pathlib.Path, coco_card_text: str) -> None:
    store, catalog = ModelStore(tmp_path / "store"), LocalModelCatalog(tmp_path / "catalog.json")
    cache = ModelCache(store, tmp_path / "cache")
    shas = [_push(store, catalog, reexport(tmp_path / f"v{i}.onnx", f"v{i}"), coco_card_text) for i in range(3)]
    for sha in shas:
        cache.fetch(sha)
    stray = cache.dir / f"{'b' * 64}.onnx"  # a version deleted while the worker was down
    stray.write_bytes(b"old")
    sync = ModelSync(catalog, cache, "w1")  # the first read of the catalogue prunes
    assert sorted(p.stem for p in cache.dir.glob("*.onnx")) == sorted(shas)
    sync._current["cam1"] = {NAME: shas[0]}  # cam1 still runs the oldest version
    catalog.remove(NAME)  # DELETE /v1/models/coco-yolov3-tiny
    assert sync.refresh()
    assert [p.stem for p in cache.dir.glob("*.onnx")] == [shas[0]], "only what a camera here runs stays"
    sync.stopped("cam1")
    assert list(cache.dir.glob("*.onnx")) == []
    assert not sync.refresh(), "nothing changed: nothing to do"


def test_a_pruned_version_is_fetched_again_when_needed(tmp_path: pathlib.Path, coco_card_text: str) -> None:
    store, catalog = ModelStore(tmp_path / "store"), LocalModelCatalog(tmp_path / "catalog.json")
    cache = ModelCache(store, tmp_path / "cache")
    sha = _push(store, catalog, reexport(tmp_path / "v.onnx", "v"), coco_card_text)
    first = cache.fetch(sha)
    assert cache.prune(set()) == [sha] and not first.exists()
    assert cache.fetch(sha) == first and first.is_file()
