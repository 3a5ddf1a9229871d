"""Retention of evidence: delete whole incident directories, oldest first, by maximum age and maximum total size,
never the protected ones (open incidents, incidents marked keep). Returns what it deleted."""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from vision.media.config import RetentionConfig
from vision.media.store import IncidentDir, MediaStore

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Deleted:
    path: Path
    camera_id: str
    incident_id: str
    bytes: int
    age_s: float
    reason: Literal["age", "size"]


@dataclass(frozen=True, slots=True)
class _Entry:
    inc: IncidentDir
    bytes: int
    mtime: float


def _measure(inc: IncidentDir) -> _Entry:
    size, newest = 0, 0.0
    for f in inc.path.rglob("*"):
        try:
            st = f.stat()
        except OSError:
            continue
        if f.is_file():
            size += st.st_size
            newest = max(newest, st.st_mtime)
    if newest == 0.0:
        newest = inc.path.stat().st_mtime
    return _Entry(inc, size, newest)


def _remove(entry: _Entry, root: Path) -> bool:
    try:
        shutil.rmtree(entry.inc.path)
    except OSError as exc:
        log.warning("retention: could not delete %s: %s", entry.inc.path, exc)
        return False
    for parent in (entry.inc.path.parent, entry.inc.path.parent.parent):  # camera dir, day dir
        if parent != root:
            try:
                parent.rmdir()
            except OSError:
                break  # not empty
    return True


def apply_retention(
    store: MediaStore,
    config: RetentionConfig,
    protected: Collection[str] | Callable[[str], bool] = (),
    *,
    now: float | None = None,
) -> list[Deleted]:
    """Delete incidents older than `max_age_days`, then the oldest until the total is under `max_total_bytes`.

    An incident's age is that of its newest file. `protected`: incident ids (or a predicate on the id) never
    deleted, e.g. open incidents and those marked keep; they still count towards the total size.
    """
    is_protected = protected if callable(protected) else (lambda i, s=frozenset(protected): i in s)
    now = time.time() if now is None else now
    entries = sorted((_measure(i) for i in store.incidents()), key=lambda e: e.mtime)
    total = sum(e.bytes for e in entries)
    deleted: list[Deleted] = []
    max_age = config.max_age_days * 86400 if config.max_age_days is not None else None
    for e in entries:
        if is_protected(e.inc.incident_id):
            continue
        age = now - e.mtime
        reason: Literal["age", "size"] | None = None
        if max_age is not None and age > max_age:
            reason = "age"
        elif config.max_total_bytes is not None and total > config.max_total_bytes:
            reason = "size"
        if reason is not None and _remove(e, store.root):
            total -= e.bytes
            deleted.append(Deleted(e.inc.path, e.inc.camera_id, e.inc.incident_id, e.bytes, age, reason))
            log.info("retention deleted %s (%s, %d bytes)", e.inc.path, reason, e.bytes)
    if config.max_total_bytes is not None and total > config.max_total_bytes:
        log.warning(
            "media root %s still holds %d bytes > %d: the rest is protected", store.root, total, config.max_total_bytes
        )
    return deleted
