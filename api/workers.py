"""What the API knows of the processes that run cameras: one `WorkerInfo` per worker, from a `WorkersProvider`
(this process in embedded mode, heartbeats in Redis in distributed mode)."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from datetime import datetime

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict


class WorkerInfo(BaseModel):
    """One worker process (the `GET /v1/workers` contract: `{id, host, cameras, fps, lag_s, last_seen}`)."""

    model_config = ConfigDict(extra="forbid")

    id: str
    host: str
    cameras: list[str]
    fps: float
    lag_s: float
    last_seen: datetime


WorkersProvider = Callable[[], list[WorkerInfo]]
#: The latest analysed frame of a running camera (RGB, HxWx3 uint8), or None when the camera is not running here.
FrameProvider = Callable[[str], npt.NDArray[np.uint8] | None]


def embedded_workers() -> list[WorkerInfo]:
    """Embedded mode without a camera runtime attached: this process, no cameras."""
    from api.store.models import utcnow

    host = socket.gethostname()
    return [WorkerInfo(id=f"{host}-{os.getpid()}", host=host, cameras=[], fps=0.0, lag_s=0.0, last_seen=utcnow())]
