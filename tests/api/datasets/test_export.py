"""`export_dataset` over real incidents: the vtest replay through the whole pipeline (real ONNX detector, tracker,
rules, evidence recorder), its events in a real store (tests/api/datasets/field_store.py), exported as YOLO and COCO.

What is checked: the images are the raw snapshots byte for byte (never the annotated ones); YOLO label lines and COCO
boxes map back to the detections stored with the evidence within a pixel; the class names are the model card's;
pycocotools loads the COCO files; the filters select the incidents the store says they should; false positives are
hard negatives with their triggering boxes aside; the split is a function of the incident id and two exports are
byte-identical; incidents without stored detections or evidence are skipped and counted.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from pycocotools.coco import COCO

from api.datasets.export import ExportError, ExportOptions, ExportSummary, export_dataset
from api.datasets.samples import SkipReason, split_of
from api.store.incidents import IncidentFilter
from tests.api.conftest import pg_schema
from tests.api.datasets.field_store import SECOND_CAMERA, SECOND_SITE, FieldIncident, FieldStore, fill_store
from tests.pipelines.e2e import harness
from tests.pipelines.e2e.harness import MODELS_DIR, ReplayResult
from vision.detect.registry import ModelRegistry
from vision.media.manifest import MANIFEST_NAME
from vision.media.snapshot_detections import DETECTIONS_NAME, StoredBox

pytestmark = pytest.mark.timeout(300)
Box = tuple[float, float, float, float]


@pytest.fixture(scope="module")
def vtest(tmp_path_factory: pytest.TempPathFactory) -> ReplayResult:
    return harness.vtest_replay(tmp_path_factory.mktemp("vtest"))


@pytest.fixture(scope="module")
def field(vtest: ReplayResult, tmp_path_factory: pytest.TempPathFactory) -> FieldStore:
    assert vtest.media_root is not None
    url = f"sqlite:///{(tmp_path_factory.mktemp('store') / 'store.db').as_posix()}"
    return fill_store(url, vtest, vtest.media_root)


def _export(field: FieldStore, out: Path, **options: Any) -> ExportSummary:
    return export_dataset(
        ExportOptions(out, **options), database_url=field.url, media_root=field.media_root, models_dir=MODELS_DIR
    )


def _exported(out: Path) -> dict[str, dict[str, Any]]:
    """export.json's image entries by incident id."""
    index = json.loads((out / "export.json").read_text(encoding="utf-8"))
    return {entry["incident_id"]: entry for entry in index["images"]}


def _labelled(incident: FieldIncident) -> list[StoredBox]:
    return [b for b in incident.detections().detections if b.label]


def _assert_same_boxes(got: list[tuple[str, Box]], stored: list[StoredBox]) -> None:
    """Same labels, and each box within 1 px of its stored box (matched in sorted order)."""
    want = sorted((b.label, b.xyxy) for b in stored)
    assert len(got) == len(want)
    for (label, box), (want_label, want_box) in zip(sorted(got), want, strict=True):
        assert label == want_label
        assert max(abs(a - b) for a, b in zip(box, want_box, strict=True)) <= 1.0, (box, want_box)


def test_detections_are_stored_with_the_evidence_and_listed_in_the_manifest(field: FieldStore) -> None:
    registry = ModelRegistry(MODELS_DIR)
    for incident in field.incidents.values():
        stored = incident.detections()
        manifest = json.loads((incident.folder / MANIFEST_NAME).read_text(encoding="utf-8"))
        raw_sha = hashlib.sha256(incident.raw.read_bytes()).hexdigest()
        assert stored.image.sha256 == raw_sha == manifest["files"]["snapshot_raw.jpg"]["sha256"]
        sidecar_sha = hashlib.sha256((incident.folder / DETECTIONS_NAME).read_bytes()).hexdigest()
        assert manifest["files"][DETECTIONS_NAME]["sha256"] == sidecar_sha
        assert (stored.image.width, stored.image.height) == (stored.frame.width, stored.frame.height) == (768, 576)
        assert {m.name: m.sha256 for m in stored.models} == {
            "coco-yolov3-tiny": registry.card("coco-yolov3-tiny").sha256
        }
        assert stored.detections, "the snapshot shows the boxes that triggered the incident"
        for box in stored.detections:
            assert box.model == "coco-yolov3-tiny" and box.confidence > 0.2 and box.tracker_id >= 0
        assert {b.label for b in stored.detections} == {"truck" if incident.rule == "exit_blocked" else "person"}


