"""The retained per-camera status: what a camera is doing, as MQTT subscribers see it.

`state` is the subscriber's vocabulary: `streaming` (frames flow) or `offline` (anything else: starting, connecting,
reconnecting, stopped, failed, error, or no worker runs it). In distributed mode, where heartbeats list a worker's
cameras but not their states, `streaming` means that a live worker runs the camera. `tampered` joins the vocabulary
with camera-tamper detection (issue 16.1), which is why the field is a string and `camera_state` keeps the worker's own
`CameraState` (null when no worker reports it). A status is re-published when the state, the open incident count or
the fps (beyond `FPS_STEP`) changes, and all of them whenever the publisher (re)connects.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import func, select

from api.store.db import Store
from api.store.models import Incident, IncidentStatus
from pipelines.camera.state import CameraState

#: Relative fps change (with an absolute floor of 0.5 fps) that is worth a new retained status.
FPS_STEP = 0.1


class Availability(StrEnum):
    STREAMING = "streaming"
    OFFLINE = "offline"


@dataclass(frozen=True, slots=True)
class CameraReport:
    """One camera as the process that owns the store knows it (from its worker, or from heartbeats)."""

    camera_id: str
    site: str
    state: CameraState | None  # None: no worker reports this camera's state
    fps: float | None = None  # None: not known per camera (distributed heartbeats carry per-worker totals)
    held: bool = False  # distributed mode: a live worker runs the camera (its own state is not in the heartbeat)


CameraReports = Callable[[], list[CameraReport]]


@dataclass(frozen=True, slots=True)
class CameraStatus:
    """The payload of `<prefix>/<site>/<camera>/status`."""

    camera_id: str
    site: str
    state: Availability
    camera_state: CameraState | None
    fps: float | None
    open_incidents: int

    @classmethod
    def of(cls, report: CameraReport, open_incidents: int) -> CameraStatus:
        streaming = report.state == CameraState.STREAMING if report.state is not None else report.held
        state = Availability.STREAMING if streaming else Availability.OFFLINE
        fps = None if report.fps is None else round(report.fps, 1)
        return cls(report.camera_id, report.site, state, report.state, fps, open_incidents)

    def changed(self, before: CameraStatus | None) -> bool:
        """Whether this status is worth publishing after `before` (the last one published)."""
        if before is None or (self.state, self.camera_state, self.open_incidents, self.site) != (
            before.state,
            before.camera_state,
            before.open_incidents,
            before.site,
        ):
            return True
        if self.fps is None or before.fps is None:
            return self.fps != before.fps
        return abs(self.fps - before.fps) >= max(0.5, FPS_STEP * before.fps)

    def json(self) -> str:
        return json.dumps(
            {
                "camera_id": self.camera_id,
                "site": self.site,
                "state": self.state.value,
                "camera_state": None if self.camera_state is None else self.camera_state.value,
                "fps": self.fps,
                "open_incidents": self.open_incidents,
            },
            ensure_ascii=False,
        )


def open_incidents(store: Store) -> dict[str, int]:
    """camera id → number of open incidents in the store."""
    query = (
        select(Incident.camera_id, func.count())
        .where(Incident.status == IncidentStatus.open.value, Incident.shadow.is_(False))
        .group_by(Incident.camera_id)
    )
    with store.read() as session:
        return {camera: int(count) for camera, count in session.execute(query)}


def gone(before: CameraStatus) -> CameraReport:
    """A camera no longer reported (removed, or its worker is gone): offline from now on."""
    return CameraReport(before.camera_id, before.site, None, None)
