"""Cross-camera batching: many camera threads call `detect(image)`, one thread runs them as `detect_batch` calls.

    batcher = BatchingDetector(detector)            # one per loaded model, shared by the cameras of a worker
    cam = batcher.for_camera("gate-3")              # a view with `detect(image)`, like a Detector
    detections = cam.detect(frame.image)            # blocks until the batch holding this frame has run
    cam.close(); batcher.close()                    # detach the camera; fail pending requests, stop the thread

The batcher thread waits for the first pending request, then collects more for up to `max_wait_ms` (measured from
the oldest request, so frames that queued while the previous batch ran go at once), or until every attached camera
has a frame waiting, or `max_batch` cameras have. A batch holds at most one frame per camera, taken round-robin, so
a camera that submits faster than the others cannot fill the batches and starve them. A failing batch is retried
one frame at a time, so an error reaches only the caller of the frame that caused it. Models without a dynamic batch
dimension, and a batcher with a single attached camera, run in the caller's thread (nothing to batch with).

`BatcherPool` hands out camera views and keeps one batcher per detector, closing it when its last camera detaches.
Hand-written rather than a library: the fairness rule (≤1 frame per camera per batch, round-robin) and the
retry-per-frame error isolation are not offered by the generic batching helpers on PyPI.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field

from vision.detect.detector import Detector
from vision.types import Detections, ImageArray

log = logging.getLogger(__name__)

Thresholds = tuple[float | None, float | None]


class BatchingConfig(BaseModel):
    """How requests from several cameras are gathered into one `detect_batch` call."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    max_batch: int | None = Field(
        default=None, ge=1, description="frames per batch (one per camera); null: the detector's options.max_batch"
    )
    max_wait_ms: float = Field(
        default=8.0, ge=0.0, le=1000.0, description="longest wait for more cameras after the oldest pending frame"
    )
    solo_direct: bool = Field(
        default=True, description="with at most one attached camera, run in the caller's thread (no hand-off)"
    )


class BatcherClosedError(RuntimeError):
    """The batcher was closed: a pending request was cancelled, or a new one was refused."""


@dataclass(slots=True)
class _Request:
    key: str
    image: ImageArray
    thresholds: Thresholds
    queued_at: float
    future: Future[Detections] = field(default_factory=Future)


@dataclass(slots=True)
class BatchStats:
    """Counters for metrics and benchmarks."""

    batches: int = 0
    frames: int = 0
    direct: int = 0
    max_size: int = 0
    failed_batches: int = 0

    @property
    def mean_size(self) -> float:
        return self.frames / self.batches if self.batches else 0.0


