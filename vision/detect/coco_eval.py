"""COCO detection metrics of a model against labelled images (`evaluate_coco`), for model engineers.

The metrics are computed by pycocotools (the reference implementation of the COCO protocol: 101-point interpolated AP,
IoU thresholds .50:.05:.95, up to 100 detections per image, crowd regions ignored), not by hand-written AP code.
Everything is compared in the space of semantic labels, because that is what a model card promises and what the rules
consume:

- detections: the model's classes become labels through its card (`labels: {class: label}`); unmapped classes are
  dropped, as at run time;
- ground truth: each category is matched by name, normalised (lower case, spaces and hyphens → `_`), first to a label
  the card provides (`person` → person, `fire hydrant` → fire_hydrant), else to a class name of the card mapped to a
  label (`motorbike` → motorcycle). Several categories may land on one label; their boxes are pooled.
  Categories matching nothing are reported as unmatched and not scored; labels the model provides that no category
  matches are reported as unscored (their detections are ignored rather than counted as false positives).

The sanity check on unlabelled footage is `vision.detect.evaluate`.
"""

from __future__ import annotations

import contextlib
import io
import json
import pathlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vision.detect.detector import Detector
from vision.detect.errors import DetectError, EvalError
from vision.detect.images import load_image
from vision.detect.registry import ModelRegistry
from vision.types import Detections, Float64Array

#: The default confidence threshold: COCO mAP is measured over the whole precision/recall curve.
COCO_CONFIDENCE = 0.001

# -- COCO annotations (an input data format, not a config: unknown fields such as `segmentation` are ignored) ------


