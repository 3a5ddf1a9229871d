"""Where the camera status comes from, per composition root (`CameraReports` providers for the publisher).

- embedded (`safewatch run`): the process's own `CameraWorker` (state and fps of every camera it runs);
- distributed (`safewatch api`): every configured camera, `held` when a live worker's heartbeat lists it.
Sites come from the running cameras' configs, else from the config directory (re-read at most every `refresh_s`).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

from api.camera_store import CameraStore
from api.mqtt.status import CameraReport, CameraReports
from api.workers import WorkersProvider
from pipelines.worker.camera_worker import CameraWorker

log = logging.getLogger(__name__)


class ConfiguredSites:
    """camera id → site of the valid camera configs in `config_dir` (cached for `refresh_s`)."""

    def __init__(self, config_dir: Path, refresh_s: float = 10.0) -> None:
        self._store = CameraStore(config_dir)
        self._refresh_s = refresh_s
        self._sites: dict[str, str] = {}
        self._read_at: float | None = None

    def __call__(self) -> dict[str, str]:
        now = time.monotonic()
        if self._read_at is None or now - self._read_at >= self._refresh_s:
            cameras, _problems = self._store.scan()  # the problems are reported by the config loader itself
            self._sites = {c.config.id: c.config.site for c in cameras}
            self._read_at = now
        return dict(self._sites)


def embedded_reports(worker: CameraWorker, configured: ConfiguredSites) -> CameraReports:
    """The cameras of this process's worker, with their state and fps."""

    def reports() -> list[CameraReport]:
        running = {r.camera.id: r.camera.site for r in worker.runtimes()}
        status = worker.status()
        sites = configured() if any(s.camera_id not in running for s in status) else {}
        return [
            CameraReport(s.camera_id, running.get(s.camera_id) or sites.get(s.camera_id, ""), s.state, s.fps)
            for s in status
        ]

    return reports


def distributed_reports(workers: WorkersProvider, configured: ConfiguredSites) -> CameraReports:
    """Every configured camera; `held` when a live worker runs it (per-camera state and fps are not known here)."""

    def reports() -> list[CameraReport]:
        held = {camera for w in workers() for camera in w.cameras}
        return [
            CameraReport(camera, site, None, None, held=camera in held) for camera, site in sorted(configured().items())
        ]

    return reports
