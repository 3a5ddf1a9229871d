"""The distributed worker's composition root (`safewatch worker`): a `CameraWorker` wired to Redis.

Camera configs come from Redis (published there by the API from its config directory); the worker claims a fair
share of the cameras by lease, publishes incident events to the Redis stream (spooled under
`<data_dir>/spool/<worker id>` while Redis is down) and writes evidence to the shared media directory, the path the
API serves. `serve` runs until its stop event is set, then hands the cameras over (open incidents stay open and
continue on another worker) and releases the leases at once.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from pipelines.bus.factory import make_bus
from pipelines.bus.redis_client import RedisUnavailable, connect
from pipelines.bus.redis_streams import RedisStreamBus
from pipelines.camera.assemble import EvidenceOptions
from pipelines.camera.pipeline import EventSink
from pipelines.camera.sinks import BusSink, JsonlSink
from pipelines.distributed.config_sync import RedisConfigSource
from pipelines.distributed.incident_state import IncidentStateStore
from pipelines.distributed.leases import LeaseConfig, LeaseManager
from pipelines.distributed.model_catalog import RedisModelCatalog
from pipelines.worker.camera_worker import CameraWorker, Distributed
from pipelines.worker.data_dir import prepare_data_dir
from pipelines.worker.evidence_chain import open_chain
from pipelines.worker.model_sync import ModelSync
from pipelines.worker.settings import RuntimeSettings, configure_camera_process
from vision.detect.batcher import BatcherPool
from vision.detect.model_store import ModelCache, ModelStore
from vision.detect.registry import ModelRegistry

log = logging.getLogger(__name__)

NO_REDIS = "SAFEWATCH_REDIS_URL is not set (distributed mode needs Redis; use `safewatch run` without it)"


class StartupError(Exception):
    """A service could not start: a configuration problem (exit status 2) or an unreachable dependency (1).

    `field` names the option at fault (e.g. `events_log`), so a CLI can name its own flag for it.
    """

    def __init__(self, message: str, *, exit_code: int = 2, field: str | None = None) -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.field = field


def default_worker_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class WorkerOptions(BaseModel):
    """How this worker takes part in the deployment (flags, not environment)."""

    model_config = ConfigDict(extra="forbid")

    worker_id: str = Field(default_factory=default_worker_id, description="Stable id; also names the event spool")
    leases: LeaseConfig = Field(default_factory=LeaseConfig)
    poll_s: float = Field(default=1.0, gt=0, description="Seconds between config/lease rounds")
    events_log: Path | None = Field(default=None, description="Also append every published event to this JSONL file")

    @field_validator("worker_id")
    @classmethod
    def _safe_id(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9._-]{1,128}", value):
            raise ValueError(f"{value!r}: use letters, digits, '.', '_' and '-' only")
        return value


class WorkerRuntime:
    """Redis client, bus, leases, incident-state store and the `CameraWorker`; `StartupError` when one fails."""

    def __init__(self, settings: RuntimeSettings, options: WorkerOptions) -> None:
        if not settings.redis_url:
            raise StartupError(NO_REDIS)
        self.id = options.worker_id
        prepare_data_dir(settings.data_dir)  # the event spool and evidence (umask 0o077)
        try:
            # bounded commands: over a dead link (a partition drops packets) a lease renewal or state save fails within
            # a renewal interval, and the worker carries on as in an outage, instead of hanging until TCP gives up
            self.client = connect(settings.redis_url, timeout_s=options.leases.renew_s)
        except RedisUnavailable as exc:
            raise StartupError(str(exc), exit_code=1) from None
        prefix = settings.redis_prefix
        try:
            self.bus = make_bus(
                settings.redis_url,
                spool_dir=settings.data_dir / "spool" / self.id,
                prefix=prefix,
                spool_max_bytes=settings.spool_max_bytes,
            )
        except ValueError as exc:
            self.client.close()
            raise StartupError(str(exc)) from None
        try:
            self.events_log = JsonlSink(options.events_log) if options.events_log is not None else None
        except OSError as exc:
            self.bus.close()
            self.client.close()
            raise StartupError(f"{options.events_log}: {exc.strerror or exc}", field="events_log") from None
        redis_bus = self.bus if isinstance(self.bus, RedisStreamBus) else None  # always, with a Redis URL
        leases = LeaseManager(
            self.client,
            prefix,
            self.id,
            host=socket.gethostname(),
            config=options.leases,
            spool=redis_bus.spool_stats if redis_bus is not None else None,
            stream=redis_bus.stream if redis_bus is not None else None,  # where lease grants are recorded
        )
        sinks: list[EventSink] = [BusSink(self.bus), *([self.events_log] if self.events_log is not None else [])]
        configure_camera_process(settings)
        self.worker = CameraWorker(
            RedisConfigSource(self.client, prefix),
            ModelRegistry(settings.models_dir, precision=settings.precision, session=settings.camera_session),
            sinks,
            evidence=EvidenceOptions(
                media_root=settings.media_dir, key=settings.signing_key, chain=open_chain(settings, self.id)
            ),
            poll_s=min(options.poll_s, options.leases.renew_s),
            distributed=Distributed(
                leases,
                IncidentStateStore(self.client, prefix),
                flushed=redis_bus.wait_flushed if redis_bus is not None else None,
            ),
            batching=BatcherPool() if settings.batching else None,
            models=ModelSync(  # pushed models: the catalogue in Redis, the files on the shared media volume
                RedisModelCatalog(self.client, prefix),
                ModelCache(ModelStore(settings.model_store_dir), settings.model_cache_dir),
                self.id,
            ),
        )

    def serve(self, stop: threading.Event, on_stopping: Callable[[], None] | None = None) -> None:
        """Run the cameras until `stop` is set; then hand them over and close everything."""
        self.worker.start()
        while not stop.wait(1.0):  # a timed wait, so signal handlers run promptly in the main thread
            pass
        if on_stopping is not None:
            on_stopping()
        self.worker.stop()
        self.bus.close()
        if self.events_log is not None:
            self.events_log.close()
        self.client.close()
