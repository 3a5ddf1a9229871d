"""`safewatch api` with SAFEWATCH_MQTT_URL: the stored events, and the status of every configured camera from the
workers' heartbeats (held by a live worker = streaming, else offline), on real Redis and a private Mosquitto."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from api.service_api import ApiService
from api.store.incidents import apply_event
from pipelines.bus.redis_client import connect
from pipelines.distributed.leases import LeaseConfig, LeaseManager, WorkerLoad
from tests.api.conftest import make_event, make_settings, store_of
from tests.api.mqtt.conftest import Mosquitto, Subscriber
from tests.api.mqtt.helpers import keys
from tests.fixtures.redis import RedisNamespace

PFX = "sw-api"


@pytest.mark.redis
def test_api_service_publishes_events_and_configured_cameras(
    redis_ns: RedisNamespace,
    tmp_path: Path,
    repo_root: Path,
    mosquitto: Callable[..., Mosquitto],
    subscriber: Callable[..., Subscriber],
) -> None:
    broker = mosquitto()
    sub = subscriber(broker, f"{PFX}/#")
    config_dir = tmp_path / "cameras"
    config_dir.mkdir()
    for name in ("demo-gate.yaml", "demo-yard.yaml"):
        shutil.copy(repo_root / "camera_configs" / name, config_dir / name)
    client = connect(redis_ns.url, timeout_s=2.0)
    leases = LeaseManager(client, redis_ns.prefix, "w1", host="host-w1", config=LeaseConfig(ttl_s=30))
    leases.bind(load=lambda: WorkerLoad(cameras=["demo-gate"], fps=5.0), on_lost=lambda _camera: None)
    leases.heartbeat()  # a live worker runs demo-gate; nobody runs demo-yard
    settings = make_settings(
        tmp_path,
        f"sqlite:///{tmp_path / 'store.db'}",
        config_dir=config_dir,
        redis_url=redis_ns.url,
        redis_prefix=redis_ns.prefix,
        mqtt_url=broker.url(),
        mqtt_topic_prefix=PFX,
        mqtt_poll_interval_s=0.1,
        mqtt_status_interval_s=0.1,
    )
    service = ApiService(settings, sync_interval_s=0.2)
    service.start()
    try:
        gate, yard = f"{PFX}/demo-site/demo-gate/status", f"{PFX}/demo-site/demo-yard/status"
        sub.wait(lambda: bool(sub.on(gate) and sub.on(yard)), "a status per configured camera")
        events = [make_event("inc-1", seq, camera_id="demo-gate", site="demo-site") for seq in (0, 1)]
        for event in events:
            apply_event(store_of(service.app), event)
        sub.wait(lambda: len(sub.on(f"{PFX}/events")) == 2, "the stored events")
        sub.wait(lambda: json.loads(sub.on(gate)[-1].payload)["open_incidents"] == 1, "open incident counted")
    finally:
        service.close()
        client.close()
    assert keys(sub.on(f"{PFX}/events")) == [("inc-1", 0), ("inc-1", 1)]
    first_gate, first_yard = json.loads(sub.on(gate)[0].payload), json.loads(sub.on(yard)[0].payload)
    assert (first_gate["state"], first_gate["camera_state"], first_gate["fps"]) == ("streaming", None, None)
    assert (first_yard["state"], first_yard["open_incidents"]) == ("offline", 0)
