"""Per-app state: what `create_app` builds and every request reaches through `api.deps` (no module singletons)."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from api.camera_store import CameraStore
from api.detect_pool import DetectPool
from api.metrics import Metrics
from api.settings import Settings
from api.sse import EventFeed
from api.store.db import Store
from api.webhooks.dispatcher import Dispatcher
from api.workers import FrameProvider, WorkersProvider, embedded_workers
from pipelines.bus.base import EventBus
from pipelines.distributed.model_catalog import ModelCatalog
from vision.detect.registry import ModelRegistry


class Notifier:
    """Wakes the SSE feed (`api.sse.EventFeed`) when the store committed new events; `notify` is thread-safe."""

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
    """Everything `create_app` was given or built from its arguments; fixed once the app exists."""

    settings: Settings
    store: Store
    metrics: Metrics
    registry: ModelRegistry  # POST /v1/detect, PUT /v1/cameras; loaded detectors are cached here
    cameras: CameraStore  # camera config YAML files (api.camera_store)
    detect: DetectPool  # POST /v1/detect runs here, never on the shared thread pool (api.detect_pool)
    models: ModelCatalog  # pushed models (POST /v1/models): Redis in distributed mode, a file beside the store else
    workers: WorkersProvider = embedded_workers
    bus: EventBus | None = None
    frames: FrameProvider | None = None  # GET /v1/cameras/{id}/frame.jpg; the embedded service provides it
    dispatcher: Dispatcher | None = None
    notifier: Notifier = field(default_factory=Notifier)
    feed: EventFeed = field(init=False)  # GET /v1/events: the one reader of new events, woken by `notifier`

    def __post_init__(self) -> None:
        self.feed = EventFeed(self.store, self.settings, self.notifier)
