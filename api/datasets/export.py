"""`export_dataset`: the incidents matching a filter → a labelling/training dataset in YOLO or COCO layout.

Output (`--out DIR`):

    images/{train,val}/<incident id>.jpg   the RAW snapshot (never the annotated one), byte for byte
    labels/{train,val}/<incident id>.txt   YOLO: one line per stored box; empty for a hard negative
    data.yaml                              YOLO: train/val folders and `names`
    annotations/instances_{train,val}.json COCO
    hard_negatives.json                    incidents marked false positive: their image and triggering boxes
    export.json                            what was exported: options, class names, one entry per image, skips

Labels are the detections stored with the snapshot (the boxes its rule reported on that frame), as pre-labels to be
corrected in a labelling tool. Class names are the semantic labels of the model cards of the models that produced the
exported detections (sorted; one id per name across the export); a stored label that no card provides (a card gone
from the models directory) is appended after them, sorted. An incident marked false positive is a hard negative: its
image has no labels, and its triggering boxes are listed in `hard_negatives.json` so they can be relabelled. Each
image's bytes are checked against the sha256 its detections were stored for before they are copied.

Nothing in the output depends on when the export ran: two exports of the same store are identical.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from api.datasets.coco import write_coco
from api.datasets.samples import SPLITS, Sample, SkipReason, Split, collect
from api.datasets.yolo import DATA_YAML, write_yolo
from api.store.incidents import IncidentFilter
from vision.detect.registry import ModelRegistry
from vision.media.snapshot_detections import StoredBox

Format = Literal["yolo", "coco"]
FORMATS: tuple[Format, ...] = ("yolo", "coco")
INDEX_NAME = "export.json"
HARD_NEGATIVES_NAME = "hard_negatives.json"
EXPORT_VERSION = 1
#: What an export writes at the top of its folder (`force` clears only a folder holding nothing else).
ENTRIES = frozenset({"images", "labels", "annotations", DATA_YAML, HARD_NEGATIVES_NAME, INDEX_NAME})


class ExportError(ValueError):
    """The export cannot run as asked; the message names the option (as its `safewatch dataset export` flag)."""


@dataclass(frozen=True)
class ExportOptions:
    out: Path
    format: Format = "yolo"
    filter: IncidentFilter = field(default_factory=IncidentFilter)
    val_fraction: float = 0.2  # share of incidents in `val`, by a hash of the incident id
    force: bool = False  # replace a previous export in `out`


@dataclass(frozen=True)
class ExportSummary:
    out: Path
    format: Format
    names: list[str]
    images: dict[Split, int]
    boxes: int
    hard_negatives: int
    skipped: dict[SkipReason, list[str]]
    unknown_labels: list[str]  # stored labels no model card provides (appended to `names`)


def export_dataset(options: ExportOptions, *, database_url: str, media_root: Path, models_dir: Path) -> ExportSummary:
    """Export the incidents of the store at `database_url` (evidence under `media_root`) that match
    `options.filter`. Raises `ExportError` for bad options, `StoreUnavailable` when the store cannot be read, OSError
    when the output cannot be written."""
    if options.format not in FORMATS:
        raise ExportError(f"--format {options.format!r}: use one of {', '.join(FORMATS)}")
    if not 0.0 <= options.val_fraction <= 1.0:
        raise ExportError(f"--val-fraction {options.val_fraction}: must be between 0 and 1")
    _check_out(options.out, options.force)
    collected = collect(database_url, media_root, options.filter, val_fraction=options.val_fraction)
    _clear(options.out)
    samples, changed = _copy_images(options.out, collected.samples)
    skipped = dict(collected.skipped)
    if changed:
        skipped[SkipReason.evidence_invalid] = sorted(skipped.get(SkipReason.evidence_invalid, []) + changed)
    skipped = dict(sorted(skipped.items()))
    names, unknown = class_names(samples, models_dir)
    write = write_yolo if options.format == "yolo" else write_coco
    boxes = write(options.out, samples, names)
    _write_json(options.out / HARD_NEGATIVES_NAME, _hard_negatives(samples, names))
    _write_json(options.out / INDEX_NAME, _index(options, samples, names, skipped))
    return ExportSummary(
        out=options.out,
        format=options.format,
        names=names,
        images={split: sum(s.split == split for s in samples) for split in SPLITS},
        boxes=boxes,
        hard_negatives=sum(s.hard_negative for s in samples),
        skipped=skipped,
        unknown_labels=unknown,
    )


def class_names(samples: Sequence[Sample], models_dir: Path) -> tuple[list[str], list[str]]:
    """(names, labels no card provides): the sorted labels of the cards of every model recorded with the samples'
    detections, then the stored labels none of them provides, sorted."""
    registry = ModelRegistry(models_dir)
    models = {m.name for s in samples for m in s.detections.models}
    provided = {label for name in models if (card := registry.cards.get(name)) for label in card.provides}
    seen = {b.label for s in samples for b in s.boxes()}
    unknown = sorted(seen - provided)
    return sorted(provided) + unknown, unknown


def _check_out(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ExportError(f"--out {out}: not a directory")
    entries = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    if not entries:
        return
    if not force:
        raise ExportError(f"--out {out}: not empty (pass --force to replace a previous export there)")
    foreign = [e for e in entries if e not in ENTRIES]
    if foreign or INDEX_NAME not in entries:
        what = ", ".join(foreign[:3]) if foreign else f"no {INDEX_NAME}"
        raise ExportError(f"--out {out}: --force replaces only a previous export, and this folder is not one ({what})")


def _clear(out: Path) -> None:
    """Remove a previous export's entries (checked by `_check_out`) and create the folders."""
    if out.is_dir():
        for path in out.iterdir():
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
    for split in SPLITS:
        (out / "images" / split).mkdir(parents=True, exist_ok=True)


