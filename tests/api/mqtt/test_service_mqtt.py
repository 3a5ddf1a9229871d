"""`safewatch run` with SAFEWATCH_MQTT_URL: the embedded service publishes exactly the events it stored, in store
order, and the retained status of its camera (demo-gate over the real sample clip, private Mosquitto broker)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.mqtt.session import OFFLINE, ONLINE
from api.service import EmbeddedService
from api.store.models import IncidentEventRow
from tests.api.conftest import make_settings, store_of
from tests.api.mqtt.conftest import Mosquitto, Subscriber
from tests.api.mqtt.helpers import keys, wait_until
from tests.vision.detect.helpers import built_default_models_dir

pytestmark = pytest.mark.timeout(300)
PFX = "sw-e2e"


def test_embedded_service_publishes_what_it_stores(
    tmp_path: Path,
    sqlite_url: str,
    repo_root: Path,
    sample_clip: Path,
    mosquitto: Callable[..., Mosquitto],
    subscriber: Callable[..., Subscriber],
) -> None:
    broker = mosquitto()
    sub = subscriber(broker, f"{PFX}/#")
    config_dir = tmp_path / "cameras"
    config_dir.mkdir()
    text = (repo_root / "camera_configs" / "demo-gate.yaml").read_text(encoding="utf-8")
    (config_dir / "demo-gate.yaml").write_text(text.replace("sample_media/vtest.mp4", str(sample_clip)), "utf-8")
    settings = make_settings(
        tmp_path,
        sqlite_url,
        config_dir=config_dir,
        webhook_dispatcher=False,
        models_dir=built_default_models_dir(),
        mqtt_url=broker.url("sw:any"),  # the broker allows anonymous clients; the name is only logged, redacted
        mqtt_topic_prefix=PFX,
        mqtt_poll_interval_s=0.1,
        mqtt_status_interval_s=0.2,
    )
    service = EmbeddedService(settings, realtime_files=False)  # the clip once, as fast as it decodes
    assert service.mqtt is not None
    with TestClient(service.app):
        service.start()
        try:
            status = f"{PFX}/{_site(text)}/demo-gate/status"
            sub.wait(lambda: any(json.loads(m.payload)["state"] == "streaming" for m in sub.on(status)), "streaming")
            wait_until(lambda: service.worker.status()[0].state.value == "stopped", "the clip played to its end", 240)
            sub.wait(lambda: json.loads(sub.on(status)[-1].payload)["camera_state"] == "stopped", "stopped status")
        finally:
            service.stop_cameras(drain_timeout=30)
        with store_of(service.app).read() as session:
            stored = [(p["id"], p["seq"]) for p in session.scalars(select(IncidentEventRow.payload).order_by(
                IncidentEventRow.number))]  # fmt: skip
    assert stored, "the sample clip raised no incident"
    assert keys(sub.on(f"{PFX}/events")) == stored  # every stored event, once, in store order
    snapshots = [b["snapshot_url"] for b in (json.loads(m.payload) for m in sub.on(f"{PFX}/events"))]
    assert any(snapshots) and all("&sig=" in s for s in snapshots if s)  # signed links, as in webhooks
    assert [m.payload for m in sub.on(f"{PFX}/available")] == [ONLINE, OFFLINE]
    last = json.loads(sub.on(status)[-1].payload)  # "stopped", or null once the stopping worker dropped the camera
    assert (last["camera_id"], last["state"]) == ("demo-gate", "offline") and last["camera_state"] in ("stopped", None)


def _site(yaml_text: str) -> str:
    return next(line.split(":", 1)[1].strip() for line in yaml_text.splitlines() if line.startswith("site:"))
