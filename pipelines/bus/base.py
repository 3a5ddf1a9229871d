"""Event bus: how `IncidentEvent`s travel from camera pipelines to their consumers (store, SSE, webhooks).

The protocol is the shape of a Redis stream with consumer groups, so `InProcessBus` (embedded mode, default) and a
`RedisStreamBus` (distributed mode) are interchangeable:

- `publish(event)` appends to the log. Synchronous and thread-safe: camera pipelines run in threads.
- `consume(group, consumer)` returns up to `max_count` deliveries for that consumer group, waiting up to `timeout_s`.
  Every group sees every event still held in the log (a group created late starts at the oldest retained event,
  like `XGROUP CREATE … 0`). Within a group each event goes to one consumer.
- `ack(group, deliveries)` is called after the consumer has *committed* its work. A delivery that is not acked
  within `redeliver_after_s` is handed out again (to any consumer of the group), so delivery is at-least-once;
  consumers de-duplicate by `(event.id, event.seq)`.

Consumers that block (like the API's store writer) call `consume` from a worker thread.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from pipelines.events import FenceGrant, IncidentEvent


@dataclass(frozen=True)
class Delivery:
    """One event handed to one consumer. `token` is opaque (a Redis stream entry id in the Redis bus).

    `event` is a `FenceGrant` for a lease grant recorded in the log (Redis bus only, pipelines/bus/entries.py): the
    store keeps its token to refuse older events of that camera; other consumers just ack it."""

    event: IncidentEvent | FenceGrant
    token: str
    attempt: int = 1


@runtime_checkable
class EventBus(Protocol):
    def publish(self, event: IncidentEvent) -> None:
        """Append `event` to the log (thread-safe, never blocks on consumers)."""
        ...

    def consume(self, group: str, consumer: str, *, max_count: int = 100, timeout_s: float = 1.0) -> list[Delivery]:
        """Up to `max_count` deliveries for `consumer` in `group`; waits up to `timeout_s` when none is ready."""
        ...

    def ack(self, group: str, deliveries: Sequence[Delivery]) -> None:
        """Mark deliveries as done for `group`; call only after the consumer's work is committed."""
        ...

    def backlog(self, group: str) -> int:
        """Events `group` has not acknowledged yet (0 = drained)."""
        ...

    def close(self) -> None:
        """Release resources; wakes blocked consumers."""
        ...


@dataclass
class _InFlight:
    event: IncidentEvent
    consumer: str
    deadline: float
    attempt: int


@dataclass
class _Group:
    next_offset: int
    in_flight: dict[int, _InFlight] = field(default_factory=dict)


class InProcessBus:
    """An in-memory log with consumer groups, acknowledgement and redelivery (the embedded-mode bus).

    `maxlen` bounds the log like a Redis stream's MAXLEN: the oldest events are dropped first (a consumer group that
    falls that far behind misses them). Unacked deliveries are kept until acked, whatever `maxlen` says.
    """

    def __init__(self, *, maxlen: int = 100_000, redeliver_after_s: float = 30.0) -> None:
        if maxlen < 1:
            raise ValueError("maxlen must be >= 1")
        self._log: deque[tuple[int, IncidentEvent]] = deque(maxlen=maxlen)
        self._offsets = itertools.count()
        self._groups: dict[str, _Group] = {}
        self._redeliver_after_s = redeliver_after_s
        self._cond = threading.Condition()
        self._closed = False

    def publish(self, event: IncidentEvent) -> None:
        with self._cond:
            if self._closed:
                raise RuntimeError("bus is closed")
            self._log.append((next(self._offsets), event))
            self._cond.notify_all()

    def consume(self, group: str, consumer: str, *, max_count: int = 100, timeout_s: float = 1.0) -> list[Delivery]:
        deadline = time.monotonic() + max(timeout_s, 0.0)
        with self._cond:
            state = self._groups.get(group)
            if state is None:
                state = self._groups[group] = _Group(next_offset=self._log[0][0] if self._log else 0)
            while True:
                out = self._take(state, consumer, max_count)
                remaining = deadline - time.monotonic()
                if out or self._closed or remaining <= 0:
                    return out
                self._cond.wait(min(remaining, self._redeliver_after_s))

    def ack(self, group: str, deliveries: Sequence[Delivery]) -> None:
        with self._cond:
            state = self._groups.get(group)
            if state is None:
                return
            for delivery in deliveries:
                state.in_flight.pop(int(delivery.token), None)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def pending(self, group: str) -> int:
        """Deliveries handed out to `group` and not yet acked."""
        with self._cond:
            state = self._groups.get(group)
            return 0 if state is None else len(state.in_flight)

    def backlog(self, group: str) -> int:
        """Events `group` has not acknowledged yet: not handed out, plus in flight (0 = fully drained)."""
        with self._cond:
            state = self._groups.get(group)
            head = self._log[-1][0] + 1 if self._log else 0
            if state is None:
                return len(self._log)
            return max(0, head - state.next_offset) + len(state.in_flight)

    def _take(self, state: _Group, consumer: str, max_count: int) -> list[Delivery]:
        now = time.monotonic()
        out: list[Delivery] = []
        for offset, flight in sorted(state.in_flight.items()):
            if len(out) >= max_count:
                return out
            if flight.deadline <= now:
                flight.attempt += 1
                flight.consumer = consumer
                flight.deadline = now + self._redeliver_after_s
                out.append(Delivery(event=flight.event, token=str(offset), attempt=flight.attempt))
        first = self._log[0][0] if self._log else 0
        for offset, event in itertools.islice(self._log, max(state.next_offset - first, 0), None):
            if len(out) >= max_count:
                break
            state.in_flight[offset] = _InFlight(event, consumer, now + self._redeliver_after_s, 1)
            state.next_offset = offset + 1
            out.append(Delivery(event=event, token=str(offset)))
        return out
