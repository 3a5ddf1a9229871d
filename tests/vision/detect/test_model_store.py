"""Pushed models: validation of an upload, the content-addressed store, the worker's verified cache, and the
registry view that runs an installed version (real ONNX files: the shipped default model and a re-saved copy)."""

from __future__ import annotations

import pathlib
import shutil

import pytest
import yaml

from vision.detect.model_store import ModelCache, ModelRejected, ModelStore, file_sha256, validate_model
from vision.detect.registry import Installed, ModelRegistry

ROOT = pathlib.Path(__file__).resolve().parents[3]


def _card(text: str, **changes: object) -> str:
    data = yaml.safe_load(text)
    data.update(changes)
    return yaml.safe_dump(data, sort_keys=False)


def test_a_valid_upload_gets_its_sha256_as_file_name(coco_v2: pathlib.Path, coco_card_text: str) -> None:
    sha = file_sha256(coco_v2)
    card = validate_model(coco_v2, coco_card_text, sha256=sha)
    assert (card.name, card.sha256, card.file) == ("coco-yolov3-tiny", sha, f"{sha}.onnx")
    assert sha != file_sha256(ROOT / "models" / "coco-yolov3-tiny.onnx")  # a different version of the same model


def test_a_corrupt_file_is_refused(tmp_path: pathlib.Path, coco_v2: pathlib.Path, coco_card_text: str) -> None:
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(coco_v2.read_bytes()[: 1 << 20])  # cut off after 1 MB
    with pytest.raises(ModelRejected, match="not a loadable ONNX model"):
        validate_model(broken, coco_card_text)


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        (
            {"class_names": ["person", "bicycle"], "labels": {"person": "person"}},
            "output has 80 classes but 2 class names",
        ),
        ({"labels": {"pedestrian": "person"}}, "card labels name classes the model does not have: pedestrian"),
        ({"input_size": [320, 320]}, "input is 416x416 but the card says input_size"),
        ({"sha256": "0" * 64}, "sha256 mismatch: the card says"),
        ({"variant_of": "other", "name": "x-int8"}, "precision variant"),
        ({"format": "yolov9"}, "invalid model card"),
    ],
)
def test_a_card_that_does_not_fit_the_file_is_refused(
    coco_v2: pathlib.Path, coco_card_text: str, changes: dict[str, object], reason: str
) -> None:
    with pytest.raises(ModelRejected, match=reason):
        validate_model(coco_v2, _card(coco_card_text, **changes))


def test_class_names_must_match_the_metadata(coco_v2: pathlib.Path, coco_card_text: str) -> None:
    from vision.detect.session import SessionConfig, inspect_session, open_session

    names = inspect_session(open_session(coco_v2, SessionConfig()), coco_v2).names
    assert names is not None
    swapped = [names[1], names[0], *names[2:]]
    with pytest.raises(ModelRejected, match="class mismatch"):
        validate_model(coco_v2, _card(coco_card_text, class_names=swapped))
    assert validate_model(coco_v2, _card(coco_card_text, class_names=names)).class_names == names


def test_a_sha256_the_sender_computed_must_match(coco_v2: pathlib.Path, coco_card_text: str) -> None:
    with pytest.raises(ModelRejected, match="sha256 mismatch: the request says"):
        validate_model(coco_v2, coco_card_text, sha256="f" * 64)


def test_the_cache_verifies_what_it_fetches(tmp_path: pathlib.Path, coco_v2: pathlib.Path, coco_card_text: str) -> None:
    store = ModelStore(tmp_path / "store")
    card = validate_model(coco_v2, coco_card_text)
    assert card.sha256 is not None
    stored = store.add(coco_v2, card)
    cache = ModelCache(store, tmp_path / "cache")
    copy = cache.fetch(card.sha256)
    assert copy.parent == tmp_path / "cache" and file_sha256(copy) == card.sha256
    copy.write_bytes(b"changed in the cache")  # a changed cache file is fetched again
    assert file_sha256(cache.fetch(card.sha256)) == card.sha256
    copy.unlink()
    data = bytearray(stored.read_bytes())
    data[-1] ^= 0xFF
    stored.write_bytes(bytes(data))  # a changed store file is refused
    with pytest.raises(ModelRejected, match="sha256 mismatch"):
        cache.fetch(card.sha256)
    assert not copy.exists() and not list((tmp_path / "cache").glob("*.part"))
    with pytest.raises(ModelRejected, match="not in the model store"):
        cache.fetch("a" * 64)


def test_an_installed_version_runs_under_its_name(
    tmp_path: pathlib.Path, coco_v2: pathlib.Path, coco_card_text: str
) -> None:
    card = validate_model(coco_v2, coco_card_text)
    assert card.sha256 is not None
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    shutil.copyfile(coco_v2, cache_dir / card.file)
    base = ModelRegistry(ROOT / "models", precision="auto")
    view = base.install({card.name: Installed(card, cache_dir)})
    assert view.runtime_card(card.name) == card  # never the shipped int8 variant
    assert view.path(card.name) == cache_dir / card.file and view.is_built(card.name)
    assert view.detector(card.name).path == cache_dir / card.file
    assert base.path(card.name) == ROOT / "models" / "coco-yolov3-tiny.onnx"  # the registry itself is unchanged
    assert base.card(card.name).sha256 != card.sha256
    assert view.prune(keep=[]) == 1 and base.prune(keep=[]) == 0
