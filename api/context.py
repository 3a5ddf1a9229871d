"""Per-app state: what `create_app` builds and every request reaches through `api.deps` (no module singletons)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict

from api.camera_store import CameraStore
from api.metrics import Metrics
from api.settings import Settings
from api.store.db import Store
from api.webhooks.dispatcher import Dispatcher
from pipelines.bus.base import EventBus
from vision.detect.registry import ModelRegistry


class WorkerInfo(BaseModel):
    """One worker process (ARCHITECTURE.md: `{id, host, cameras, fps, lag_s, last_seen}`)."""

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


class Notifier:
    """Wakes async waiters (SSE streams) when the store committed new events; `notify` is thread-safe."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._event = asyncio.Event()

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def notify(self) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._fire)

    def _fire(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, timeout: float) -> None:
        """Return on the next notification or after `timeout` seconds."""
        event = self._event
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)


@dataclass
class AppContext:
    settings: Settings
    store: Store
    metrics: Metrics
    workers: WorkersProvider = embedded_workers
    bus: EventBus | None = None
    notifier: Notifier = field(default_factory=Notifier)
    dispatcher: Dispatcher | None = None
    registry: ModelRegistry | None = None  # POST /v1/detect, PUT /v1/cameras; loaded detectors are cached here
    cameras: CameraStore | None = None  # camera config YAML files (api.camera_store)
    frames: FrameProvider | None = None  # GET /v1/cameras/{id}/frame.jpg; EmbeddedService fills it from its worker
