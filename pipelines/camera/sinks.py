"""Event sinks: where a camera pipeline's `IncidentEvent`s go (a JSON-lines file, the event bus, a callback)."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from pipelines.bus.base import EventBus
from pipelines.events import EventType, IncidentEvent

log = logging.getLogger(__name__)


class JsonlSink:
    """Appends one IncidentEvent JSON per line and flushes each line (a crash loses nothing already handled)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._fh = path.open("a", encoding="utf-8")
        self._lock = threading.Lock()

    def handle(self, event: IncidentEvent) -> None:
        with self._lock:
            self._fh.write(event.model_dump_json() + "\n")
            self._fh.flush()

    def close(self) -> None:
        with self._lock:
            self._fh.close()

    def __enter__(self) -> JsonlSink:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class BusSink:
    """Publishes events to an `EventBus` (in-process or Redis Streams)."""

    def __init__(self, bus: EventBus) -> None:
        self.bus = bus

    def handle(self, event: IncidentEvent) -> None:
        self.bus.publish(event)


class CallbackSink:
    def __init__(self, callback: Callable[[IncidentEvent], None]) -> None:
        self.callback = callback

    def handle(self, event: IncidentEvent) -> None:
        self.callback(event)


class CountingSink:
    """Counts incidents by rule (opened events) and events by type, for summaries and metrics; a shadow run's events
    (pipelines/camera/shadow.py) are counted apart, by rule, in `shadow_opened_by_rule`."""

    def __init__(self) -> None:
        self.opened_by_rule: Counter[str] = Counter()
        self.by_type: Counter[str] = Counter()
        self.shadow_opened_by_rule: Counter[str] = Counter()

    def handle(self, event: IncidentEvent) -> None:
        if event.shadow:
            self.shadow_opened_by_rule[event.rule] += event.type is EventType.opened
            return
        self.by_type[event.type.value] += 1
        if event.type is EventType.opened:
            self.opened_by_rule[event.rule] += 1
