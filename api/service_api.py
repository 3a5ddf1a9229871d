"""The distributed API's composition root (`safewatch api`): store, REST, SSE and webhooks; cameras run in workers.

It consumes the Redis event stream into the store (`Settings.database_url`; PostgreSQL when several API processes
share it), answers `GET /v1/workers` and the worker gauges of `/metrics` from the workers' heartbeats, and mirrors
the camera config directory into Redis for the workers (at start, then whenever a file changes — which is what
`PUT/DELETE /v1/cameras` do), and raises camera_offline for cameras no worker holds (api/unheld.py). It owns the
store, so it runs retention (`api/retention.py`): the workers write
evidence to the media root they share with it (`SAFEWATCH_MEDIA_ROOT`), it serves and deletes it.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import uvicorn

from api.app import create_app
from api.distributed import ConfigSync, RedisWorkers
from api.metrics import Metrics, WorkerSpool
from api.mqtt.cameras import ConfiguredSites, distributed_reports
from api.mqtt.publisher import from_settings as mqtt_publisher
from api.reports.scheduler import DigestScheduler
from api.retention import Retention
from api.settings import Settings
from api.store.db import Store
from api.unheld import UnheldCameras
from pipelines.bus.factory import make_bus
from pipelines.bus.redis_client import RedisUnavailable, connect
from pipelines.config.source import DirConfigSource
from pipelines.distributed.leases import read_heartbeats
from pipelines.distributed.model_catalog import RedisModelCatalog
from pipelines.worker.data_dir import prepare_data_dir
from pipelines.worker.evidence_chain import open_chain
from pipelines.worker.runtime import NO_REDIS, StartupError

log = logging.getLogger(__name__)

REDIS_TIMEOUT_S = 5.0  # heartbeats (GET /v1/workers, /metrics) and config sync: a hung Redis fails, never blocks


class ApiService:
    """Redis client, bus (consumed only), heartbeat reader, config sync and the app; `StartupError` when one fails."""

    def __init__(self, settings: Settings, *, sync_interval_s: float = 1.0) -> None:
        if not settings.redis_url:
            raise StartupError(NO_REDIS)
        if not settings.config_dir.is_dir():
            raise StartupError(f"config dir {settings.config_dir}: no such directory")
        self.settings = settings
        prepare_data_dir(settings.data_dir)  # the SQLite store and the media dir (umask 0o077)
        try:
            self.client = connect(settings.redis_url, timeout_s=REDIS_TIMEOUT_S)
        except RedisUnavailable as exc:
            raise StartupError(str(exc), exit_code=1) from None
        self._spool = tempfile.TemporaryDirectory(prefix="safewatch-api-spool-")  # the API publishes nothing
        try:
            self.bus = make_bus(settings.redis_url, spool_dir=Path(self._spool.name), prefix=settings.redis_prefix)
        except ValueError as exc:
            self.client.close()
            self._spool.cleanup()
            raise StartupError(str(exc)) from None
        workers = RedisWorkers(self.client, settings.redis_prefix)
        store = Store(settings.database_url)
        metrics = Metrics(store)
        metrics.watch_workers(workers)  # /metrics: the workers' heartbeats, read at scrape time
        metrics.watch_spools(  # and their event spools' size and drops, from the same heartbeats
            lambda: [
                WorkerSpool(h.id, h.spool_bytes, h.spool_dropped)
                for h in read_heartbeats(self.client, settings.redis_prefix)
            ]
        )
        models = RedisModelCatalog(self.client, settings.redis_prefix)  # pushed models: the workers follow it
        self.app = create_app(settings, store=store, metrics=metrics, bus=self.bus, workers=workers, models=models)
        self.sync = ConfigSync(settings.config_dir, self.client, settings.redis_prefix, interval_s=sync_interval_s)
        self.retention = Retention(settings, store, chain=open_chain(settings, "main"))  # tombstones of retention
        self.digests = DigestScheduler(settings, store)  # daily report digests (api/reports/scheduler.py)
        # camera_offline for cameras no worker holds (one API process raises it, under a Redis lock: api/unheld.py)
        self.unheld = UnheldCameras(
            self.client, settings.redis_prefix, DirConfigSource(settings.config_dir).cameras, self.bus
        )
        # SAFEWATCH_MQTT_URL: stored events and camera status (configured cameras, held per the heartbeats) to MQTT
        sites = ConfiguredSites(settings.config_dir)
        self.mqtt = mqtt_publisher(settings, store, metrics, distributed_reports(workers, sites))

    def start(self) -> int:
        """Publish the camera configs (returns how many changed) and keep them in sync; start retention."""
        changed = self.sync.start()
        self.retention.start()
        self.digests.start()
        self.unheld.start()
        if self.mqtt is not None:
            self.mqtt.start()
        return changed

    def serve(self) -> None:
        """Serve HTTP on `settings.host:port` until Ctrl-C or SIGTERM, then close everything."""
        server = uvicorn.Server(
            uvicorn.Config(
                self.app, host=self.settings.host, port=self.settings.port, log_level="warning", log_config=None
            )
        )
        try:
            server.run()
        finally:
            self.close()

    def close(self) -> None:
        if self.mqtt is not None:
            self.mqtt.stop()
        self.retention.stop()
        self.digests.stop()
        self.unheld.stop()
        self.sync.stop()
        self.bus.close()
        self.client.close()
        self._spool.cleanup()