class CocoImage(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: int
    file_name: str = Field(min_length=1)
    width: int | None = Field(default=None, ge=1)
    height: int | None = Field(default=None, ge=1)


class CocoCategory(BaseModel):
    model_config = ConfigDict(extra="ignore")
    id: int
    name: str = Field(min_length=1)


class CocoAnnotation(BaseModel):
    model_config = ConfigDict(extra="ignore")
    image_id: int
    category_id: int
    bbox: list[float] = Field(min_length=4, max_length=4, description="[x, y, width, height] in pixels")
    iscrowd: int = Field(default=0, ge=0, le=1)
    area: float | None = Field(default=None, ge=0)


class CocoFile(BaseModel):
    model_config = ConfigDict(extra="ignore")
    images: list[CocoImage]
    annotations: list[CocoAnnotation]
    categories: list[CocoCategory]


def load_coco(path: pathlib.Path) -> CocoFile:
    """Read and check a COCO detection file; EvalError lines name the file and the field (`annotations.3.bbox`)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EvalError(f"{path}: file not found") from None
    except OSError as exc:
        raise EvalError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EvalError(f"{path}: not valid JSON: {exc}") from None
    try:
        coco = CocoFile.model_validate(raw)
    except ValidationError as exc:
        lines = [f"{path}: {'.'.join(map(str, e['loc'])) or '(file)'}: {e['msg']}" for e in exc.errors()[:10]]
        raise EvalError("\n".join(lines)) from None
    _check_references(path, coco)
    return coco


def _check_references(path: pathlib.Path, coco: CocoFile) -> None:
    errors: list[str] = []
    for kind, ids in (("images", [i.id for i in coco.images]), ("categories", [c.id for c in coco.categories])):
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            errors.append(f"{path}: {kind}: duplicate id(s) {dupes}")
    image_ids, category_ids = {i.id for i in coco.images}, {c.id for c in coco.categories}
    for n, ann in enumerate(coco.annotations):
        if ann.image_id not in image_ids:
            errors.append(f"{path}: annotations.{n}.image_id: {ann.image_id} is not the id of an image")
        if ann.category_id not in category_ids:
            errors.append(f"{path}: annotations.{n}.category_id: {ann.category_id} is not the id of a category")
        if ann.bbox[2] <= 0 or ann.bbox[3] <= 0:
            errors.append(f"{path}: annotations.{n}.bbox: width and height must be positive, got {list(ann.bbox)}")
    if not coco.images:
        errors.append(f"{path}: images: empty")
    if errors:
        raise EvalError("\n".join(errors[:10]))


def _norm(name: str) -> str:
    return name.strip().lower().replace(" ", "_").replace("-", "_")


def match_categories(categories: Sequence[CocoCategory], card_labels: dict[str, str]) -> dict[int, str | None]:
    """Category id → the label it is scored as (None: unmatched). `card_labels` is the card's {class: label}."""
    provided = set(card_labels.values())
    by_class = {_norm(k): v for k, v in card_labels.items()}
    out: dict[int, str | None] = {}
    for cat in categories:
        name = _norm(cat.name)
        out[cat.id] = name if name in provided else by_class.get(name)
    return out


# -- COCO evaluation ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LabelMetrics:
    label: str
    categories: list[str]  # GT category names scored as this label
    gt_boxes: int  # non-crowd ground-truth boxes
    detections: int
    ap: float | None  # AP@[.5:.95]; None when the label has no ground truth
    ap50: float | None
    recall50: float | None  # recall at IoU 0.5, up to 100 detections per image


@dataclass(frozen=True, slots=True)
class CocoReport:
    model: str
    images: int
    confidence: float
    map: float | None  # mean AP@[.5:.95] over scored labels with ground truth
    map50: float | None
    labels: list[LabelMetrics]
    unmatched_categories: list[dict[str, Any]]  # {id, name, annotations}
    unscored_labels: list[str]  # model labels no category matched (their detections are ignored)


def _gt_dataset(coco: CocoFile, mapping: dict[int, str | None], label_ids: dict[str, int]) -> dict[str, Any]:
    anns = []
    for n, a in enumerate(coco.annotations):
        label = mapping[a.category_id]
        if label is None:
            continue
        area = a.area if a.area is not None else a.bbox[2] * a.bbox[3]
        anns.append({"id": n + 1, "image_id": a.image_id, "category_id": label_ids[label], "bbox": list(a.bbox),
                     "area": area, "iscrowd": a.iscrowd})  # fmt: skip
    return {
        "images": [{"id": i.id, "width": i.width, "height": i.height} for i in coco.images],
        "annotations": anns,
        "categories": [{"id": i, "name": label} for label, i in label_ids.items()],
    }


def detect_images(
    detector: Detector, coco: CocoFile, images_dir: pathlib.Path, annotations: pathlib.Path, confidence: float
) -> dict[int, Detections]:
    """Detections per image id. A missing or unreadable image, or one whose size differs from the file, is an error."""
    out: dict[int, Detections] = {}
    for n, entry in enumerate(coco.images):
        path = images_dir / entry.file_name
        where = f"(listed in {annotations} images.{n}, id {entry.id})"
        if not path.is_file():
            raise EvalError(f"{path}: image not found {where}")
        try:
            image = load_image(path)
        except DetectError as exc:
            raise EvalError(f"{exc} {where}") from None
        h, w = image.shape[:2]
        if (entry.width or w, entry.height or h) != (w, h):
            raise EvalError(f"{path}: image is {w}x{h} but {annotations} images.{n} says {entry.width}x{entry.height}")
        out[entry.id] = detector.detect(image, confidence=confidence)
    return out


def _run_cocoeval(gt: dict[str, Any], results: list[dict[str, Any]]) -> tuple[list[float], Any]:
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError:
        raise EvalError("COCO metrics need pycocotools: pip install 'safewatch[eval]'") from None

    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools reports progress with print()
        coco_gt = COCO()
        coco_gt.dataset = gt
        coco_gt.createIndex()
        coco_dt = coco_gt.loadRes(results)
        ev = COCOeval(coco_gt, coco_dt, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return [float(s) for s in ev.stats], ev.eval


def _mean_valid(values: Float64Array) -> float | None:
    valid = values[values > -1]
    return float(valid.mean()) if valid.size else None


def _results(per_image: dict[int, Detections], label_ids: dict[str, int]) -> list[dict[str, Any]]:
    """Detections in the COCO results format ([x, y, w, h] boxes), only for scored labels."""
    out = []
    for image_id, det in per_image.items():
        for k, (x1, y1, x2, y2) in enumerate(det.xyxy.tolist()):
            label = str(det.label[k])
            if label in label_ids:
                box = [x1, y1, x2 - x1, y2 - y1]
                out.append({"image_id": image_id, "category_id": label_ids[label], "bbox": box,
                            "score": float(det.confidence[k])})  # fmt: skip
    return out


def _label_metrics(
    label_ids: dict[str, int], categories: dict[str, list[str]], gt: dict[str, Any], results: list[dict[str, Any]]
) -> tuple[list[LabelMetrics], list[float]]:
    """Per-label metrics and [mAP, mAP50] (-1 where undefined) from pycocotools' accumulated arrays."""
    stats, ev = _run_cocoeval(gt, results) if results else ([-1.0, -1.0], None)
    labels = []
    for label, cid in label_ids.items():
        gt_n = sum(1 for a in gt["annotations"] if a["category_id"] == cid and not a["iscrowd"])
        ap = ap50 = rec = None if gt_n == 0 else 0.0
        if ev is not None and gt_n:
            k = cid - 1  # COCOeval orders categories by id; ids are 1..K here
            precision, recall = ev["precision"], ev["recall"]  # [T, R, K, A, M], [T, K, A, M]; A=0 all, M=-1 100 dets
            ap, ap50 = _mean_valid(precision[:, :, k, 0, -1]), _mean_valid(precision[0, :, k, 0, -1])
            rec = _mean_valid(recall[0:1, k, 0, -1])
        dets = sum(1 for r in results if r["category_id"] == cid)
        labels.append(LabelMetrics(label, categories[label], gt_n, dets, ap, ap50, rec))
    if ev is None and any(m.gt_boxes for m in labels):
        stats = [0.0, 0.0]  # ground truth but not one detection: pycocotools cannot load an empty result set
    return labels, stats


def evaluate_coco(
    detector: Detector,
    coco: CocoFile,
    images_dir: pathlib.Path,
    annotations: pathlib.Path,
    confidence: float = COCO_CONFIDENCE,
) -> CocoReport:
    """COCO bbox metrics of `detector` on the images of `coco`, per semantic label (see the module docstring)."""
    mapping = match_categories(coco.categories, detector.card.labels)
    names = {c.id: c.name for c in coco.categories}
    label_ids = {label: i + 1 for i, label in enumerate(sorted({v for v in mapping.values() if v is not None}))}
    if not label_ids:
        raise EvalError(
            f"{annotations}: categories: none matches a label of model {detector.name!r} "
            f"(labels: {', '.join(detector.card.provides)}; categories: {', '.join(sorted(names.values()))})"
        )
    per_image = detect_images(detector, coco, images_dir, annotations, confidence)
    categories = {label: sorted(names[c] for c, lab in mapping.items() if lab == label) for label in label_ids}
    labels, stats = _label_metrics(label_ids, categories, _gt_dataset(coco, mapping, label_ids),
                                   _results(per_image, label_ids))  # fmt: skip
    counts = {c.id: 0 for c in coco.categories}
    for a in coco.annotations:
        counts[a.category_id] += 1
    return CocoReport(
        model=detector.name,
        images=len(coco.images),
        confidence=confidence,
        map=stats[0] if stats[0] > -1 else None,
        map50=stats[1] if stats[1] > -1 else None,
        labels=labels,
        unmatched_categories=[
            {"id": c.id, "name": c.name, "annotations": counts[c.id]} for c in coco.categories if not mapping[c.id]
        ],
        unscored_labels=sorted(set(detector.card.provides) - set(label_ids)),
    )


def evaluate_coco_files(
    registry: ModelRegistry,
    model: str,
    annotations: pathlib.Path,
    images_dir: pathlib.Path,
    confidence: float | None = None,
) -> CocoReport:
    """`model` of `registry` scored on a COCO file and the directory its `file_name` entries are relative to
    (`safewatch eval --annotations`); `confidence` None means `COCO_CONFIDENCE`.

    Bad input raises a DetectError naming it, checked in the order a user fixes it: the directory, the annotations
    file, the model, then each listed image.
    """
    if not images_dir.is_dir():
        raise EvalError(f"{images_dir}: images directory not found")
    coco = load_coco(annotations)
    detector = registry.detector(model)
    conf = COCO_CONFIDENCE if confidence is None else confidence
    return evaluate_coco(detector, coco, images_dir, annotations, confidence=conf)
