"""The incidents an export takes, each as a `Sample`: its store row's facts, its raw snapshot and the detections
stored beside it, its split; and the incidents it cannot take, by reason.

Incidents are read through the store (`list_incidents`, the same filters as `GET /v1/incidents`) on a read-only
connection (`api/store/evidence.py`: nothing is created or migrated); the evidence folder is found from the stored
snapshot path as the snapshot route finds it (`resolve_media`). The split is a function of the incident id only
(`split_of`), so an incident stays in the same split in every export.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from sqlalchemy import Row
from sqlalchemy.orm import Session

from api.routers.incidents import resolve_media
from api.store.evidence import read_only_connection
from api.store.incidents import IncidentFilter, list_incidents
from api.store.models import Handling
from vision.digest import stable_fraction
from vision.media.snapshot_detections import (
    DETECTIONS_NAME,
    DetectionsUnreadable,
    SnapshotDetections,
    StoredBox,
    read_snapshot_detections,
)

Split = Literal["train", "val"]
SPLITS: tuple[Split, ...] = ("train", "val")
_PAGE = 500


class SkipReason(StrEnum):
    """Why an incident matched the filters but is not in the export."""

    no_detections = "no_detections"  # evidence recorded before the snapshot's detections were stored
    no_boxes = "no_boxes"  # nothing detected on the snapshot (camera health, static-scene evidence): nothing to label
    evidence_missing = "evidence_missing"  # no snapshot stored, or its files are gone (retention, a moved media root)
    evidence_invalid = "evidence_invalid"  # the detections are unreadable, or the raw snapshot is not theirs


@dataclass(frozen=True, slots=True)
class Sample:
    """One incident to export: one image (its raw snapshot) and its stored detections."""

    incident_id: str
    camera_id: str
    site: str
    rule: str
    zone: str | None
    status: str
    handling: str
    started_at: datetime
    image: Path  # the raw snapshot in the evidence folder
    detections: SnapshotDetections
    split: Split

    @property
    def hard_negative(self) -> bool:
        """Marked false positive: exported with no labels, its triggering boxes listed aside."""
        return self.handling == Handling.false_positive

    @property
    def file(self) -> str:
        """The image's path in the export, relative to its root."""
        return f"images/{self.split}/{self.incident_id}.jpg"

    def boxes(self) -> list[StoredBox]:
        """The stored boxes that can be labels: with a label, and with an area once clipped to the image."""
        w, h = self.detections.image.width, self.detections.image.height
        return [b for b in self.detections.detections if b.label and clipped(b, w, h) is not None]


def clipped(box: StoredBox, width: int, height: int) -> tuple[float, float, float, float] | None:
    """The box clipped to the image, or None when nothing of it is inside."""
    x1, y1, x2, y2 = box.xyxy
    x1, x2 = min(max(x1, 0.0), width), min(max(x2, 0.0), width)
    y1, y2 = min(max(y1, 0.0), height), min(max(y2, 0.0), height)
    return (x1, y1, x2, y2) if x2 > x1 and y2 > y1 else None


def split_of(incident_id: str, val_fraction: float) -> Split:
    """`val` when the first 64 bits of sha256(incident id), as a fraction of 2**64, are below `val_fraction`."""
    return "val" if stable_fraction(incident_id) < val_fraction else "train"


@dataclass
class Collected:
    samples: list[Sample]
    skipped: dict[SkipReason, list[str]]  # incident ids, sorted


def collect(database_url: str, media_root: Path, f: IncidentFilter, *, val_fraction: float) -> Collected:
    """Every incident of the store matching `f`, as a sample or a skip reason, oldest first. Raises
    `StoreUnavailable` when the store cannot be read."""
    samples: list[Sample] = []
    skipped: dict[SkipReason, list[str]] = {}
    for row in _incidents(database_url, f):
        result = _sample(row, media_root, val_fraction)
        if isinstance(result, SkipReason):
            skipped.setdefault(result, []).append(row.id)
        else:
            samples.append(result)
    samples.sort(key=lambda s: (s.started_at, s.incident_id))
    return Collected(samples, {reason: sorted(ids) for reason, ids in sorted(skipped.items())})


def _incidents(database_url: str, f: IncidentFilter) -> Iterator[Row[Any]]:
    with read_only_connection(database_url) as conn, Session(bind=conn) as session:
        cursor: str | None = None
        while True:
            rows, cursor = list_incidents(session, f, cursor=cursor, limit=_PAGE)
            yield from rows
            if cursor is None:
                return


def _sample(row: Row[Any], media_root: Path, val_fraction: float) -> Sample | SkipReason:
    snapshot = resolve_media(media_root, row.snapshot_path)
    if snapshot is None:
        return SkipReason.evidence_missing
    try:
        detections = read_snapshot_detections(snapshot.parent / DETECTIONS_NAME)
    except FileNotFoundError:
        return SkipReason.no_detections
    except DetectionsUnreadable:
        return SkipReason.evidence_invalid
    name = detections.image.path
    if PurePosixPath(name).name != name or name in {"", ".", ".."}:
        return SkipReason.evidence_invalid  # the sidecar names a file beside it, nothing else
    image = snapshot.parent / name
    if not image.is_file():
        return SkipReason.evidence_missing
    if not any(b.label for b in detections.detections):
        return SkipReason.no_boxes  # as an image without labels it would teach "nothing here", which is not known
    return Sample(
        incident_id=row.id,
        camera_id=row.camera_id,
        site=row.site,
        rule=row.rule,
        zone=row.zone,
        status=row.status,
        handling=row.handling,
        started_at=row.started_at,
        image=image,
        detections=detections,
        split=split_of(row.id, val_fraction),
    )
