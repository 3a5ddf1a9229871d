"""The media root: `YYYY-MM-DD/<camera_id>/<incident_id>/` holding snapshot.jpg, snapshot_raw.jpg,
snapshot_detections.json, clip-NNN.mp4 and manifest.json. Ids are validated so a crafted id can never point outside
the root."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def check_id(kind: str, value: str) -> str:
    if not _ID.fullmatch(value):
        raise ValueError(f"invalid {kind} {value!r}: use 1-128 characters [A-Za-z0-9._-], not starting with . - _")
    return value


@dataclass(frozen=True, slots=True)
class IncidentDir:
    path: Path
    day: date
    camera_id: str
    incident_id: str


class MediaStore:
    """Paths of evidence under one media root (e.g. `$SAFEWATCH_DATA_DIR/media`)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def incident_dir(self, camera_id: str, incident_id: str, day: date | datetime) -> Path:
        """`root/YYYY-MM-DD/<camera_id>/<incident_id>` (not created; writers create it). `day` is the incident's
        local start date."""
        d = day.date() if isinstance(day, datetime) else day
        return self.root / d.isoformat() / check_id("camera id", camera_id) / check_id("incident id", incident_id)

    def incidents(self) -> list[IncidentDir]:
        """Every incident directory under the root, by day then camera then id; foreign entries are ignored."""
        out: list[IncidentDir] = []
        if not self.root.is_dir():
            return out
        for day_dir in sorted(p for p in self.root.iterdir() if p.is_dir() and _DAY.fullmatch(p.name)):
            try:
                day = date.fromisoformat(day_dir.name)
            except ValueError:
                continue
            for cam_dir in sorted(p for p in day_dir.iterdir() if p.is_dir() and _ID.fullmatch(p.name)):
                for inc in sorted(p for p in cam_dir.iterdir() if p.is_dir() and _ID.fullmatch(p.name)):
                    out.append(IncidentDir(inc, day, cam_dir.name, inc.name))
        return out

    def find(self, incident_id: str) -> IncidentDir | None:
        """The directory of an incident id (ids are globally unique), or None."""
        check_id("incident id", incident_id)
        return next((d for d in self.incidents() if d.incident_id == incident_id), None)
