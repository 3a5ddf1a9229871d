"""Distributed mode, API side: `GET /v1/workers` and the worker gauges from heartbeats, camera config sync.

The API service (api/service_api.py) and the workers (pipelines/worker/runtime.py) share one Redis
(`Settings.redis_url`) and a key prefix (`Settings.redis_prefix`, default `safewatch`, the bus's default too):

- events: the `RedisStreamBus` stream `<prefix>:events` (workers publish, the API's store consumer applies);
- camera configs: the API mirrors its YAML config directory into `<prefix>:cameras` (`ConfigSync`: at start, then
  every `interval_s` when a file's mtime/size changed), so `PUT/DELETE /v1/cameras`, which write the YAML files,
  and hand edits reach the workers within about `interval_s` + the workers' poll interval;
- leases, heartbeats and incident states: written by the workers (pipelines/distributed/leases.py,
  pipelines/distributed/incident_state.py); `RedisWorkers` turns the live heartbeats into `WorkerInfo`s.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import redis

from api.workers import WorkerInfo
from pipelines.config.source import DirConfigSource
from pipelines.distributed.config_sync import ConfigPublisher
from pipelines.distributed.leases import read_heartbeats

log = logging.getLogger(__name__)


class RedisWorkers:
    """`WorkersProvider` for `create_app`: the live workers' heartbeats."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix

    def __call__(self) -> list[WorkerInfo]:
        return [
            WorkerInfo(id=h.id, host=h.host, cameras=h.cameras, fps=h.fps, lag_s=h.lag_s, last_seen=h.last_seen)
            for h in read_heartbeats(self.client, self.prefix)
        ]


class ConfigSync:
    """Mirror the config directory into Redis in a background thread (see the module docs)."""

    def __init__(self, config_dir: Path, client: redis.Redis, prefix: str, *, interval_s: float = 1.0) -> None:
        self.publisher = ConfigPublisher(DirConfigSource(config_dir), client, prefix)
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> int:
        """Publish the directory now (returns how many cameras changed), then keep it in sync."""
        changed = self.publisher.sync()
        self._thread = threading.Thread(target=self._run, name="config-sync", daemon=True)
        self._thread.start()
        return changed

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.publisher.sync()
            except redis.RedisError as exc:
                log.warning("camera config sync failed: %s", exc)
            except Exception:
                log.exception("camera config sync failed")
