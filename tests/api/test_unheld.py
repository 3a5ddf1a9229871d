"""camera_offline for a camera no worker holds (api/unheld.py), against a real Redis: the API process raises it once
the camera had no lease for offline_after_s, closes it when a worker holds the camera again; with two API processes
only the lock holder raises it; a repeated round or a new lock holder re-publishes nothing new, and the events land in
the store through the real consumer path (idempotent on (id, seq))."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import select

from api.consumer import STORE_GROUP, apply_batch
from api.metrics import Metrics
from api.store.db import Store
from api.store.models import Incident
from api.unheld import UnheldCameras
from pipelines.bus.redis_streams import RedisStreamBus
from pipelines.config.camera import CameraConfig
from pipelines.distributed.leases import LeaseConfig, LeaseManager
from pipelines.events import EventType
from tests.fixtures.redis import RedisNamespace

pytestmark = pytest.mark.redis


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


def _camera(cid: str, **health: Any) -> CameraConfig:
    data = {"id": cid, "site": "yard", "name": cid, "streams": {"detect": "rtsp://cam.example/x"}, "health": health}
    return CameraConfig.model_validate(data)


class Clock:
    def __init__(self) -> None:
        self.t = 1_800_000_000.0

    def __call__(self) -> float:
        return self.t


def test_unheld_camera_opens_once_and_closes_when_a_worker_holds_it(
    client: redis.Redis, redis_ns: RedisNamespace, bus: RedisStreamBus, tmp_path: Path
) -> None:
    cams = {
        "gate": _camera("gate", offline_after_s=30),
        "quiet": _camera("quiet", offline=False),  # the rule is off: never raised
        "held": _camera("held", offline_after_s=30),
    }
    clock = Clock()
    first, second = (UnheldCameras(client, redis_ns.prefix, lambda: cams, bus, clock=clock) for _ in range(2))
    worker = LeaseManager(client, redis_ns.prefix, "w1", config=LeaseConfig(ttl_s=60, settle_s=0))
    assert worker.claim("held")
    assert first.round() == [] and second.round() == []  # first sight: the clock starts
    clock.t += 29.0
    assert first.round() == []
    clock.t += 1.0
    opened = first.round() + second.round()  # only the lock holder checks
    assert [(e.camera_id, e.type, e.rule, e.labels, e.seq) for e in opened] == [
        ("gate", EventType.opened, "camera_offline", ["no_worker"], 0)
    ]
    assert opened[0].offset_s == 30.0 and opened[0].fence is None
    clock.t += 10.0
    assert first.round() == []  # still unheld: nothing new
    first.stop()  # the lock holder goes away: the other continues the same incident
    assert worker.claim("gate")
    clock.t += 5.0
    closed = second.round()
    assert [(e.id, e.type, e.seq) for e in closed] == [(opened[0].id, EventType.closed, 1)]
    assert closed[0].ended_at is not None and closed[0].started_at == opened[0].started_at
    assert client.hgetall(f"{redis_ns.prefix}:health:unheld") == {}

    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    bus.publish(opened[0])  # a re-publish after a crash: the same (id, seq)
    apply_batch(store, Metrics(store), bus.consume(STORE_GROUP, "c", max_count=100, timeout_s=1))
    with store.session() as session:
        rows = session.scalars(select(Incident)).all()
        assert [(r.camera_id, r.rule, r.status) for r in rows] == [("gate", "camera_offline", "closed")]
