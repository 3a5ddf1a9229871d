"""Outcome of writing one evidence file: a path and its sha256, or `missing` with the reason (never an exception)."""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

# Re-exported only until vision/media/manifest.py imports it from vision.digest (the one definition).

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class WriteResult:
    """One evidence file. `missing` is True when it could not be written; `reason` says why (disk full, ...)."""

    path: Path
    sha256: str | None = None
    size: int = 0
    missing: bool = False
    reason: str | None = None

    @classmethod
    def failed(cls, path: Path, reason: str) -> WriteResult:
        return cls(path=path, missing=True, reason=reason)


def describe_os_error(exc: OSError) -> str:
    """A short, stable reason for a write error: 'disk full (ENOSPC)', 'permission denied (EACCES)', ..."""
    names = {
        errno.ENOSPC: "disk full (ENOSPC)",
        errno.EDQUOT: "disk quota exceeded (EDQUOT)",
        errno.EACCES: "permission denied (EACCES)",
        errno.EPERM: "operation not permitted (EPERM)",
        errno.EROFS: "read-only file system (EROFS)",
    }
    code = exc.errno
    if code in names:
        return names[code]
    name = errno.errorcode.get(code, "") if code is not None else ""
    return f"{exc.strerror or exc}" + (f" ({name})" if name else "")


def warn_missing(path: Path, reason: str) -> None:
    log.warning("evidence file not written, recorded as missing: %s: %s", path, reason)


def write_bytes_atomic(path: Path, data: bytes) -> WriteResult:
    """Write `data` to `path` via a temporary file + rename; on OSError return a `missing` result and log a warning."""
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        reason = describe_os_error(exc)
        warn_missing(path, reason)
        return WriteResult.failed(path, reason)
    finally:
        if tmp is not None:
            _unlink_quietly(Path(tmp))
    return WriteResult(path=path, sha256=hashlib.sha256(data).hexdigest(), size=len(data))


def _unlink_quietly(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError:  # pragma: no cover - best effort clean-up of a temp file
        log.debug("could not remove temporary file %s", path)
