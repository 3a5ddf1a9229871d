"""The store's side of fencing (pipelines/distributed/fencing.py), through the API's bus consumer: lease grants in the
stream raise a camera's newest token, events with an older one are refused (not stored), counted in
`safewatch_fenced_events_total{camera}` and logged once per camera; events without a token are applied as before."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import pytest
import redis

from api.consumer import STORE_GROUP, apply_batch
from api.metrics import Metrics
from api.store.db import Store
from api.store.incidents import camera_fence, incident_events
from pipelines.bus.base import Delivery
from pipelines.bus.redis_streams import RedisStreamBus
from pipelines.distributed.leases import LeaseConfig, LeaseManager
from pipelines.events import EventType, FenceGrant
from tests.api.conftest import make_event
from tests.fixtures.redis import RedisNamespace


@pytest.fixture
def client(redis_ns: RedisNamespace) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(redis_ns.url, decode_responses=True)
    yield c
    c.close()


@pytest.fixture
def bus(redis_ns: RedisNamespace, tmp_path: Path) -> Iterator[RedisStreamBus]:
    b = RedisStreamBus(redis_ns.url, spool_dir=tmp_path / "spool", prefix=redis_ns.prefix, redeliver_after_s=60)
    yield b
    b.close()


def _manager(client: redis.Redis, prefix: str, wid: str) -> LeaseManager:
    return LeaseManager(client, prefix, wid, host="test", config=LeaseConfig(ttl_s=1.0, settle_s=0.0))


def _counter(metrics: Metrics, camera: str) -> float:
    return metrics.registry.get_sample_value("safewatch_fenced_events_total", {"camera": camera}) or 0.0


@pytest.mark.redis
def test_store_refuses_a_former_owners_events_after_a_new_grant(
    client: redis.Redis,
    redis_ns: RedisNamespace,
    bus: RedisStreamBus,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Through the real stream: A opens an incident, A pauses, B is granted the camera (the grant is in the stream
    before anything A sends after waking), B continues the incident; what A sends afterwards is refused, counted and
    logged once; a replay of A's early events is still a plain duplicate; events without a token are applied."""
    prefix = redis_ns.prefix
    a, b = _manager(client, prefix, "a"), _manager(client, prefix, "b")
    assert a.claim("gate-3")
    ta = cast(int, a.token("gate-3"))
    opened = make_event("inc", 0, fence=ta)
    bus.publish(opened)
    client.delete(f"{prefix}:lease:gate-3")  # A paused past its TTL
    assert b.claim("gate-3")
    tb = cast(int, b.token("gate-3"))
    bus.publish(make_event("inc", 1, fence=tb))  # B continues the restored incident
    bus.publish(make_event("inc", 2, fence=ta))  # A wakes up: stale
    bus.publish(make_event("inc", 2, fence=ta, type=EventType.closed))  # still stale, whatever it says
    bus.publish(make_event("new", 0, fence=ta))  # a new incident of A: stale too
    bus.publish(make_event("inc", 2, fence=tb, type=EventType.closed, ended_at=opened.started_at))
    bus.publish(opened)  # A's early event redelivered: a duplicate, not fenced
    bus.publish(make_event("embedded", 0, camera_id="gate-3"))  # no token: never fenced
    store, metrics = Store(f"sqlite:///{tmp_path / 'store.db'}"), Metrics()
    deliveries = bus.consume(STORE_GROUP, "c", max_count=100, timeout_s=1)
    assert len(deliveries) == 10  # 2 grants + 8 events
    logged: set[str] = set()
    with caplog.at_level(logging.WARNING, logger="api.consumer"):
        apply_batch(store, metrics, deliveries, logged)
    with store.read() as session:
        stored = [(e.seq, e.type, e.payload["fence"]) for e in incident_events(session, "inc")]
        assert stored == [(0, "opened", ta), (1, "updated", tb), (2, "closed", tb)]  # one incident, gap-free
        assert incident_events(session, "new") == []
        assert len(incident_events(session, "embedded")) == 1
        assert camera_fence(session, "gate-3") == tb
    assert _counter(metrics, "gate-3") == 3
    assert len([r for r in caplog.records if "former owner" in r.getMessage()]) == 1
    store.dispose()


def test_a_newer_token_in_an_event_raises_the_fence_too(db_url: str) -> None:
    """Without a grant entry (trimmed from the stream), the events' own tokens fence; an older grant changes nothing.
    On SQLite and PostgreSQL (the upsert differs)."""
    store, metrics = Store(db_url), Metrics()
    events = [make_event("x", 0, fence=5), make_event("x", 1, fence=9), make_event("x", 2, fence=5)]
    grants = [FenceGrant(camera_id="gate-3", token=7), FenceGrant(camera_id="gate-4", token=3)]
    deliveries = [Delivery(e, token=str(i)) for i, e in enumerate([*events[:2], *grants, events[2]])]
    apply_batch(store, metrics, deliveries)
    with store.read() as session:
        assert [e.seq for e in incident_events(session, "x")] == [0, 1]
        assert camera_fence(session, "gate-3") == 9 and camera_fence(session, "gate-4") == 3
        assert camera_fence(session, "gate-5") is None
    assert _counter(metrics, "gate-3") == 1
    store.dispose()
