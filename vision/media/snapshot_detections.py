"""The detections behind an incident's snapshot: `snapshot_detections.json` beside `snapshot_raw.jpg`.

The snapshot shows the incident's best evidence frame with the boxes its rule reported on that frame (the
triggering boxes: the person in the zone, the obstacles in the exit, the head without a helmet). This sidecar keeps
those boxes as data, so the raw snapshot can become a labelled training image (`safewatch dataset export`):

    {"version": 1,
     "image": {"path": "snapshot_raw.jpg", "sha256": …, "width": 768, "height": 576},
     "frame": {"width": 768, "height": 576, "pts": 12.4, "wall_time": 1714543402.1},
     "models": [{"name": "coco-yolov3-tiny", "sha256": …}],
     "detections": [{"xyxy": [x1, y1, x2, y2], "label": "person", "confidence": 0.87, "class_name": "person",
                     "model": "coco-yolov3-tiny", "tracker_id": 3}]}

`image` is the raw snapshot the boxes describe (its sha256 is that of the JPEG's bytes, as in the manifest), and the
boxes are in its pixels: scaled from the frame's when the raw snapshot is downscaled (`raw_max_side`). `models` are
the models that ran on the camera (name → sha256 of the model file); `model` and `class_name` of a box say which of
them reported it and under which of its own classes, `label` the semantic label of the model card.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vision.media.results import WriteResult, write_bytes_atomic
from vision.media.snapshot import EvidenceFrame, scaled_size
from vision.types import Detections

DETECTIONS_NAME = "snapshot_detections.json"
DETECTIONS_VERSION: Literal[1] = 1
_DECIMALS = 3


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class SnapshotImage(_Strict):
    path: str = Field(description="The raw snapshot's file name, in the same folder")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="sha256 of the raw snapshot's bytes")
    width: int = Field(ge=1)
    height: int = Field(ge=1)


class SourceFrame(_Strict):
    width: int = Field(ge=1)
    height: int = Field(ge=1)
    pts: float = Field(description="Seconds since the source was opened (media time for files)")
    wall_time: float = Field(description="Unix time at which the frame was captured")


class ModelRef(_Strict):
    name: str
    sha256: str = Field(description="sha256 of the model file ('' when its card records none)")


class StoredBox(_Strict):
    xyxy: tuple[float, float, float, float] = Field(description="x1 y1 x2 y2 in the raw snapshot's pixels")
    label: str = Field(description="Semantic label of the model card (person, helmet, …)")
    confidence: float
    class_name: str = Field(default="", description="The model's own class name ('' when unknown)")
    model: str = Field(default="", description="The model that reported the box ('' when unknown)")
    tracker_id: int = Field(default=-1, description="Track id, -1 when untracked")


class SnapshotDetections(_Strict):
    version: Literal[1] = DETECTIONS_VERSION
    image: SnapshotImage
    frame: SourceFrame
    models: tuple[ModelRef, ...]
    detections: tuple[StoredBox, ...]


class DetectionsUnreadable(ValueError):
    """A sidecar that cannot be read or is not a version this code knows; the message says why."""


def _column(detections: Detections, name: str, default: str) -> list[str]:
    col = detections.data.get(name)
    return [str(v) for v in col] if col is not None else [default] * len(detections)


def stored_boxes(detections: Detections, scale_x: float = 1.0, scale_y: float = 1.0) -> tuple[StoredBox, ...]:
    """`detections` as sidecar boxes, their coordinates multiplied by the scale (frame → snapshot pixels)."""
    models, classes = _column(detections, "model", ""), _column(detections, "class_name", "")
    scale = (scale_x, scale_y, scale_x, scale_y)
    out = []
    for i, box in enumerate(detections.xyxy.tolist()):
        x1, y1, x2, y2 = (round(v * s, _DECIMALS) for v, s in zip(box, scale, strict=True))
        out.append(
            StoredBox(
                xyxy=(x1, y1, x2, y2),
                label=str(detections.label[i]),
                confidence=round(float(detections.confidence[i]), 4),
                class_name=classes[i],
                model=models[i],
                tracker_id=int(detections.tracker_id[i]),
            )
        )
    return tuple(out)


def describe_snapshot(
    raw: WriteResult, frame: EvidenceFrame, *, models: Mapping[str, str], raw_max_side: int | None
) -> SnapshotDetections:
    """The sidecar of a written raw snapshot (`raw`, not missing) of `frame`, encoded with `raw_max_side`."""
    assert raw.sha256 is not None
    height, width = int(frame.image.shape[0]), int(frame.image.shape[1])
    out_w, out_h = scaled_size(width, height, raw_max_side)
    return SnapshotDetections(
        image=SnapshotImage(path=raw.path.name, sha256=raw.sha256, width=out_w, height=out_h),
        frame=SourceFrame(width=width, height=height, pts=round(frame.pts, 6), wall_time=round(frame.wall_time, 6)),
        models=tuple(ModelRef(name=n, sha256=h) for n, h in sorted(models.items())),
        detections=stored_boxes(frame.detections, out_w / width, out_h / height),
    )


def write_snapshot_detections(
    out_dir: Path, raw: WriteResult, frame: EvidenceFrame, *, models: Mapping[str, str], raw_max_side: int | None
) -> WriteResult:
    """Write `snapshot_detections.json` for the raw snapshot `raw` of `frame`; a `missing` result (with the reason)
    when the raw snapshot itself is missing or the file cannot be written, never an exception."""
    path = out_dir / DETECTIONS_NAME
    if raw.missing or raw.sha256 is None:
        return WriteResult.failed(path, f"raw snapshot not written: {raw.reason or 'unknown reason'}")
    sidecar = describe_snapshot(raw, frame, models=models, raw_max_side=raw_max_side)
    data = json.dumps(sidecar.model_dump(mode="json"), sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    return write_bytes_atomic(path, data.encode("utf-8"))


def read_snapshot_detections(path: Path) -> SnapshotDetections:
    """The sidecar at `path`. Raises FileNotFoundError when there is none (evidence recorded before sidecars were
    written) and `DetectionsUnreadable` when it cannot be used (unreadable, not JSON, unknown version, bad fields)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise
    except (OSError, UnicodeDecodeError) as exc:
        raise DetectionsUnreadable(f"{path}: unreadable: {exc}") from None
    try:
        return SnapshotDetections.model_validate_json(text)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(map(str, err["loc"])) or "(file)"
        raise DetectionsUnreadable(f"{path}: {where}: {err['msg']}") from None
