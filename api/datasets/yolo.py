"""Ultralytics YOLO layout: `labels/<split>/<image stem>.txt` beside `images/<split>/`, and `data.yaml`.

One line per box, `class cx cy w h`, normalised by the image's width and height (6 decimals: under 0.01 px for
images up to 8000 px). A hard negative gets an empty label file (a background image). `data.yaml` has no `path`, so
Ultralytics takes the folder that holds it as the dataset root and the export can be moved as a whole.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import yaml

from api.datasets.samples import SPLITS, Sample, clipped

DATA_YAML = "data.yaml"


def label_lines(sample: Sample, class_ids: Mapping[str, int]) -> list[str]:
    """The YOLO label lines of one sample (none for a hard negative)."""
    if sample.hard_negative:
        return []
    w, h = sample.detections.image.width, sample.detections.image.height
    lines = []
    for box in sample.boxes():
        xyxy = clipped(box, w, h)
        assert xyxy is not None  # `boxes()` keeps only boxes inside the image
        x1, y1, x2, y2 = xyxy
        cx, cy, bw, bh = (x1 + x2) / 2 / w, (y1 + y2) / 2 / h, (x2 - x1) / w, (y2 - y1) / h
        lines.append(f"{class_ids[box.label]} {cx:.6f} {cy:.6f} {bw:.6f} {bh:.6f}")
    return lines


def write_yolo(out: Path, samples: Sequence[Sample], names: Sequence[str]) -> int:
    """Write the label files and `data.yaml` (the images are already in `images/<split>/`); returns the number of
    boxes written."""
    class_ids = {name: i for i, name in enumerate(names)}
    boxes = 0
    for split in SPLITS:
        (out / "labels" / split).mkdir(parents=True, exist_ok=True)
    for sample in samples:
        lines = label_lines(sample, class_ids)
        boxes += len(lines)
        path = out / "labels" / sample.split / f"{sample.incident_id}.txt"
        path.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
    data = {
        "train": "images/train",
        "val": "images/val",
        "nc": len(names),
        "names": dict(enumerate(names)),
    }
    text = "# safewatch dataset export (Ultralytics YOLO); the dataset root is this file's folder\n"
    text += yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
    (out / DATA_YAML).write_text(text, encoding="utf-8")
    return boxes
