"""`ClipWriter`: writes clips off the analysis thread, once the packets up to each window's end have arrived.

A job names a packet source (the ring buffer), a window in media or wall seconds and an output path. The worker
thread polls the source every `poll_interval_s`; a job completes when the source holds a packet past the window end,
when its source is marked ended (`source_ended`), or after `wait_timeout_s` (then the clip is `partial`).
`submit` never blocks the caller; `close()` finishes every queued job (without waiting for more packets) and joins.

Ended sources are remembered in a `WeakSet` of the source objects themselves, not their `id()`s: an entry goes away
when its source is freed (a pending job holds its source, so never before its jobs are done), and a restarted
camera's new ring buffer, which CPython may place at the freed one's address, is never taken for the ended one.
A source must therefore support weak references (`PacketRingBuffer` does).
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
import weakref
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from vision.media.clip import ClipResult, write_clip
from vision.media.config import ClipConfig
from vision.media.packets import PacketLike, PacketWindowSource
from vision.media.results import WriteResult, warn_missing

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ClipJob:
    """Write `source`'s packets in [start, end] (media seconds, or Unix wall seconds with clock="wall") to `path`.

    The result's `start_s`/`end_s` are on the job's clock too (first and last frame)."""

    source: PacketWindowSource
    start: float
    end: float
    path: Path
    clock: Literal["media", "wall"] = "media"
    incident_id: str = ""


@dataclass(slots=True)
class _Pending:
    job: ClipJob
    future: Future[ClipResult]
    deadline: float


class ClipWriter:
    """A worker thread + queue that writes `ClipJob`s. Thread-safe; one instance can serve many cameras."""

    def __init__(self, config: ClipConfig | None = None, *, name: str = "clip-writer") -> None:
        self._cfg = config or ClipConfig()
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        self._ended: weakref.WeakSet[PacketWindowSource] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._closing = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, job: ClipJob) -> Future[ClipResult]:
        """Queue a job; the future resolves to its `ClipResult` (missing with a reason on failure, never raises)."""
        fut: Future[ClipResult] = Future()
        with self._lock:
            if self._closing:
                raise RuntimeError("ClipWriter is closed")
            self._queue.put(_Pending(job, fut, time.monotonic() + self._cfg.wait_timeout_s))
        return fut

    def source_ended(self, source: PacketWindowSource) -> None:
        """The source will get no more packets: its waiting jobs are written with what it holds."""
        with self._lock:
            self._ended.add(source)

    def close(self, timeout: float | None = None) -> None:
        """Write every queued job now (not waiting for more packets), then stop the thread."""
        with self._lock:
            if self._closing:
                return
            self._closing = True
        self._queue.put(None)
        self._thread.join(timeout)

    def __enter__(self) -> ClipWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self) -> None:
        pending: list[_Pending] = []
        stopping = False
        while True:
            stopping = self._drain(pending, block=not pending and not stopping) or stopping
            # A comprehension, so no loop variable keeps the last finished job (and its source) alive while idle.
            pending = [item for item in pending if not self._try_complete(item, force=stopping)]
            if stopping and not pending:
                return
            if pending:
                time.sleep(self._cfg.poll_interval_s)

    def _drain(self, pending: list[_Pending], *, block: bool) -> bool:
        """Move queued jobs into `pending`; True when the stop sentinel was seen."""
        try:
            item = self._queue.get() if block else self._queue.get_nowait()
            while True:
                if item is None:
                    return True
                if item.future.set_running_or_notify_cancel():  # False: cancelled before it started
                    pending.append(item)
                item = self._queue.get_nowait()
        except queue.Empty:
            return False

    def _try_complete(self, item: _Pending, *, force: bool) -> bool:
        try:
            result = self._attempt(item, force=force)
        except Exception as exc:  # isolate: one bad job never stops the writer
            log.exception("clip job failed: %s", item.job.path)
            result = ClipResult(WriteResult.failed(item.job.path, f"clip job failed: {exc}"), partial=True)
        if result is None:
            return False
        item.future.set_result(result)
        return True

    def _attempt(self, item: _Pending, *, force: bool) -> ClipResult | None:
        job = item.job
        with self._lock:
            ended = job.source in self._ended
        tail = _fetch(job, job.end, math.inf)
        reached = bool(tail) and _time_of(tail[-1], job.clock) > job.end
        timed_out = time.monotonic() >= item.deadline
        if not (reached or ended or timed_out or force):
            return None
        params = job.source.params
        packets = _fetch(job, job.start, job.end)  # the source cuts the window from the keyframe at/before start
        if params is None:
            warn_missing(job.path, "stream parameters unknown (source never opened)")
            return ClipResult(WriteResult.failed(job.path, "stream parameters unknown"), partial=True)
        if not reached:
            log.warning("clip %s written partial: %s", job.path, "source ended" if ended else "post-roll not reached")
        result = write_clip(packets, params, job.path, faststart=self._cfg.faststart, partial=not reached)
        return _on_clock(result, packets, job.clock)


def _on_clock(result: ClipResult, packets: Sequence[PacketLike], clock: str) -> ClipResult:
    """A wall-clock job's result on the wall clock: the clip starts at its first keyframe's wall time and lasts its
    media span (packet wall times carry arrival jitter; media time is what the clip plays)."""
    if clock != "wall" or result.file.missing:
        return result
    first = next((p for p in packets if p.is_keyframe), None)  # where write_clip starts the clip
    if first is None:
        return result
    return replace(result, start_s=first.wall_time, end_s=first.wall_time + result.duration_s)


def _fetch(job: ClipJob, start: float, end: float) -> Sequence[PacketLike]:
    if job.clock == "wall":
        return job.source.window_wall(start, end)
    return job.source.window(start, end)


def _time_of(pkt: PacketLike, clock: str) -> float:
    return pkt.wall_time if clock == "wall" else pkt.pts_s
