"""Scripted scenarios for rule tests: detections over time on a blank 640x360 frame, through rules and incidents."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

from pipelines.config.camera import CameraConfig
from pipelines.events import IncidentEvent
from pipelines.incidents.manager import IncidentManager
from pipelines.rules.base import FrameContext, Violation
from pipelines.rules.factory import CameraRules
from vision.types import Detections, Frame

W, H = 640, 360
IMAGE = np.zeros((H, W, 3), dtype=np.uint8)
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)  # a Monday, 09:00 UTC

# normalised polygons
LEFT_HALF = [[0.0, 0.0], [0.5, 0.0], [0.5, 1.0], [0.0, 1.0]]
RIGHT_HALF = [[0.5, 0.0], [1.0, 0.0], [1.0, 1.0], [0.5, 1.0]]
WHOLE = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]

Row = tuple[Any, ...]  # (label, track_id, x1, y1, x2, y2[, confidence]) in pixels


def dets(*rows: Row) -> Detections:
    if not rows:
        return Detections.empty()
    return Detections(
        xyxy=np.asarray([r[2:6] for r in rows], dtype=np.float32),
        confidence=np.asarray([r[6] if len(r) > 6 else 0.9 for r in rows], dtype=np.float32),
        class_id=np.zeros(len(rows), dtype=np.int64),
        label=np.asarray([r[0] for r in rows]),
        tracker_id=np.asarray([r[1] for r in rows], dtype=np.int64),
    )


def person(tid: int, cx: float, bottom: float, height: float = 120.0, conf: float = 0.9) -> Row:
    """A person box of the given height, feet at (cx, bottom), width = height / 3."""
    return ("person", tid, cx - height / 6, bottom - height, cx + height / 6, bottom, conf)


def frame(t: float, wall: datetime | None = None) -> Frame:
    when = (wall or T0 + timedelta(seconds=t)).timestamp()
    return Frame(camera_id="cam-1", seq=round(t * 100), pts=t, wall_time=when, image=IMAGE)


def ctx(t: float, detections: Detections, mask: npt.NDArray[np.bool_] | None = None) -> FrameContext:
    return FrameContext(frame(t), detections, mask)


def camera(zones: Sequence[dict[str, Any]], rules: Sequence[dict[str, Any]], **extra: Any) -> CameraConfig:
    return CameraConfig.model_validate(
        {
            "id": "cam-1",
            "site": "site-1",
            "name": "test",
            "streams": {"detect": "rtsp://127.0.0.1/x"},
            "zones": list(zones),
            "rules": list(rules),
            **extra,
        }
    )


Script = Callable[[float], Detections]
MaskScript = Callable[[float], npt.NDArray[np.bool_] | None]


@dataclass
class Run:
    events: list[IncidentEvent]
    violations: list[tuple[float, list[Violation]]]

    def summary(self) -> list[tuple[str, float]]:
        return [(e.type.value, e.offset_s) for e in self.events]

    def opened(self) -> list[IncidentEvent]:
        return [e for e in self.events if e.type.value == "opened"]

    def first_violation(self) -> float | None:
        return next((t for t, vs in self.violations if vs), None)


def run(
    cam: CameraConfig,
    script: Script,
    until: float,
    *,
    fps: float = 5.0,
    mask: MaskScript | None = None,
    wall: Callable[[float], datetime] | None = None,
    tracked: bool = True,
) -> Run:
    """Evaluate the camera's rules on frames at `fps` from t=0 to `until` and feed the incident manager."""
    rules = CameraRules(cam, tracked=tracked)
    manager = IncidentManager(cam.id, cam.site, rules.timings)
    events: list[IncidentEvent] = []
    history: list[tuple[float, list[Violation]]] = []
    for i in range(round(until * fps)):
        t = round(i / fps, 6)
        when = wall(t) if wall else T0 + timedelta(seconds=t)
        vs = rules.evaluate(FrameContext(frame(t, when), script(t), mask(t) if mask else None))
        history.append((t, vs))
        events += manager.observe(vs, t, when)
    return Run(events, history)
