"""Live capture: a thread runs the source and fills a bounded queue that drops its oldest frame when full.

Capture never waits for the consumer (a slow detector must not make the RTSP connection stall and time out).
"""

from __future__ import annotations

import logging
import threading
from collections import deque

from vision.sources.errors import SourceError
from vision.sources.reader import KeptFrame
from vision.sources.runner import SourceRunner
from vision.sources.state import SourceState, StatusTracker

log = logging.getLogger(__name__)


class FrameQueue:
    """Bounded FIFO; `put` never blocks: when full it discards the oldest item and counts a drop."""

    def __init__(self, size: int, tracker: StatusTracker) -> None:
        self._items: deque[KeptFrame] = deque()
        self._size = size
        self._tracker = tracker
        self._cond = threading.Condition()
        self._closed = False

    def put(self, item: KeptFrame) -> None:
        with self._cond:
            if len(self._items) >= self._size:
                self._items.popleft()
                self._tracker.count("frames_dropped")
            self._items.append(item)
            self._cond.notify()

    def get(self, timeout: float | None) -> KeptFrame | None:
        """The oldest queued frame; None when closed and empty, or on timeout."""
        with self._cond:
            self._cond.wait_for(lambda: self._items or self._closed, timeout)
            return self._items.popleft() if self._items else None

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)


class CaptureThread(threading.Thread):
    """Iterates the runner (connect, read, reconnect) and hands kept frames to the queue."""

    def __init__(self, runner: SourceRunner, queue: FrameQueue) -> None:
        super().__init__(name=f"capture:{runner.name}", daemon=True)
        self.runner = runner
        self.queue = queue

    def run(self) -> None:
        try:
            for kept in self.runner.frames():
                self.queue.put(kept)
        except SourceError as exc:
            log.error("%s: failed: %s", self.runner.name, exc)
        except Exception as exc:  # a bug must still end in FAILED, never a silently dead thread
            log.exception("%s: capture crashed", self.runner.name)
            self.runner.tracker.set_state(SourceState.FAILED, f"capture crashed: {exc!r}", exc)
        finally:
            self.queue.close()
