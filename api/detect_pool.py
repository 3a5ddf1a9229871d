"""The bounded executor of `POST /v1/detect`: its own threads and an admission limit, so detect cannot starve the API.

Decoding an upload and running a detector take hundreds of milliseconds and tens of megabytes each. On the shared
thread pool (`Settings.api_threads`, which also runs authentication and every database route) a burst of large
uploads stalled every other route for seconds. Here detect work runs on `workers` threads of its own, and at most
`workers + queue` requests are admitted at once: admission is taken before the body is read, so a refused request
costs neither the upload's memory nor a thread. Past that, `admit` raises `DetectBusy` and the route answers 429
with `Retry-After`.

Admission is counted on the event loop (the route is async), so the counter needs no lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


class DetectBusy(Exception):
    """Every detect slot (running and waiting) is taken; retry after `retry_after_s`."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"detection is busy: retry in {retry_after_s} s")
        self.retry_after_s = retry_after_s


class DetectPool:
    """`workers` threads for detect work; at most `workers + queue` requests admitted at once."""

    def __init__(self, workers: int, queue: int, retry_after_s: int) -> None:
        self.workers = workers
        self.capacity = workers + queue
        self.retry_after_s = retry_after_s
        self._admitted = 0
        self._executor: ThreadPoolExecutor | None = None  # threads start on the first request

    @property
    def admitted(self) -> int:
        """Requests holding a slot now (running or waiting for a thread)."""
        return self._admitted

    @contextlib.contextmanager
    def admit(self) -> Iterator[None]:
        """Hold one slot for the block (raises DetectBusy when none is free). Call on the event loop only."""
        if self._admitted >= self.capacity:
            raise DetectBusy(self.retry_after_s)
        self._admitted += 1
        try:
            yield
        finally:
            self._admitted -= 1

    async def run(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """`fn(*args, **kwargs)` on a detect thread."""
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.workers, thread_name_prefix="safewatch-detect")
        return await asyncio.get_running_loop().run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    def shutdown(self) -> None:
        """Stop the threads (the app's lifespan ends); work already running finishes, queued work is dropped."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
