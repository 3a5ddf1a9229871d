"""Retention of evidence: delete whole incident directories, oldest first, by maximum age and maximum total size,
never the protected ones (open incidents, incidents marked keep), and the directories of incidents whose record the
store deleted (`remove_incidents`). Both return what they deleted.

`before_delete(incident, reason, bytes)` is called right before each deletion: the evidence chain's tombstone
(`vision/media/chain.py`), so a deletion is recorded before it happens. When it raises OSError (the tombstone could
not be written) the folder is kept, and retention tries again next run.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from vision.media.config import RetentionConfig
from vision.media.store import IncidentDir, MediaStore

log = logging.getLogger(__name__)

Reason = Literal["age", "size", "record"]
BeforeDelete = Callable[[IncidentDir, Reason, int], None]


@dataclass(frozen=True, slots=True)
class Deleted:
    path: Path
    camera_id: str
    incident_id: str
    bytes: int
    age_s: float
    reason: Reason  # "record": the store deleted the incident (`remove_incidents`)


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
        with contextlib.suppress(OSError):  # deleted meanwhile (another process sharing the media root)
            newest = inc.path.stat().st_mtime
    return _Entry(inc, size, newest)


def _remove(entry: _Entry, root: Path, reason: Reason, before: BeforeDelete | None) -> bool:
    if before is not None:
        if not entry.inc.path.is_dir():
            return False  # another process sharing the media root deleted it first
        try:
            before(entry.inc, reason, entry.bytes)
        except OSError as exc:
            log.warning("retention: kept %s: its deletion could not be recorded (%s)", entry.inc.path, exc)
            return False
    try:
        shutil.rmtree(entry.inc.path)
    except FileNotFoundError:  # another process sharing the media root (a second API) deleted it first
        return False
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
    age_only: Callable[[str], bool] | None = None,
    now: float | None = None,
    before_delete: BeforeDelete | None = None,
) -> list[Deleted]:
    """Delete incidents older than `max_age_days`, then the oldest until the total is under `max_total_bytes`.

    An incident's age is that of its newest file. `protected`: incident ids (or a predicate on the id, asked only
    about incidents due for deletion, just before it) never deleted, e.g. open incidents and those marked keep; they
    still count towards the total size. `age_only`: ids deleted by age but never for size, e.g. evidence whose
    incident the store does not know yet (its event is still on its way from a worker).
    """
    is_protected = protected if callable(protected) else (lambda i, s=frozenset(protected): i in s)
    size_exempt = age_only or (lambda _i: False)
    now = time.time() if now is None else now
    entries = sorted((_measure(i) for i in store.incidents()), key=lambda e: e.mtime)
    total = sum(e.bytes for e in entries)
    deleted: list[Deleted] = []
    max_age = config.max_age_days * 86400 if config.max_age_days is not None else None
    for e in entries:
        age = now - e.mtime
        reason: Literal["age", "size"] | None = None
        if max_age is not None and age > max_age:
            reason = "age"
        elif config.max_total_bytes is not None and total > config.max_total_bytes:
            reason = "size"
        # the predicates are asked only about candidates, right before the delete (they may look the id up)
        if reason is None or is_protected(e.inc.incident_id):
            continue
        if reason == "size" and size_exempt(e.inc.incident_id):
            continue
        if _remove(e, store.root, reason, before_delete):
            total -= e.bytes
            deleted.append(Deleted(e.inc.path, e.inc.camera_id, e.inc.incident_id, e.bytes, age, reason))
            log.info("retention deleted %s (%s, %d bytes)", e.inc.path, reason, e.bytes)
    if config.max_total_bytes is not None and total > config.max_total_bytes:
        log.warning(
            "media root %s still holds %d bytes > %d: the rest is protected", store.root, total, config.max_total_bytes
        )
    return deleted


def remove_incidents(
    store: MediaStore,
    dirs: Iterable[IncidentDir],
    *,
    now: float | None = None,
    before_delete: BeforeDelete | None = None,
) -> list[Deleted]:
    """Delete these incident directories whatever their age: the store deleted their incidents' records."""
    now = time.time() if now is None else now
    deleted: list[Deleted] = []
    for inc in dirs:
        e = _measure(inc)
        if _remove(e, store.root, "record", before_delete):
            deleted.append(Deleted(inc.path, inc.camera_id, inc.incident_id, e.bytes, now - e.mtime, "record"))
            log.info("retention deleted %s (record deleted, %d bytes)", inc.path, e.bytes)
    return deleted
