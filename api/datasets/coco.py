"""COCO detection JSON: `annotations/instances_<split>.json` for the images in `images/<split>/`.

Categories are the export's class names with `id = class index + 1` (COCO ids start at 1; the class index is the
one of `hard_negatives.json` and `export.json`). Image ids count from 1 in the export's order (oldest incident
first), per split; `file_name` is the image's name inside `images/<split>/`, and each image also carries its
`incident_id`. Boxes are `[x, y, width, height]` in pixels, clipped to the image, with the detector's confidence as
`score` (a pre-label, not a ground truth). A hard negative is an image without annotations.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from api.datasets.samples import SPLITS, Sample, Split, clipped


def annotation_file(split: Split) -> str:
    return f"annotations/instances_{split}.json"


def coco_document(samples: Sequence[Sample], names: Sequence[str]) -> dict[str, Any]:
    """The COCO document of `samples` (all of one split)."""
    class_ids = {name: i for i, name in enumerate(names)}
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for image_id, sample in enumerate(samples, start=1):
        size = sample.detections.image
        images.append(
            {
                "id": image_id,
                "file_name": f"{sample.incident_id}.jpg",
                "width": size.width,
                "height": size.height,
                "incident_id": sample.incident_id,
            }
        )
        if not sample.hard_negative:
            annotations += _annotations(sample, image_id, len(annotations) + 1, class_ids)
    return {
        "info": {"description": "safewatch dataset export: incident snapshots with detector pre-labels"},
        "licenses": [],
        "images": images,
        "annotations": annotations,
        "categories": [{"id": i + 1, "name": name, "supercategory": ""} for i, name in enumerate(names)],
    }


def _annotations(sample: Sample, image_id: int, first_id: int, class_ids: Mapping[str, int]) -> list[dict[str, Any]]:
    size = sample.detections.image
    out = []
    for ann_id, box in enumerate(sample.boxes(), start=first_id):
        xyxy = clipped(box, size.width, size.height)
        assert xyxy is not None  # `boxes()` keeps only boxes inside the image
        x1, y1, x2, y2 = xyxy
        w, h = x2 - x1, y2 - y1
        out.append(
            {
                "id": ann_id,
                "image_id": image_id,
                "category_id": class_ids[box.label] + 1,
                "bbox": [round(x1, 3), round(y1, 3), round(w, 3), round(h, 3)],
                "area": round(w * h, 3),
                "iscrowd": 0,
                "score": box.confidence,
            }
        )
    return out


def write_coco(out: Path, samples: Sequence[Sample], names: Sequence[str]) -> int:
    """Write one annotation file per split (the images are already in `images/<split>/`); returns the number of
    boxes written."""
    boxes = 0
    for split in SPLITS:
        document = coco_document([s for s in samples if s.split == split], names)
        boxes += len(document["annotations"])
        path = out / annotation_file(split)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return boxes
