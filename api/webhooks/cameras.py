"""Camera names and time zones for chat messages, read from the camera configs (`api.camera_store.CameraStore`).

A camera's time zone is its schedule's (`schedule.timezone`), as in its snapshots' captions; a camera without one,
or one whose config is gone or broken, shows the server's local time. Lookups are cached for `ttl_s`: a dispatcher
round of many deliveries reads each config once.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from api.camera_store import CameraFileInvalid, CameraNotFound, CameraStore
from api.webhooks.messages import Camera

log = logging.getLogger(__name__)


class CameraDirectory:
    def __init__(self, config_dir: Path, *, ttl_s: float = 30.0) -> None:
        self._store = CameraStore(config_dir)
        self._ttl_s = ttl_s
        self._cache: dict[str, tuple[float, Camera]] = {}
        self._lock = threading.Lock()

    def lookup(self, camera_id: str) -> Camera:
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(camera_id)
            if cached is not None and now - cached[0] < self._ttl_s:
                return cached[1]
        camera = self._read(camera_id)
        with self._lock:
            self._cache[camera_id] = (now, camera)
        return camera

    def _read(self, camera_id: str) -> Camera:
        try:
            config = self._store.get(camera_id).config
        except (CameraNotFound, CameraFileInvalid, OSError):
            return Camera()
        zone = ZoneInfo(config.schedule.timezone) if config.schedule is not None else None
        return Camera(name=config.name, zone=zone)