def test_yolo_export_copies_raw_snapshots_and_labels_map_back_to_stored_boxes(
    field: FieldStore, tmp_path: Path
) -> None:
    summary = _export(field, tmp_path / "yolo")
    out = summary.out
    names = sorted(ModelRegistry(MODELS_DIR).card("coco-yolov3-tiny").provides)
    data = yaml.safe_load((out / "data.yaml").read_text(encoding="utf-8"))
    assert data == {"train": "images/train", "val": "images/val", "nc": len(names), "names": dict(enumerate(names))}
    assert summary.names == names and summary.unknown_labels == [] and summary.skipped == {}
    assert sum(summary.images.values()) == len(field.incidents)
    for incident in field.incidents.values():
        split = split_of(incident.id, 0.2)
        image = out / "images" / split / f"{incident.id}.jpg"
        assert image.read_bytes() == incident.raw.read_bytes() != incident.annotated.read_bytes()
        w, h = incident.detections().image.width, incident.detections().image.height
        lines = (out / "labels" / split / f"{incident.id}.txt").read_text(encoding="utf-8").splitlines()
        got = []
        for line in lines:
            cls, cx, cy, bw, bh = line.split()
            x, y, ww, hh = float(cx) * w, float(cy) * h, float(bw) * w, float(bh) * h
            got.append((names[int(cls)], (x - ww / 2, y - hh / 2, x + ww / 2, y + hh / 2)))
        if incident.handling == "false_positive":
            assert got == []  # a hard negative: a background image
        else:
            _assert_same_boxes(got, _labelled(incident))
    assert summary.boxes == sum(len(_labelled(i)) for i in field.incidents.values() if i.handling != "false_positive")


def test_false_positives_are_hard_negatives_with_their_boxes_aside(field: FieldStore, tmp_path: Path) -> None:
    summary = _export(field, tmp_path / "out")
    false_positives = field.ids(handling="false_positive")
    assert summary.hard_negatives == len(false_positives) == 2
    sidecar = json.loads((summary.out / "hard_negatives.json").read_text(encoding="utf-8"))
    assert {e["incident_id"] for e in sidecar["images"]} == false_positives
    for entry in sidecar["images"]:
        incident = field.incidents[entry["incident_id"]]
        assert (summary.out / entry["file"]).read_bytes() == incident.raw.read_bytes()
        got = [(b["label"], tuple(b["xyxy"])) for b in entry["boxes"]]
        _assert_same_boxes(got, list(incident.detections().detections))
        assert all(summary.names[b["class_id"]] == b["label"] for b in entry["boxes"])
    index = _exported(summary.out)
    assert {i for i, e in index.items() if e["hard_negative"]} == false_positives
    assert all(index[i]["labels"] == 0 and index[i]["handling"] == "false_positive" for i in false_positives)


def test_coco_export_loads_with_pycocotools_and_its_boxes_match(field: FieldStore, tmp_path: Path) -> None:
    summary = _export(field, tmp_path / "coco", format="coco")
    assert not (summary.out / "labels").exists() and not (summary.out / "data.yaml").exists()
    seen = set()
    for split in ("train", "val"):
        coco = COCO(str(summary.out / "annotations" / f"instances_{split}.json"))
        categories = {c["id"]: c["name"] for c in coco.loadCats(coco.getCatIds())}
        assert categories == {i + 1: name for i, name in enumerate(summary.names)}
        for image in coco.loadImgs(coco.getImgIds()):
            incident = field.incidents[image["incident_id"]]
            seen.add(incident.id)
            assert split_of(incident.id, 0.2) == split
            path = summary.out / "images" / split / image["file_name"]
            assert path.read_bytes() == incident.raw.read_bytes()
            assert (image["width"], image["height"]) == (768, 576)
            anns = coco.loadAnns(coco.getAnnIds(imgIds=[image["id"]]))
            got = [(categories[a["category_id"]], _xyxy(a["bbox"])) for a in anns]
            if incident.handling == "false_positive":
                assert got == []
            else:
                _assert_same_boxes(got, _labelled(incident))
                assert all(a["area"] > 0 and a["iscrowd"] == 0 and 0 < a["score"] <= 1 for a in anns)
    assert seen == set(field.incidents)


def _xyxy(bbox: list[float]) -> Box:
    x, y, w, h = bbox
    return (x, y, x + w, y + h)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_store(request: pytest.FixtureRequest, field: FieldStore, vtest: ReplayResult) -> Iterator[FieldStore]:
    if request.param == "sqlite":
        yield field
        return
    with pg_schema("t_dataset") as url:
        assert vtest.media_root is not None
        yield fill_store(url, vtest, vtest.media_root)


