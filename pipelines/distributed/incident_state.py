"""Incident state of a camera in Redis, so the worker that takes a camera over continues its open incidents.

`<prefix>:incidents:<camera>` holds the camera's `ManagerState` JSON (live incidents with id, key, phase, first/last
seen, seq, evidence links; cooldowns — wall clock). Writes are fenced by the camera's lease (a Lua script compares
`<prefix>:lease:<camera>` with the writer's id), so a worker that lost a camera can never overwrite the state of
the new owner.

`StateSaver` is one camera's writer: an `EventSink` placed *before* the bus sink, so the state that contains an
incident is saved before its `opened` event leaves (a worker killed in between makes the next owner continue the
incident rather than open a duplicate), plus `on_frame` after every analysed frame (the pipeline's `run` calls it),
which saves at most every `interval_s` when the state changed (last seen times move while an incident is live).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import cast

import redis
from pydantic import ValidationError

from pipelines.events import IncidentEvent
from pipelines.incidents.manager import IncidentManager, ManagerState
from vision.types import Frame

log = logging.getLogger(__name__)

_FENCED_SET = """
if redis.call('get', KEYS[1]) ~= ARGV[1] then return 0 end
if ARGV[3] == '' then redis.call('del', KEYS[2]) else redis.call('set', KEYS[2], ARGV[2]) end
return 1
"""


class IncidentStateStore:
    """Load, save (lease-fenced) and delete camera incident states (`client` decodes responses)."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self._fenced = client.register_script(_FENCED_SET)

    def key(self, camera_id: str) -> str:
        return f"{self.prefix}:incidents:{camera_id}"

    def _lease(self, camera_id: str) -> str:
        return f"{self.prefix}:lease:{camera_id}"

    def save(self, state: ManagerState, owner: str) -> bool:
        """Store `state` if `owner` holds the camera's lease; False (nothing written) otherwise."""
        keys = [self._lease(state.camera_id), self.key(state.camera_id)]
        return bool(self._fenced(keys=keys, args=[owner, state.model_dump_json(), "set"]))

    def delete(self, camera_id: str, owner: str) -> bool:
        """Forget the camera's state (camera removed), if `owner` holds its lease."""
        return bool(self._fenced(keys=[self._lease(camera_id), self.key(camera_id)], args=[owner, "", ""]))

    def load(self, camera_id: str) -> ManagerState | None:
        text = cast(str | None, self.client.get(self.key(camera_id)))
        if text is None:
            return None
        try:
            state = ManagerState.model_validate_json(text)
        except ValidationError as exc:
            log.error("camera %s: stored incident state unreadable, starting fresh: %s", camera_id, exc)
            return None
        return state if state.camera_id == camera_id else None


class StateSaver:
    """Saves one camera's incident state: on every event (sink) and, when changed, every `interval_s` (on_frame)."""

    def __init__(self, store: IncidentStateStore, camera_id: str, owner: str, *, interval_s: float = 1.0) -> None:
        self.store = store
        self.camera_id = camera_id
        self.owner = owner
        self.interval_s = interval_s
        self.manager: IncidentManager | None = None
        self.saves = 0
        self._last_json = ""
        self._last_save: datetime | None = None
        self._links: dict[str, dict[str, str | None]] = {}

    def bind(self, manager: IncidentManager) -> None:
        self.manager = manager

    def handle(self, event: IncidentEvent) -> None:
        if event.shadow:  # a shadow run's incidents are not the camera's state (pipelines/camera/shadow.py)
            return
        links = {"snapshot_url": event.snapshot_url, "clip_url": event.clip_url}
        self._links[event.id] = {k: v for k, v in links.items() if v}
        self.save(force=True)

    def on_frame(self, _frame: Frame) -> None:
        now = datetime.now(UTC)
        if self._last_save is None or (now - self._last_save).total_seconds() >= self.interval_s:
            self.save()

    def save(self, *, force: bool = False) -> bool:
        """Write the manager's state if it changed (or `force`); False when nothing was written."""
        if self.manager is None:
            return False
        state = self.manager.export_state()
        for snap in state.incidents:
            for name, url in self._links.get(snap.id, {}).items():
                snap.extra.setdefault(name, url)
        live_ids = {s.id for s in state.incidents}
        self._links = {k: v for k, v in self._links.items() if k in live_ids}
        text = state.model_dump_json(exclude={"saved_at"})
        if text == self._last_json and not force:
            return False
        self._last_save = datetime.now(UTC)
        try:
            ok = self.store.save(state, self.owner)
        except redis.RedisError as exc:
            log.warning("camera %s: incident state not saved: %s", self.camera_id, exc)
            return False
        if ok:
            self._last_json = text
            self.saves += 1
        else:
            log.warning("camera %s: incident state not saved: lease not held by %s", self.camera_id, self.owner)
        return ok
