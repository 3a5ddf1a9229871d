"""The catalogue of pushed models (`POST /v1/models`): name → versions (sha256 + card), newest first, and which
versions each camera runs.

The bytes are in the content-addressed store (`vision.detect.model_store.ModelStore`, `<media_root>/models`, the
volume the API and the workers share in distributed mode); the catalogue says which of them are published:

- `RedisModelCatalog(client, prefix)` (distributed): the hash `<prefix>:models` (name → JSON list of versions) and the
  counter `<prefix>:models:version`, bumped on every change (a worker re-reads the hash only when it moved); what each
  camera runs is the hash `<prefix>:models:running` (camera id → worker, versions, time), written by the worker that
  runs it.
- `LocalModelCatalog(path)` (embedded `safewatch run`, tests): the same in one JSON file beside the store, and the
  running versions in memory (the API and the cameras share the object).

A camera runs, per model name, the version its config pins (`models: {name: sha256-prefix}`) or else the newest; a
name without pushed versions runs the models directory's own file (`resolve_version`).
"""

from __future__ import annotations

import json
import logging
import os
import pathlib
import threading
import time
from datetime import UTC, datetime
from typing import Any, Protocol, cast

import redis
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

log = logging.getLogger(__name__)

#: A running report older than this is stale (its worker died or the camera stopped there).
RUNNING_TTL_S = 60.0
#: Versions kept per name (the oldest beyond it leave the catalogue; pins to them stop resolving).
MAX_VERSIONS = 10


class ModelVersion(BaseModel):
    """One pushed version of a model."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=0, description="bytes of the ONNX file")
    pushed_at: datetime
    card: dict[str, Any] = Field(description="the validated card (file = <sha256>.onnx)")


class Running(BaseModel):
    """What one camera runs, as its worker last reported it."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    worker: str
    models: dict[str, str] = Field(description="model name → sha256 of the version running")
    error: str | None = Field(default=None, description="why a version was refused (the camera runs `models`)")
    at: float = Field(description="unix time of the report")


_VERSIONS = TypeAdapter(list[ModelVersion])


class ModelCatalog(Protocol):
    def versions(self) -> dict[str, list[ModelVersion]]:
        """Every pushed name → its versions, newest first."""
        ...

    def publish(self, version: ModelVersion) -> None:
        """Make `version` the newest of its name (moved to the front if it was there)."""
        ...

    def remove(self, name: str) -> list[ModelVersion]:
        """Drop every version of `name`; returns them."""
        ...

    def report(self, camera_id: str, worker: str, models: dict[str, str], *, error: str | None = None) -> None:
        """The versions `camera_id` runs now on `worker` (empty, no error: stopped there); `error`: a refusal."""
        ...

    def running(self) -> dict[str, Running]:
        """camera id → its latest fresh report."""
        ...


def resolve_version(versions: list[ModelVersion], pin: str | None) -> ModelVersion | None:
    """The version a camera runs: the one whose sha256 starts with `pin`, else (no pin) the newest; None when none
    matches (the camera cannot run) or there are none."""
    if pin is None:
        return versions[0] if versions else None
    found = [v for v in versions if v.sha256.startswith(pin)]
    return found[0] if len(found) == 1 else None


def _with(versions: list[ModelVersion], version: ModelVersion) -> list[ModelVersion]:
    return [version, *[v for v in versions if v.sha256 != version.sha256]][:MAX_VERSIONS]


class RedisModelCatalog:
    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client = client
        self.key = f"{prefix}:models"
        self._seen: tuple[str | None, dict[str, list[ModelVersion]]] | None = None

    def versions(self) -> dict[str, list[ModelVersion]]:
        counter = cast(str | None, self.client.get(f"{self.key}:version"))
        if self._seen is not None and self._seen[0] == counter:
            return dict(self._seen[1])
        raw = cast(dict[str, str], self.client.hgetall(self.key))
        out = {}
        for name, text in raw.items():
            try:
                out[name] = _VERSIONS.validate_json(text)
            except ValueError as exc:
                log.error("model catalogue: entry %s does not validate: %s", name, exc)
        self._seen = (counter, out)
        return dict(out)

    def publish(self, version: ModelVersion) -> None:
        def update(pipe: redis.client.Pipeline) -> None:
            text = cast(str | None, pipe.hget(self.key, version.name))
            versions = _with(_VERSIONS.validate_json(text) if text else [], version)
            pipe.multi()
            pipe.hset(self.key, version.name, _VERSIONS.dump_json(versions).decode())
            pipe.incr(f"{self.key}:version")

        self.client.transaction(update, self.key)

    def remove(self, name: str) -> list[ModelVersion]:
        text = cast(str | None, self.client.hget(self.key, name))
        pipe = self.client.pipeline(transaction=True)
        pipe.hdel(self.key, name)
        pipe.incr(f"{self.key}:version")
        pipe.execute()
        return _VERSIONS.validate_json(text) if text else []

    def report(self, camera_id: str, worker: str, models: dict[str, str], *, error: str | None = None) -> None:
        if models or error:
            entry = Running(worker=worker, models=models, error=error, at=time.time())
            self.client.hset(f"{self.key}:running", camera_id, entry.model_dump_json())
            return
        current = cast(str | None, self.client.hget(f"{self.key}:running", camera_id))
        if current is not None and Running.model_validate_json(current).worker == worker:
            self.client.hdel(f"{self.key}:running", camera_id)

    def running(self) -> dict[str, Running]:
        raw = cast(dict[str, str], self.client.hgetall(f"{self.key}:running"))
        entries = {cid: Running.model_validate_json(text) for cid, text in raw.items()}
        return {cid: r for cid, r in entries.items() if time.time() - r.at < RUNNING_TTL_S}


class LocalModelCatalog:
    """The catalogue in one JSON file (written atomically), running reports in memory (module docs)."""

    def __init__(self, path: pathlib.Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._running: dict[str, Running] = {}

    def versions(self) -> dict[str, list[ModelVersion]]:
        with self._lock:
            return self._read()

    def _read(self) -> dict[str, list[ModelVersion]]:
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        return {name: _VERSIONS.validate_python(items) for name, items in raw.items()}

    def _write(self, data: dict[str, list[ModelVersion]]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        out = {name: [v.model_dump(mode="json") for v in items] for name, items in sorted(data.items())}
        tmp.write_text(json.dumps(out, indent=1), encoding="utf-8")
        os.replace(tmp, self.path)

    def publish(self, version: ModelVersion) -> None:
        with self._lock:
            data = self._read()
            data[version.name] = _with(data.get(version.name, []), version)
            self._write(data)

    def remove(self, name: str) -> list[ModelVersion]:
        with self._lock:
            data = self._read()
            gone = data.pop(name, [])
            self._write(data)
            return gone

    def report(self, camera_id: str, worker: str, models: dict[str, str], *, error: str | None = None) -> None:
        with self._lock:
            if models or error:
                self._running[camera_id] = Running(worker=worker, models=models, error=error, at=time.time())
            elif camera_id in self._running and self._running[camera_id].worker == worker:
                del self._running[camera_id]

    def running(self) -> dict[str, Running]:
        with self._lock:
            return {cid: r for cid, r in self._running.items() if time.time() - r.at < RUNNING_TTL_S}


def new_version(name: str, sha256: str, size: int, card: dict[str, Any]) -> ModelVersion:
    return ModelVersion(name=name, sha256=sha256, size=size, pushed_at=datetime.now(UTC), card=card)