def test_filters_select_the_incidents_the_store_says(any_store: FieldStore, tmp_path: Path) -> None:
    field = any_store
    first = sorted(field.incidents.values(), key=lambda i: i.started_at)
    since = first[len(first) // 2].started_at
    cases: list[tuple[IncidentFilter, set[str]]] = [
        (IncidentFilter(), set(field.incidents)),
        (IncidentFilter(camera=SECOND_CAMERA), field.ids(camera_id=SECOND_CAMERA)),
        (IncidentFilter(site=SECOND_SITE), field.ids(site=SECOND_SITE)),
        (IncidentFilter(rule="exit_blocked"), field.ids(rule="exit_blocked")),
        (IncidentFilter(status="false_positive"), field.ids(handling="false_positive")),
        (IncidentFilter(status="acknowledged"), field.ids(handling="acknowledged")),
        (IncidentFilter(since=since), {i.id for i in first if i.started_at >= since}),
        (IncidentFilter(until=since), {i.id for i in first if i.started_at < since}),
        (IncidentFilter(camera="e2e-vtest", rule="intrusion", since=since - timedelta(days=1)),
         field.ids(camera_id="e2e-vtest", rule="intrusion")),
        (IncidentFilter(camera="no-such-camera"), set()),
    ]  # fmt: skip
    assert 0 < len(field.ids(camera_id=SECOND_CAMERA)) < len(field.incidents)
    for i, (f, expected) in enumerate(cases):
        summary = _export(field, tmp_path / f"out{i}", filter=f)
        assert set(_exported(summary.out)) == expected, f
        assert sum(summary.images.values()) == len(expected)


def _tree(root: Path) -> dict[str, str]:
    files = sorted(p for p in root.rglob("*") if p.is_file())
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in files}


@pytest.mark.parametrize("format_", ["yolo", "coco"])
def test_split_is_deterministic_and_exports_are_identical(field: FieldStore, tmp_path: Path, format_: str) -> None:
    a = _export(field, tmp_path / "a", format=format_)
    b = _export(field, tmp_path / "b", format=format_)
    assert _tree(a.out) == _tree(b.out)
    index = _exported(a.out)
    assert {i: e["split"] for i, e in index.items()} == {i: split_of(i, 0.2) for i in field.incidents}
    assert a.images == {split: sum(e["split"] == split for e in index.values()) for split in ("train", "val")}
    everything = _export(field, tmp_path / "all-train", format=format_, val_fraction=0.0)
    assert everything.images == {"train": len(field.incidents), "val": 0}
    with pytest.raises(ExportError, match=r"--out .*not empty"):
        _export(field, a.out, format=format_)
    again = _export(field, a.out, format=format_, force=True)  # replaces the previous export in place
    assert _tree(again.out) == _tree(b.out)


def test_incidents_without_detections_or_evidence_are_skipped_and_counted(
    vtest: ReplayResult, field: FieldStore, tmp_path: Path
) -> None:
    media = Path(shutil.copytree(field.media_root, tmp_path / "media"))
    copy = fill_store(f"sqlite:///{(tmp_path / 'store.db').as_posix()}", vtest, media)
    older, gone, changed, empty, *_ = sorted(copy.incidents)
    (copy.incidents[older].folder / DETECTIONS_NAME).unlink()  # evidence written before detections were stored
    sidecar = copy.incidents[empty].folder / DETECTIONS_NAME
    body = json.loads(sidecar.read_text(encoding="utf-8"))
    sidecar.write_text(json.dumps(body | {"detections": []}), encoding="utf-8")  # as a camera health incident's
    shutil.rmtree(copy.incidents[gone].folder)  # removed by hand (retention would have deleted the row too)
    raw = copy.incidents[changed].raw
    raw.write_bytes(raw.read_bytes()[:-10])  # no longer the image the detections describe
    summary = _export(copy, tmp_path / "out")
    assert summary.skipped == {
        SkipReason.evidence_invalid: [changed],
        SkipReason.evidence_missing: [gone],
        SkipReason.no_boxes: [empty],
        SkipReason.no_detections: [older],
    }
    assert set(_exported(summary.out)) == set(copy.incidents) - {older, gone, changed, empty}
    index = json.loads((summary.out / "export.json").read_text(encoding="utf-8"))
    assert index["skipped"] == {
        "evidence_invalid": [changed],
        "evidence_missing": [gone],
        "no_boxes": [empty],
        "no_detections": [older],
    }
    assert not any(summary.out.rglob(f"{changed}.*"))