def _copy_images(out: Path, samples: Sequence[Sample]) -> tuple[list[Sample], list[str]]:
    """Copy each raw snapshot whose bytes are the ones its detections describe; (copied, incident ids that changed)."""
    copied, changed = [], []
    for sample in samples:
        try:
            data = sample.image.read_bytes()
        except OSError:
            data = b""
        if hashlib.sha256(data).hexdigest() != sample.detections.image.sha256:
            changed.append(sample.incident_id)
            continue
        (out / sample.file).write_bytes(data)
        copied.append(sample)
    return copied, changed


def _box(box: StoredBox, names: Sequence[str]) -> dict[str, Any]:
    entry: dict[str, Any] = box.model_dump(mode="json")
    entry["class_id"] = names.index(box.label) if box.label in names else None
    return entry


def _hard_negatives(samples: Sequence[Sample], names: Sequence[str]) -> dict[str, Any]:
    images = [
        {
            "file": s.file,
            "incident_id": s.incident_id,
            "camera_id": s.camera_id,
            "rule": s.rule,
            "zone": s.zone,
            "boxes": [_box(b, names) for b in s.detections.detections],
        }
        for s in samples
        if s.hard_negative
    ]
    return {
        "version": EXPORT_VERSION,
        "about": "Incidents marked false positive: their images are exported without labels (hard negatives); "
        "`boxes` are the detections that triggered the incident, in image pixels (xyxy), `class_id` the index in "
        "the export's class names (COCO category_id = class_id + 1)",
        "images": images,
    }


def _index(
    options: ExportOptions, samples: Sequence[Sample], names: Sequence[str], skipped: dict[SkipReason, list[str]]
) -> dict[str, Any]:
    f = options.filter
    return {
        "version": EXPORT_VERSION,
        "format": options.format,
        "split": {"val_fraction": options.val_fraction, "val": "sha256(incident id)[:8] / 2**64 < val_fraction"},
        "filters": {
            "site": f.site,
            "camera": f.camera,
            "rule": f.rule,
            "status": f.status,
            "since": f.since.isoformat() if f.since else None,
            "until": f.until.isoformat() if f.until else None,
        },
        "names": list(names),
        "images": [_entry(s) for s in samples],
        "skipped": {reason.value: ids for reason, ids in skipped.items()},
    }


def _entry(s: Sample) -> dict[str, Any]:
    return {
        "file": s.file,
        "incident_id": s.incident_id,
        "camera_id": s.camera_id,
        "site": s.site,
        "rule": s.rule,
        "zone": s.zone,
        "status": s.status,
        "handling": s.handling,
        "started_at": s.started_at.isoformat(),
        "split": s.split,
        "hard_negative": s.hard_negative,
        "labels": 0 if s.hard_negative else len(s.boxes()),
        "sha256": s.detections.image.sha256,
        "models": [m.model_dump(mode="json") for m in s.detections.models],
    }


def _write_json(path: Path, body: dict[str, Any]) -> None:
    path.write_text(json.dumps(body, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