class BatchingDetector:
    """Wraps one `Detector`; safe to call from many threads. See the module docstring."""

    def __init__(
        self,
        detector: Detector,
        config: BatchingConfig | None = None,
        *,
        on_batch: Callable[[Sequence[str]], None] | None = None,
    ) -> None:
        self.detector = detector
        self.config = config or BatchingConfig()
        self.max_batch = self.config.max_batch or detector.options.max_batch
        self.batched = detector.io.dynamic_batch
        self.stats = BatchStats()
        self._on_batch = on_batch  # called with the camera keys of each batch, in the batcher thread
        self._queues: dict[str, deque[_Request]] = {}  # insertion order is the round-robin order
        self._cameras: Counter[str] = Counter()
        self._cond = threading.Condition()
        self._closed = False
        self._thread: threading.Thread | None = None

    @property
    def name(self) -> str:
        return self.detector.name

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def cameras(self) -> int:
        """Distinct cameras attached through `for_camera`."""
        with self._cond:
            return len(self._cameras)

    # -- cameras -----------------------------------------------------------------------------------------------
    def for_camera(self, camera_id: str, release: Callable[[str], None] | None = None) -> CameraDetector:
        """Attach a camera; the returned view's `detect(image)` sends its frames through this batcher."""
        with self._cond:
            if self._closed:
                raise BatcherClosedError(f"batcher for {self.name} is closed")
            self._cameras[camera_id] += 1
            self._cond.notify_all()
        return CameraDetector(self, camera_id, release or self.detach)

    def detach(self, camera_id: str) -> int:
        """Forget one attachment of `camera_id`; returns how many cameras remain attached."""
        with self._cond:
            if self._cameras[camera_id] > 1:
                self._cameras[camera_id] -= 1
            else:
                self._cameras.pop(camera_id, None)
            self._cond.notify_all()
            return len(self._cameras)

    # -- requests ----------------------------------------------------------------------------------------------
    def submit(
        self, image: ImageArray, *, key: str, confidence: float | None = None, iou: float | None = None
    ) -> Future[Detections]:
        """Queue one frame of camera `key`; the future gets its Detections or the exception its frame raised."""
        request = _Request(key, image, (confidence, iou), time.monotonic())
        with self._cond:
            if self._closed:
                raise BatcherClosedError(f"batcher for {self.name} is closed")
            self._queues.setdefault(key, deque()).append(request)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=f"batcher:{self.name}", daemon=True)
                self._thread.start()
            self._cond.notify_all()
        return request.future

    def detect(
        self, image: ImageArray, *, key: str = "", confidence: float | None = None, iou: float | None = None
    ) -> Detections:
        """Same result as `Detector.detect`; batched with other cameras' frames when there are any."""
        if self._closed:
            raise BatcherClosedError(f"batcher for {self.name} is closed")
        if not self.batched or (self.config.solo_direct and len(self._cameras) <= 1):
            with self._cond:
                self.stats.direct += 1
            return self.detector.detect(image, confidence=confidence, iou=iou)
        return self.submit(image, key=key, confidence=confidence, iou=iou).result()

    # -- shutdown ----------------------------------------------------------------------------------------------
    def close(self, timeout: float | None = 5.0) -> None:
        """Refuse new requests, fail the pending ones with BatcherClosedError, let a running batch finish."""
        with self._cond:
            self._closed = True
            pending = [r for q in self._queues.values() for r in q]
            self._queues.clear()
            self._cond.notify_all()
            thread = self._thread
        _fail(pending, BatcherClosedError(f"batcher for {self.name} closed with the frame still pending"))
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    # -- the batcher thread ------------------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            while (batch := self._next_batch()) is not None:
                self._execute(batch)
        except BaseException as exc:  # never leave callers waiting on a dead thread
            log.exception("batcher for %s crashed", self.name)
            with self._cond:
                self._closed = True
                pending = [r for q in self._queues.values() for r in q]
                self._queues.clear()
            _fail(pending, BatcherClosedError(f"batcher for {self.name} crashed: {exc!r}"))

    def _next_batch(self) -> list[_Request] | None:
        with self._cond:
            self._cond.wait_for(lambda: self._closed or bool(self._queues))
            if self._closed:
                return None
            oldest = min(q[0].queued_at for q in self._queues.values())
            deadline = oldest + self.config.max_wait_ms / 1000.0
            while not self._closed and not self._ready():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            return None if self._closed else self._take()

    def _ready(self) -> bool:
        """Enough cameras are waiting: the batch is full, or every attached camera has a frame pending."""
        waiting = len(self._queues)
        if waiting >= self.max_batch:
            return True
        return bool(self._cameras) and all(k in self._queues for k in self._cameras)

    def _take(self) -> list[_Request]:
        """The head request of up to `max_batch` cameras, round-robin; served cameras move to the back."""
        batch: list[_Request] = []
        for key in list(self._queues)[: self.max_batch]:
            queue = self._queues.pop(key)
            request = queue.popleft()
            if queue:
                self._queues[key] = queue  # re-inserted last: its next frame waits for the others' turn
            if request.future.set_running_or_notify_cancel():
                batch.append(request)
        return batch

    def _execute(self, batch: list[_Request]) -> None:
        if not batch:
            return
        self.stats.batches += 1
        self.stats.frames += len(batch)
        self.stats.max_size = max(self.stats.max_size, len(batch))
        if self._on_batch is not None:
            self._on_batch([r.key for r in batch])
        groups: dict[Thresholds, list[_Request]] = {}
        for request in batch:
            groups.setdefault(request.thresholds, []).append(request)
        for (conf, iou), requests in groups.items():
            try:
                results = self.detector.detect_batch([r.image for r in requests], confidence=conf, iou=iou)
            except Exception:
                self.stats.failed_batches += 1
                log.debug("batch of %d failed on %s; retrying one frame at a time", len(requests), self.name)
                self._one_by_one(requests)
                continue
            for request, result in zip(requests, results, strict=True):
                request.future.set_result(result)

    def _one_by_one(self, requests: list[_Request]) -> None:
        for request in requests:
            conf, iou = request.thresholds
            try:
                request.future.set_result(self.detector.detect(request.image, confidence=conf, iou=iou))
            except Exception as exc:
                request.future.set_exception(exc)


def _fail(requests: list[_Request], error: BaseException) -> None:
    for request in requests:
        if request.future.set_running_or_notify_cancel():
            request.future.set_exception(error)


class CameraDetector:
    """One camera's view of a `BatchingDetector`: has `name` and `detect(image)`, so pipelines use it as a Detector."""

    def __init__(self, batcher: BatchingDetector, camera_id: str, release: Callable[[str], object]) -> None:
        self.batcher = batcher
        self.camera_id = camera_id
        self._release = release
        self._attached = True
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.batcher.name

    def detect(self, image: ImageArray, *, confidence: float | None = None, iou: float | None = None) -> Detections:
        return self.batcher.detect(image, key=self.camera_id, confidence=confidence, iou=iou)

    def submit(
        self, image: ImageArray, *, confidence: float | None = None, iou: float | None = None
    ) -> Future[Detections]:
        return self.batcher.submit(image, key=self.camera_id, confidence=confidence, iou=iou)

    def close(self) -> None:
        """Detach this camera (idempotent). Frames it already submitted still get their results."""
        with self._lock:
            if not self._attached:
                return
            self._attached = False
        self._release(self.camera_id)


class BatcherPool:
    """One `BatchingDetector` per detector, shared by the cameras of a worker; closed when its last camera leaves."""

    def __init__(self, config: BatchingConfig | None = None) -> None:
        self.config = config or BatchingConfig()
        self._batchers: dict[int, BatchingDetector] = {}
        self._lock = threading.Lock()

    def for_camera(self, detector: Detector, camera_id: str) -> CameraDetector:
        with self._lock:
            batcher = self._batchers.get(id(detector))
            if batcher is None or batcher.closed or batcher.detector is not detector:
                batcher = BatchingDetector(detector, self.config)
                self._batchers[id(detector)] = batcher
            return batcher.for_camera(camera_id, release=lambda cam: self._release(batcher, cam))

    def _release(self, batcher: BatchingDetector, camera_id: str) -> None:
        with self._lock:
            if batcher.detach(camera_id) > 0:
                return
            if self._batchers.get(id(batcher.detector)) is batcher:
                del self._batchers[id(batcher.detector)]
        batcher.close()

    @property
    def batchers(self) -> list[BatchingDetector]:
        with self._lock:
            return list(self._batchers.values())

    def close(self, timeout: float | None = 5.0) -> None:
        with self._lock:
            batchers = list(self._batchers.values())
            self._batchers.clear()
        for batcher in batchers:
            batcher.close(timeout)
