"""`/metrics` in distributed mode: worker gauges read from the heartbeats that `LeaseManager` writes to Redis."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from api.auth import Role
from api.distributed import RedisWorkers
from api.metrics import Metrics
from api.service_api import ApiService
from pipelines.bus.redis_client import connect
from pipelines.distributed.leases import LeaseConfig, LeaseManager, WorkerLoad
from tests.api.conftest import add_keys, make_settings, store_of
from tests.fixtures.redis import RedisNamespace, RedisServer

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _samples(text: str) -> Samples:
    """(metric name, sorted labels) → value, parsed with prometheus_client's own exposition parser."""
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _beat(client: redis.Redis, prefix: str, worker: str, load: WorkerLoad, ttl_s: float = 30.0) -> LeaseManager:
    """Write one heartbeat exactly as a worker does (the real LeaseManager, not a hand-written key)."""
    leases = LeaseManager(client, prefix, worker, host=f"host-{worker}", config=LeaseConfig(ttl_s=ttl_s))
    leases.bind(load=lambda: load, on_lost=lambda _camera: None)
    leases.heartbeat()
    return leases


@pytest.mark.redis
def test_metrics_show_each_workers_heartbeat(redis_ns: RedisNamespace) -> None:
    client = connect(redis_ns.url, timeout_s=2.0)
    metrics = Metrics()
    metrics.watch_workers(RedisWorkers(client, redis_ns.prefix))
    assert _samples(metrics.render().decode())[("safewatch_workers", ())] == 0  # no worker yet: 0, not missing
    _beat(client, redis_ns.prefix, "w1", WorkerLoad(cameras=["gate-3", "yard"], fps=9.5, lag_s=0.25))
    _beat(client, redis_ns.prefix, "w2", WorkerLoad(cameras=["dock"], fps=5.0, lag_s=1.5))
    before = time.time()
    samples = _samples(metrics.render().decode())

    assert samples[("safewatch_workers", ())] == 2
    w1, w2 = (("host", "host-w1"), ("worker", "w1")), (("host", "host-w2"), ("worker", "w2"))
    assert samples[("safewatch_worker_fps", w1)] == 9.5 and samples[("safewatch_worker_fps", w2)] == 5.0
    assert samples[("safewatch_worker_lag_seconds", w1)] == 0.25
    assert samples[("safewatch_worker_lag_seconds", w2)] == 1.5
    assert samples[("safewatch_worker_cameras", w1)] == 2 and samples[("safewatch_worker_cameras", w2)] == 1
    assert before - 5 < samples[("safewatch_worker_last_seen_timestamp_seconds", w1)] <= before
    running = {dict(k[1])["camera"]: dict(k[1])["worker"] for k in samples if k[0] == "safewatch_camera_worker"}
    assert running == {"gate-3": "w1", "yard": "w1", "dock": "w2"}

    # a worker whose heartbeat expired (killed) drops out at the next scrape
    client.pexpire(f"{redis_ns.prefix}:worker:w2", 1)
    time.sleep(0.05)
    samples = _samples(metrics.render().decode())
    assert samples[("safewatch_workers", ())] == 1 and ("safewatch_worker_fps", w2) not in samples
    assert {dict(k[1])["camera"] for k in samples if k[0] == "safewatch_camera_worker"} == {"gate-3", "yard"}


@pytest.mark.redis
def test_metrics_endpoint_serves_worker_gauges_and_survives_redis_outage(
    redis_server_factory: Callable[..., RedisServer], tmp_path: Path
) -> None:
    server = redis_server_factory()  # private: this test stops it
    client = connect(server.url, timeout_s=1.0)
    _beat(client, "sw", "w1", WorkerLoad(cameras=["gate-3"], fps=4.0, lag_s=0.5))
    (tmp_path / "cameras").mkdir()
    settings = make_settings(tmp_path, f"sqlite:///{tmp_path / 'store.db'}", redis_url=server.url, redis_prefix="sw")
    service = ApiService(settings)  # what `safewatch api` serves
    viewer = add_keys(store_of(service.app))[Role.viewer]
    with TestClient(service.app) as http:
        text = http.get("/metrics", headers={"X-API-Key": viewer}).text
        assert 'safewatch_camera_worker{camera="gate-3",worker="w1"} 1.0' in text
        assert 'safewatch_worker_fps{host="host-w1",worker="w1"} 4.0' in text
        server.stop()
        started = time.monotonic()
        down = http.get("/metrics", headers={"X-API-Key": viewer})
        assert down.status_code == 200 and time.monotonic() - started < 5  # the store gauges still answer
        assert "safewatch_incidents" in down.text and "safewatch_worker_fps" not in down.text
    service.close()


def test_workers_route_says_503_when_redis_is_unreachable(tmp_path: Path) -> None:
    """A `WorkersProvider` backed by a Redis that does not answer (a closed port) → 503 with a reason, not 500."""
    import socket

    from fastapi.testclient import TestClient

    from api.app import create_app
    from api.distributed import RedisWorkers
    from api.settings import Settings
    from pipelines.bus.redis_client import redis_client
    from tests.api.conftest import add_keys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket is closed
    client = redis_client(f"redis://127.0.0.1:{port}/0")
    settings = Settings(data_dir=tmp_path / "data", config_dir=tmp_path / "cams", webhook_dispatcher=False)
    app = create_app(settings, workers=RedisWorkers(client, "swtest-down"))
    keys = add_keys(app.state.ctx.store)
    with TestClient(app) as http:
        r = http.get("/v1/workers", headers={"X-API-Key": next(iter(keys.values()))})
    assert r.status_code == 503 and "Redis" in r.json()["detail"]


@pytest.mark.redis
def test_metrics_show_each_workers_spool_from_its_heartbeat(redis_ns: RedisNamespace, tmp_path: Path) -> None:
    """A worker's bus spools through an outage of *its* Redis URL and drops at a small cap; the heartbeat (on the
    deployment's Redis) carries the spool's size and drops, and `safewatch api`'s /metrics shows them."""
    from pipelines.bus.redis_streams import RedisStreamBus
    from tests.fixtures.redis import free_port
    from tests.pipelines.bus.test_spool_cap import incident

    dead = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens: every publish goes to the spool
    bus = RedisStreamBus(dead, prefix="t", spool_dir=tmp_path / "spool", spool_max_bytes=8_000, close_drain_s=0)
    client = connect(redis_ns.url, timeout_s=2.0)
    try:
        for event in incident(0, updates=60):
            bus.publish(event)
        stats = bus.spool_stats()
        assert stats.dropped["updated"] > 0
        leases = LeaseManager(client, redis_ns.prefix, "w1", host="host-w1", spool=bus.spool_stats)
        leases.bind(load=WorkerLoad, on_lost=lambda _camera: None)
        leases.heartbeat()
    finally:
        bus.close()
    (tmp_path / "cameras").mkdir()
    settings = make_settings(
        tmp_path, f"sqlite:///{tmp_path / 'store.db'}", redis_url=redis_ns.url, redis_prefix=redis_ns.prefix
    )
    service = ApiService(settings)
    viewer = add_keys(store_of(service.app))[Role.viewer]
    try:
        with TestClient(service.app) as http:
            samples = _samples(http.get("/metrics", headers={"X-API-Key": viewer}).text)
    finally:
        service.close()
    assert samples[("safewatch_spool_bytes", (("worker", "w1"),))] == stats.bytes > 0
    dropped = ("safewatch_spool_dropped_total", (("type", "updated"), ("worker", "w1")))
    assert samples[dropped] == stats.dropped["updated"]
