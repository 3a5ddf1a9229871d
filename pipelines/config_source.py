"""Where a worker gets its camera configs: the YAML directory (embedded) or Redis (distributed).

- `DirConfigSource(config_dir)`: every `*.yaml`/`*.yml` in the directory (the source of truth, also written by the
  HTTP API). Files are re-read when their mtime changes; a file that stops validating keeps its last good config
  running and its problems are logged once per change; disabled cameras and duplicate ids are left out.
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
from pathlib import Path
from typing import Protocol, cast

import redis
from pydantic import ValidationError

from pipelines.config import CameraConfig, ConfigError, load_camera_config

log = logging.getLogger(__name__)


class ConfigSource(Protocol):
    def cameras(self) -> dict[str, CameraConfig]:
        """The enabled cameras to run, by id (the last good config of each)."""
        ...


class DirConfigSource:
    def __init__(self, config_dir: Path) -> None:
        self.config_dir = config_dir
        # path → ((mtime ns, size), last good config, whether the file itself is valid)
        self._files: dict[Path, tuple[tuple[int, int], CameraConfig | None, bool]] = {}

    def cameras(self) -> dict[str, CameraConfig]:
        paths = (
            sorted(p for p in self.config_dir.glob("*.y*ml") if p.name[0] != ".") if self.config_dir.is_dir() else []
        )
        for gone in set(self._files) - set(paths):
            del self._files[gone]
        wanted: dict[str, CameraConfig] = {}
        for path in paths:
            cfg = self._read(path)
            if cfg is not None and cfg.enabled and cfg.id not in wanted:
                wanted[cfg.id] = cfg
        return wanted

    def path_of(self, camera_id: str) -> Path | None:
        for path, (_, cfg, _valid) in self._files.items():
            if cfg is not None and cfg.id == camera_id:
                return path
        return None

    def _read(self, path: Path) -> CameraConfig | None:
        mtime = _mtime(path)
        known = self._files.get(path)
        if known is not None and known[0] == mtime and known[2]:
            return known[1]
        last_good = known[1] if known is not None else None
        try:
            cfg = load_camera_config(path)
        except ConfigError as exc:  # invalid files are retried every poll (a stream file may appear later)
            if known is None or known[0] != mtime:
                for problem in exc.problems:
                    log.error("camera config problem: %s", problem)
            self._files[path] = (mtime, last_good, False)  # keep the last good config running
            return last_good
        self._files[path] = (mtime, cfg, True)
        return cfg


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
                log.error("camera %s: config in Redis does not validate: %s", camera_id, exc)
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


def _mtime(path: Path) -> tuple[int, int]:
    try:
        st = path.stat()
    except OSError:
        return (0, 0)
    return (st.st_mtime_ns, st.st_size)
