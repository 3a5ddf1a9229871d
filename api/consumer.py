"""The bus → store hook: the running service's consumer applies every bus event to the store, then acks it.

`safewatch run` (embedded) passes its `InProcessBus` to `create_app(settings, bus=bus)`; the app lifespan then runs
`consume_into_store` until shutdown. Distributed mode does the same with a `RedisStreamBus`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket

from api.metrics import Metrics
from api.store.db import Store
from api.store.incidents import apply_event
from pipelines.bus.base import Delivery, EventBus

log = logging.getLogger(__name__)

STORE_GROUP = "store"


def apply_batch(store: Store, metrics: Metrics, deliveries: list[Delivery]) -> None:
    """Apply each event (each in its own transaction, idempotent) — the caller acks afterwards."""
    for delivery in deliveries:
        event = delivery.event
        result = apply_event(store, event)
        if result.applied:
            metrics.incident_events.labels(event.rule, event.type.value).inc()


async def consume_into_store(
    bus: EventBus, store: Store, metrics: Metrics, stop: asyncio.Event, *, group: str = STORE_GROUP
) -> None:
    consumer = f"{socket.gethostname()}-{os.getpid()}"
    log.info("bus consumer started", extra={"group": group, "consumer": consumer})
    while not stop.is_set():
        try:
            deliveries = await asyncio.to_thread(bus.consume, group, consumer, max_count=100, timeout_s=0.5)
            if deliveries:
                await asyncio.to_thread(apply_batch, store, metrics, deliveries)
                await asyncio.to_thread(bus.ack, group, deliveries)
        except Exception:  # keep consuming; unacked deliveries come back after the bus's redelivery timeout
            log.exception("bus consumer round failed")
            await asyncio.sleep(1.0)
    log.info("bus consumer stopped", extra={"group": group})
