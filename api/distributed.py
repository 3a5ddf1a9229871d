"""Distributed mode, API side: Redis connection, `GET /v1/workers` from worker heartbeats, camera config sync.

`safewatch api` (cli/api.py) and `safewatch worker` (api/cli/worker.py) share one Redis (`SAFEWATCH_REDIS_URL`)
and a key prefix (`--redis-prefix`, env `SAFEWATCH_REDIS_PREFIX`, default `safewatch`, the bus's default too):

- events: the `RedisStreamBus` stream `<prefix>:events` (workers publish, the API's store consumer applies);
- camera configs: the API mirrors its YAML config directory into `<prefix>:cameras` (`ConfigSync`: at start, then
  every `interval_s` when a file's mtime/size changed), so `PUT/DELETE /v1/cameras`, which write the YAML files,
  and hand edits reach the workers within about `interval_s` + the workers' poll interval;
- leases, heartbeats and incident states: written by the workers (pipelines/distributed/leases.py,
pipelines/distributed/incident_state.py);
  `RedisWorkers` turns the live heartbeats into `WorkerInfo`s.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import redis

from api.context import WorkerInfo
from pipelines.config.source import DirConfigSource
from pipelines.distributed.config_sync import ConfigPublisher
from pipelines.distributed.leases import client_from_url, read_heartbeats
from vision.redact import redact_url

log = logging.getLogger(__name__)

DEFAULT_PREFIX = "safewatch"
PREFIX_ENV = "SAFEWATCH_REDIS_PREFIX"


class RedisUnavailable(RuntimeError):
    """Redis could not be reached at start-up (the message names the redacted URL)."""


def redis_prefix(value: str | None = None) -> str:
    """The key prefix: the CLI flag, else `SAFEWATCH_REDIS_PREFIX`, else `safewatch`."""
    return value or os.environ.get(PREFIX_ENV) or DEFAULT_PREFIX


def connect(url: str, *, timeout_s: float | None = None) -> redis.Redis:
    """A decoding Redis client that answered PING; RedisUnavailable (with the redacted URL) when it does not.

    `timeout_s` bounds every command and connect (default: none, as `redis-py`); the API sets it so a hung Redis
    fails `GET /v1/workers`, `/metrics` and the config sync instead of blocking their threads.
    """
    try:
        if timeout_s is None:
            client = client_from_url(url)
        else:
            client = redis.Redis.from_url(
                url, decode_responses=True, socket_timeout=timeout_s, socket_connect_timeout=timeout_s
            )
        client.ping()
    except (redis.RedisError, ValueError) as exc:
        raise RedisUnavailable(f"cannot reach Redis at {redact_url(url)}: {exc}") from None
    return client


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
