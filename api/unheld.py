"""Distributed mode, API side: camera_offline for a camera that no worker holds.

A worker raises camera_offline for the cameras it runs (pipelines/rules/health.py); a camera that no worker holds
(every worker dead, or none can run it) has nobody to do that, so the API process does: a configured, enabled camera
with the health rule on and no lease (`<prefix>:lease:<camera>`) for its `offline_after_s` gets a camera_offline
incident (labels `["no_worker"]`, no evidence: there is no frame), closed as soon as a worker holds it again.

One raiser: every API process runs `UnheldCameras`, but only the holder of the Redis lock `<prefix>:health:lock`
(`SET NX PX`, extended by its holder with a compare-and-`PEXPIRE`) checks; another takes over within the lock's TTL
when it dies. The state lives in Redis, hash `<prefix>:health:unheld` (camera → `{since, opened}`), so a new lock
holder (or a restarted API) continues it. Events go onto the bus like the workers' events and reach the store (and
webhooks, SSE, MQTT) through the store consumer; they are idempotent: the incident id is derived from the camera and
the moment it was first seen unheld (uuid5), `opened` is seq 0 and `closed` seq 1, and the Redis state is written
after the publish, so a crash in between re-publishes the same `(id, seq)`, which the store de-duplicates.
`offset_s` is the seconds since the camera was first seen unheld.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, cast

import redis

from pipelines.bus.base import EventBus
from pipelines.config.camera import CameraConfig
from pipelines.config.health import CAMERA_OFFLINE
from pipelines.distributed.leases import lease_owners
from pipelines.events import EventType, IncidentEvent, Severity
from pipelines.rules.health import NO_WORKER

log = logging.getLogger(__name__)

_NAMESPACE = uuid.UUID("6f1c1f0e-5a53-4f57-9a43-8b1f5c0d2e11")
_EXTEND = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


class UnheldCameras:
    """Raises camera_offline for cameras without a lease (module docs). `cameras()` gives the configured, enabled
    cameras; `round()` is one check (the thread started by `start` calls it every `interval_s`)."""

    def __init__(
        self,
        client: redis.Redis,
        prefix: str,
        cameras: Callable[[], dict[str, CameraConfig]],
        bus: EventBus,
        *,
        interval_s: float = 2.0,
        owner: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client, self.prefix, self.cameras, self.bus = client, prefix, cameras, bus
        self.interval_s = interval_s
        self.owner = owner or uuid.uuid4().hex
        self.clock = clock
        self._extend = client.register_script(_EXTEND)
        self._release = client.register_script(_RELEASE)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def state_key(self) -> str:
        return f"{self.prefix}:health:unheld"

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="unheld-cameras", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
        with contextlib.suppress(redis.RedisError):  # let another API process take over now
            self._release(keys=[f"{self.prefix}:health:lock"], args=[self.owner])

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.round()
            except redis.RedisError as exc:
                log.warning("unheld-camera check failed: %s", exc)
            except Exception:
                log.exception("unheld-camera check failed")

    def leader(self) -> bool:
        """Take or extend the lock; True when this process is the one that checks."""
        key, ttl_ms = f"{self.prefix}:health:lock", max(1000, round(self.interval_s * 3000))
        if self._extend(keys=[key], args=[self.owner, ttl_ms]) == 1:
            return True
        return bool(self.client.set(key, self.owner, nx=True, px=ttl_ms))

    def round(self) -> list[IncidentEvent]:
        """One check (only on the lock holder): returns the events it published."""
        if not self.leader():
            return []
        now = self.clock()
        held = set(lease_owners(self.client, self.prefix))
        watched = {cid: cfg for cid, cfg in self.cameras().items() if cfg.health.offline_on}
        raw = cast(dict[str, str], self.client.hgetall(self.state_key))
        state: dict[str, dict[str, Any]] = {cid: json.loads(text) for cid, text in raw.items()}
        events: list[IncidentEvent] = []
        for cid in sorted(set(state) | set(watched)):
            cfg, entry = watched.get(cid), state.get(cid)
            if cfg is None or cid in held:
                if entry is not None:
                    if entry["opened"]:
                        events.append(self._publish(cid, entry, now, EventType.closed))
                    self.client.hdel(self.state_key, cid)
                continue
            if entry is None:
                health = cfg.health
                entry = {"since": now, "opened": False, "site": cfg.site, "after_s": health.offline_after_s,
                         "severity": health.offline_severity.value}  # fmt: skip
                self.client.hset(self.state_key, cid, json.dumps(entry))
            elif not entry["opened"] and now - float(entry["since"]) >= cfg.health.offline_after_s:
                entry["after_s"] = cfg.health.offline_after_s
                events.append(self._publish(cid, entry, now, EventType.opened))
                entry["opened"] = True
                self.client.hset(self.state_key, cid, json.dumps(entry))
        return events

    def _publish(self, camera_id: str, entry: dict[str, Any], now: float, type_: EventType) -> IncidentEvent:
        since = float(entry["since"])
        opened_at = min(since + float(entry["after_s"]), now)
        event = IncidentEvent(
            id=str(uuid.uuid5(_NAMESPACE, f"{self.prefix}:{camera_id}:{since:.6f}")),
            type=type_,
            camera_id=camera_id,
            site=str(entry["site"]),
            rule=CAMERA_OFFLINE,
            severity=Severity(entry["severity"]),
            started_at=datetime.fromtimestamp(opened_at, tz=UTC),
            updated_at=datetime.fromtimestamp(now, tz=UTC),
            ended_at=datetime.fromtimestamp(now, tz=UTC) if type_ is EventType.closed else None,
            offset_s=round(now - since, 3),
            labels=[NO_WORKER],
            confidence=1.0,
            seq=0 if type_ is EventType.opened else 1,
        )
        self.bus.publish(event)
        log.info("camera %s: camera_offline %s (no worker holds it)", camera_id, type_.value)
        return event
