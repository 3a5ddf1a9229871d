"""Where a worker gets its camera configs from disk: the YAML directory (embedded mode, and the API's source of truth).

`DirConfigSource(config_dir)`: every `*.yaml`/`*.yml` in the directory (also written by the HTTP API). Files are
re-read when they change (`FileCache`, which the API's camera store uses too); a file that stops validating keeps its
last good config running and its problems are logged once per change; disabled cameras and duplicate ids are left
out. The Redis side (distributed mode) is
`pipelines.distributed.config_sync`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from pipelines.config.camera import CameraConfig, ConfigError, load_camera_config

log = logging.getLogger(__name__)

T = TypeVar("T")


class ConfigSource(Protocol):
    def cameras(self) -> dict[str, CameraConfig]:
        """The enabled cameras to run, by id (the last good config of each)."""
        ...


class FileCache(Generic[T]):
    """Values derived from files (a parsed camera config), recomputed only when a file's stat key changes.

    The key is (inode, mtime ns, size): an atomic rename (how the HTTP API writes) changes the inode even within one
    mtime tick. The file is stat'ed before it is read, so a change during the read is seen on the next call. The
    workers' directory watch (`DirConfigSource`) and the API's camera store (`api.camera_store`) both use it, so a
    config is parsed once per change, not once per poll or per request. `reuse` says whether a cached value may be
    served while its file is unchanged (False: recompute anyway, e.g. a config whose stream file may appear later).
    """

    def __init__(self, load: Callable[[Path], T], *, reuse: Callable[[T], bool] = lambda _value: True) -> None:
        self._load = load
        self._reuse = reuse
        self._entries: dict[Path, tuple[tuple[int, int, int], T]] = {}
        self._lock = threading.Lock()

    def get(self, path: Path) -> tuple[T, bool]:
        """(the value for `path`, whether the file changed since the last call). `load`'s exceptions propagate."""
        key = file_key(path)
        with self._lock:
            known = self._entries.get(path)
        if known is not None and known[0] == key and self._reuse(known[1]):
            return known[1], False
        value = self._load(path)
        with self._lock:
            self._entries[path] = (key, value)
        return value, known is None or known[0] != key

    def keep_only(self, paths: Iterable[Path]) -> None:
        """Forget the files not in `paths` (removed from the directory)."""
        wanted = set(paths)
        with self._lock:
            for gone in set(self._entries) - wanted:
                del self._entries[gone]


def file_key(path: Path) -> tuple[int, int, int]:
    """(inode, mtime ns, size) of `path`; (0, 0, 0) when it cannot be stat'ed."""
    try:
        st = path.stat()
    except OSError:
        return (0, 0, 0)
    return (st.st_ino, st.st_mtime_ns, st.st_size)


class DirConfigSource:
    def __init__(self, config_dir: Path) -> None:
        self.config_dir = config_dir
        # invalid files are re-read every poll (a stream file may appear later); problems are logged once per change
        self._parsed: FileCache[CameraConfig | ConfigError] = FileCache(
            _load_checked, reuse=lambda value: not isinstance(value, ConfigError)
        )
        self._last_good: dict[Path, CameraConfig] = {}

    def cameras(self) -> dict[str, CameraConfig]:
        paths = (
            sorted(p for p in self.config_dir.glob("*.y*ml") if p.name[0] != ".") if self.config_dir.is_dir() else []
        )
        self._parsed.keep_only(paths)
        self._last_good = {p: cfg for p, cfg in self._last_good.items() if p in paths}
        wanted: dict[str, CameraConfig] = {}
        for path in paths:
            cfg = self._read(path)
            if cfg is not None and cfg.enabled and cfg.id not in wanted:
                wanted[cfg.id] = cfg
        return wanted

    def _read(self, path: Path) -> CameraConfig | None:
        value, changed = self._parsed.get(path)
        if isinstance(value, ConfigError):
            if changed:
                for problem in value.problems:
                    log.error("camera config problem: %s", problem)
            return self._last_good.get(path)  # keep the last good config running
        self._last_good[path] = value
        return value


def _load_checked(path: Path) -> CameraConfig | ConfigError:
    try:
        return load_camera_config(path)
    except ConfigError as exc:
        return exc
