"""The embedded service's composition root: camera workers + in-process bus + store + HTTP API in one process
(`safewatch run`). The cameras and the API share one model registry, one store and one `Metrics`.

Shutdown order matters for "nothing lost": stop the cameras first (open incidents are closed and their clips
flushed, so the last events are published), wait until the store consumer has applied everything on the bus, and
only then stop the HTTP server (whose lifespan stops the consumer and the webhook dispatcher).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from types import FrameType
from typing import cast

import numpy as np
import numpy.typing as npt
import uvicorn
from fastapi import FastAPI

from api.app import create_app
from api.consumer import STORE_GROUP
from api.metrics import Metrics, WorkerSpool
from api.mqtt.cameras import ConfiguredSites, embedded_reports
from api.mqtt.publisher import from_settings as mqtt_publisher
from api.reports.scheduler import DigestScheduler
from api.retention import Retention
from api.settings import Settings
from api.store.db import Store
from api.workers import WorkerInfo
from pipelines.bus.factory import make_bus
from pipelines.bus.redis_streams import RedisStreamBus
from pipelines.camera.assemble import EvidenceOptions
from pipelines.camera.sinks import BusSink
from pipelines.distributed.model_catalog import LocalModelCatalog
from pipelines.worker.camera_worker import CameraWorker
from pipelines.worker.data_dir import prepare_data_dir
from pipelines.worker.evidence_chain import open_chain
from pipelines.worker.model_sync import ModelSync
from pipelines.worker.settings import configure_camera_process
from vision.detect.batcher import BatcherPool
from vision.detect.model_store import ModelCache, ModelStore
from vision.detect.registry import ModelRegistry

log = logging.getLogger(__name__)


class EmbeddedService:
    def __init__(self, settings: Settings, *, realtime_files: bool = True) -> None:
        self.settings = settings
        prepare_data_dir(settings.data_dir)  # first: everything below creates files in it (umask 0o077)
        # In-process by default; SAFEWATCH_REDIS_URL makes the all-in-one service publish through Redis Streams too.
        self.bus = make_bus(
            settings.redis_url,
            spool_dir=settings.data_dir / "spool",
            prefix=settings.redis_prefix,
            spool_max_bytes=settings.spool_max_bytes,
        )
        self.registry = ModelRegistry(
            settings.models_dir, precision=settings.precision, session=settings.camera_session
        )
        # pushed models (POST /v1/models): the catalogue in a file beside the store; the cameras follow it
        self.models = LocalModelCatalog(settings.model_store_dir / "catalog.json")
        self.chain = open_chain(settings, "main")  # manifests of its cameras and tombstones of its retention
        self.store = Store(settings.database_url)
        self.metrics = Metrics(self.store)
        if isinstance(self.bus, RedisStreamBus):  # with SAFEWATCH_REDIS_URL this process spools events too
            self.metrics.watch_spools(self._spools)
        self.app: FastAPI = create_app(
            settings,
            store=self.store,
            metrics=self.metrics,
            registry=self.registry,
            bus=self.bus,
            workers=self.workers,
            frames=self.latest_frame,
            models=self.models,
        )
        configure_camera_process(settings)
        self.worker = CameraWorker(
            settings.config_dir,
            self.registry,
            [BusSink(self.bus)],
            evidence=EvidenceOptions(media_root=settings.media_dir, key=settings.signing_key, chain=self.chain),
            realtime_files=realtime_files,
            loop_files=realtime_files,
            on_inference=self.metrics.observe_inference,
            batching=BatcherPool() if settings.batching else None,
            models=ModelSync(
                self.models, ModelCache(ModelStore(settings.model_store_dir), settings.model_cache_dir), "embedded"
            ),
        )
        self.retention = Retention(settings, self.store, live=self.live_incidents, chain=self.chain)
        self.digests = DigestScheduler(settings, self.store)  # daily report digests (api/reports/scheduler.py)
        # SAFEWATCH_MQTT_URL: stored events and camera status to MQTT (reads the store after the commit, own thread)
        sites = ConfiguredSites(settings.config_dir)
        self.mqtt = mqtt_publisher(settings, self.store, self.metrics, embedded_reports(self.worker, sites))
        self._pump_stop = threading.Event()
        self._pump = threading.Thread(target=self._pump_metrics, name="metrics-pump", daemon=True)
        self._seen: dict[str, tuple[int, int]] = {}

    def serve(self, on_stopping: Callable[[], None] | None = None) -> None:
        """Start the cameras and serve HTTP on `settings.host:port` until Ctrl-C or SIGTERM.

        The first signal calls `on_stopping`, stops the cameras and drains the bus, then the server exits; a second
        signal exits at once.
        """
        config = uvicorn.Config(
            self.app,
            host=self.settings.host,
            port=self.settings.port,
            log_level="warning",
            log_config=None,  # uvicorn logs through the root handler, so through the redacting formatter
            timeout_graceful_shutdown=5,
        )
        server = _Server(config, self, on_stopping)
        self.start()
        server.run()

    def start(self) -> None:
        self.worker.start()
        self._pump.start()
        self.retention.start()
        self.digests.start()
        if self.mqtt is not None:
            self.mqtt.start()

    def stop_cameras(self, drain_timeout: float = 20.0) -> None:
        """Stop cameras (closing incidents, flushing clips), then wait for the store to apply every event."""
        self.worker.stop()
        deadline = time.monotonic() + drain_timeout
        while self._backlog() and time.monotonic() < deadline:
            time.sleep(0.1)
        left = self._backlog()
        if left:
            log.warning("shutdown: %d events not yet stored after %.0f s", left, drain_timeout)
        self._pump_stop.set()
        self.retention.stop()
        self.digests.stop()
        if self.mqtt is not None:  # after the drain: the last stored events still go out, then `offline`
            self.mqtt.stop()

    def _backlog(self) -> int:
        try:
            return int(self.bus.backlog(STORE_GROUP))
        except Exception:  # Redis down: events are spooled on disk and flushed on the next start
            return 0

    def workers(self) -> list[WorkerInfo]:
        """This process as `GET /v1/workers` shows it: the summary a distributed worker puts in its heartbeat."""
        load = self.worker.load()
        return [
            WorkerInfo(
                id=self.worker.id,
                host=self.worker.host,
                cameras=load.cameras,
                fps=round(load.fps, 2),
                lag_s=round(load.lag_s, 2),
                last_seen=datetime.now(UTC),
            )
        ]

    def _spools(self) -> list[WorkerSpool]:
        """This process's event spool for `/metrics` (only registered when the bus is a `RedisStreamBus`)."""
        stats = cast(RedisStreamBus, self.bus).spool_stats()
        return [WorkerSpool(self.worker.id, stats.bytes, stats.dropped)]

    def latest_frame(self, camera_id: str) -> npt.NDArray[np.uint8] | None:
        """The last frame the camera's pipeline analysed (RGB), or None when it is not running here (yet)."""
        for runtime in self.worker.runtimes():
            if runtime.camera.id == camera_id:
                frame = runtime.pipeline.last_frame
                return frame.image if frame is not None else None
        return None

    def live_incidents(self) -> list[str]:
        """Ids of the incidents open in this process's cameras (retention never deletes their evidence)."""
        return [i.id for r in self.worker.runtimes() for i in r.pipeline.incidents.live()]

    def _pump_metrics(self) -> None:
        while not self._pump_stop.wait(2.0):
            for s in self.worker.status():
                self.metrics.camera_frame_rate(s.camera_id, s.fps)
                self.metrics.camera_state(s.camera_id, s.state)
                dropped, reconnects = self._seen.get(s.camera_id, (0, 0))
                if s.dropped > dropped:
                    self.metrics.camera_dropped(s.camera_id, s.dropped - dropped)
                for _ in range(max(0, s.reconnects - reconnects)):
                    self.metrics.camera_reconnected(s.camera_id)
                self._seen[s.camera_id] = (max(s.dropped, dropped), max(s.reconnects, reconnects))


class _Server(uvicorn.Server):
    """Uvicorn server whose first Ctrl-C stops the cameras and drains the bus before the HTTP server exits."""

    def __init__(
        self, config: uvicorn.Config, service: EmbeddedService, on_stopping: Callable[[], None] | None
    ) -> None:
        super().__init__(config)
        self.service = service
        self.on_stopping = on_stopping
        self._stopping = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._stopping:  # a second Ctrl-C: exit now
            super().handle_exit(sig, frame)
            return
        self._stopping = True
        if self.on_stopping is not None:
            self.on_stopping()

        def stop() -> None:
            self.service.stop_cameras()
            self.should_exit = True

        threading.Thread(target=stop, name="shutdown", daemon=True).start()
