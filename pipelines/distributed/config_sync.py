"""Camera configs through Redis (distributed mode).

- `RedisConfigSource(client, prefix)`: the hash `<prefix>:cameras` (camera id → camera JSON, stream paths already
  resolved) and the counter `<prefix>:cameras:version`, bumped on every change; a worker reads the hash only when
  the counter moved. Every change is also announced on the pub/sub channel `<prefix>:cameras:changed`.
- `ConfigPublisher(dir_source, client, prefix)`: what `safewatch api` runs in distributed mode: loads the directory
  into Redis at start and re-syncs whenever files change (mtime poll), so `PUT/DELETE /v1/cameras` (which write the
  YAML files) and hand edits reach every worker within a poll interval. Only differences are written, in one
  transaction with the version bump, so several API processes over the same directory agree.
"""

from __future__ import annotations

import json
import logging
from typing import cast

import redis
from pydantic import ValidationError

from pipelines.config.camera import CameraConfig
from pipelines.config.source import DirConfigSource

log = logging.getLogger(__name__)


def camera_json(cfg: CameraConfig) -> str:
    """The config as stored in Redis: canonical JSON with stream paths resolved (workers have no base dir)."""
    data = cfg.model_dump(mode="json")
    data["streams"]["detect"] = cfg.detect_source
    if cfg.record_source is not None:
        data["streams"]["record"] = cfg.record_source
    return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


class RedisConfigSource:
    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self._version: str | None = None
        self._cameras: dict[str, CameraConfig] = {}
        self._raw: dict[str, str] = {}

    def cameras(self) -> dict[str, CameraConfig]:
        version = cast(str | None, self.client.get(f"{self.prefix}:cameras:version"))
        if version is not None and version == self._version:
            return dict(self._cameras)
        raw = cast(dict[str, str], self.client.hgetall(f"{self.prefix}:cameras"))
        cameras: dict[str, CameraConfig] = {}
        for camera_id, text in sorted(raw.items()):
            if text == self._raw.get(camera_id) and camera_id in self._cameras:
                cameras[camera_id] = self._cameras[camera_id]
                continue
            try:
                cfg = CameraConfig.model_validate_json(text)
            except ValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors(include_input=False)
                )
                log.error("camera %s: config in Redis does not validate: %s", camera_id, problems)
                if camera_id in self._cameras:
                    cameras[camera_id] = self._cameras[camera_id]
                continue
            if cfg.enabled and cfg.id == camera_id:
                cameras[camera_id] = cfg
        self._version, self._cameras, self._raw = version, cameras, raw
        return dict(cameras)


class ConfigPublisher:
    """Mirror a config directory into Redis (see the module docs); call `sync()` periodically."""

    def __init__(self, source: DirConfigSource, client: redis.Redis, prefix: str) -> None:
        self.source = source
        self.client = client
        self.prefix = prefix

    def sync(self) -> int:
        """Write the differences between the directory and Redis; returns how many cameras changed."""
        wanted = {cid: camera_json(cfg) for cid, cfg in self.source.cameras().items()}
        key = f"{self.prefix}:cameras"
        current = cast(dict[str, str], self.client.hgetall(key))
        changed = {cid: text for cid, text in wanted.items() if current.get(cid) != text}
        removed = sorted(set(current) - set(wanted))
        if not changed and not removed:
            return 0
        pipe = self.client.pipeline(transaction=True)
        for camera_id, text in changed.items():
            pipe.hset(key, camera_id, text)
        if removed:
            pipe.hdel(key, *removed)
        pipe.incr(f"{key}:version")
        pipe.publish(f"{key}:changed", json.dumps({"changed": sorted(changed), "removed": removed}))
        pipe.execute()
        log.info("camera configs published", extra={"changed": sorted(changed), "removed": removed})
        return len(changed) + len(removed)
