"""Where a worker gets its camera configs from disk: the YAML directory (embedded mode, and the API's source of truth).

`DirConfigSource(config_dir)`: every `*.yaml`/`*.yml` in the directory (also written by the HTTP API). Files are
re-read when their mtime changes; a file that stops validating keeps its last good config running and its problems
are logged once per change; disabled cameras and duplicate ids are left out. The Redis side (distributed mode) is
`pipelines.distributed.config_sync`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

from pipelines.config.camera import CameraConfig, ConfigError, load_camera_config

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


def _mtime(path: Path) -> tuple[int, int]:
    try:
        st = path.stat()
    except OSError:
        return (0, 0)
    return (st.st_mtime_ns, st.st_size)
