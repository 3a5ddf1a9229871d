"""`make_bus`: the event bus of a deployment — Redis streams when a Redis URL is configured, else in-process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipelines.bus.base import EventBus, InProcessBus
from pipelines.bus.redis_streams import RedisStreamBus


def make_bus(
    redis_url: str | None,
    *,
    spool_dir: Path | None = None,
    maxlen: int = 100_000,
    redeliver_after_s: float = 30.0,
    **redis_options: Any,
) -> EventBus:
    """`RedisStreamBus(redis_url, spool_dir=…, …)` when `redis_url` is set, else `InProcessBus(maxlen, …)`.

    One call site serves both modes: `spool_dir` and `redis_options` (prefix, stream, socket timeouts, … see
    `RedisStreamBus`) only apply to the Redis bus and are ignored in-process. The Redis bus needs `spool_dir`
    (where events wait while Redis is down), e.g. `settings.data_dir / "spool"`.
    """
    if not redis_url:
        return InProcessBus(maxlen=maxlen, redeliver_after_s=redeliver_after_s)
    if spool_dir is None:
        raise ValueError("the Redis bus needs spool_dir: where events wait while Redis is unreachable")
    return RedisStreamBus(
        redis_url, spool_dir=spool_dir, maxlen=maxlen, redeliver_after_s=redeliver_after_s, **redis_options
    )
