"""The bus → store hook: the running service's consumer applies every bus event to the store, then acks it.

`safewatch run` (embedded) passes its `InProcessBus` to `create_app(settings, bus=bus)`; the app lifespan then runs
`consume_into_store` until shutdown. Distributed mode does the same with a `RedisStreamBus`.

Fencing (distributed mode, pipelines/distributed/fencing.py): a lease grant in the stream (`FenceGrant`) raises the
camera's newest token in the store; an event with an older token is refused by `apply_event`, counted in
`safewatch_fenced_events_total{camera}` and logged once per camera (per consumer process).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket

from api.metrics import Metrics
from api.store.db import Store
from api.store.incidents import ApplyResult, apply_event, apply_grant
from pipelines.bus.base import Delivery, EventBus
from pipelines.events import FenceGrant, IncidentEvent

log = logging.getLogger(__name__)

STORE_GROUP = "store"


def apply_batch(store: Store, metrics: Metrics, deliveries: list[Delivery], fenced: set[str] | None = None) -> None:
    """Apply each event (each in its own transaction, idempotent) — the caller acks afterwards.

    `fenced`: the cameras whose refused events were logged already (each camera is logged once per set)."""
    for delivery in deliveries:
        event = delivery.event
        if isinstance(event, FenceGrant):
            apply_grant(store, event)
            continue
        result = apply_event(store, event)
        if result.applied:
            metrics.incident_events.labels(event.rule, event.type.value).inc()
        elif result.fenced:
            _refused(metrics, event, result, fenced)


def _refused(metrics: Metrics, event: IncidentEvent, result: ApplyResult, logged: set[str] | None) -> None:
    metrics.fenced_events.labels(event.camera_id).inc()
    if logged is not None and event.camera_id in logged:
        return
    if logged is not None:
        logged.add(event.camera_id)
    log.warning(
        "camera %s: refusing events of a former owner (fencing token %s, newest %s); further ones are only counted",
        event.camera_id,
        event.fence,
        result.newest_token,
        extra={"camera_id": event.camera_id, "event_key": event.event_key},
    )


async def consume_into_store(
    bus: EventBus, store: Store, metrics: Metrics, stop: asyncio.Event, *, group: str = STORE_GROUP
) -> None:
    consumer = f"{socket.gethostname()}-{os.getpid()}"
    fenced: set[str] = set()
    log.info("bus consumer started", extra={"group": group, "consumer": consumer})
    while not stop.is_set():
        try:
            deliveries = await asyncio.to_thread(bus.consume, group, consumer, max_count=100, timeout_s=0.5)
            if deliveries:
                await asyncio.to_thread(apply_batch, store, metrics, deliveries, fenced)
                await asyncio.to_thread(bus.ack, group, deliveries)
        except Exception:  # keep consuming; unacked deliveries come back after the bus's redelivery timeout
            log.exception("bus consumer round failed")
            await asyncio.sleep(1.0)
    log.info("bus consumer stopped", extra={"group": group})
