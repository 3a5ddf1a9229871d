"""Retained camera status and the last will, against a real, private Mosquitto broker."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from api.mqtt.session import OFFLINE, ONLINE
from api.mqtt.status import CameraReport
from api.store.db import Store
from api.store.incidents import apply_event
from pipelines.camera.state import CameraState
from tests.api.conftest import make_event
from tests.api.mqtt.conftest import Mosquitto, Subscriber
from tests.api.mqtt.helpers import publisher

PFX = "sw-test"
ROOT = Path(__file__).resolve().parents[3]


def _status(sub: Subscriber, camera: str, site: str = "sip-plot-12") -> list[dict[str, object]]:
    return [json.loads(m.payload) for m in sub.on(f"{PFX}/{site}/{camera}/status")]


def test_retained_status_of_each_camera_updated_on_change(
    sqlite_url: str, mosquitto: Callable[..., Mosquitto], subscriber: Callable[..., Subscriber], tmp_path: Path
) -> None:
    store = Store(sqlite_url)
    broker = mosquitto()
    cameras = [
        CameraReport("gate-3", "sip-plot-12", CameraState.STREAMING, 5.0),
        CameraReport("yard-1", "sip-plot-12", CameraState.RECONNECTING, 0.0),
    ]
    pub, metrics = publisher(store, broker.url(), PFX, tmp_path / "cursor.json", cameras=lambda: list(cameras))
    pub.start()
    try:
        early = subscriber(broker, f"{PFX}/+/+/status")
        early.wait(lambda: len(early.messages) >= 2, "a status per camera")
        late = subscriber(broker, f"{PFX}/+/+/status")  # connects afterwards: gets the retained ones
        late.wait(lambda: len(late.messages) >= 2, "retained status")
        assert all(m.retain for m in late.messages)
        assert _status(late, "gate-3") == [
            {"camera_id": "gate-3", "site": "sip-plot-12", "state": "streaming", "camera_state": "streaming",
             "fps": 5.0, "open_incidents": 0}
        ]  # fmt: skip
        assert _status(late, "yard-1")[0]["state"] == "offline"
        assert _status(late, "yard-1")[0]["camera_state"] == "reconnecting"
        apply_event(store, make_event("inc-a", 0))  # gate-3 gets an open incident
        early.wait(lambda: len(_status(early, "gate-3")) == 2, "status after the incident opened")
        assert _status(early, "gate-3")[-1]["open_incidents"] == 1
        cameras[1] = CameraReport("yard-1", "sip-plot-12", CameraState.STREAMING, 4.9)
        early.wait(lambda: len(_status(early, "yard-1")) == 2, "status after yard-1 streams")
        assert _status(early, "yard-1")[-1]["state"] == "streaming"
        cameras[0] = CameraReport("gate-3", "sip-plot-12", CameraState.STREAMING, 5.1)  # fps noise: no message
        del cameras[1]  # yard-1 no longer reported: offline
        early.wait(lambda: len(_status(early, "yard-1")) == 3, "status of a camera no longer reported")
        assert _status(early, "yard-1")[-1]["state"] == "offline"
        assert _status(early, "yard-1")[-1]["camera_state"] is None
    finally:
        pub.stop()
    assert len(_status(early, "gate-3")) == 2
    assert metrics.registry.get_sample_value("safewatch_mqtt_status_published_total") == 5


def test_last_will_after_kill_9(
    sqlite_url: str, mosquitto: Callable[..., Mosquitto], subscriber: Callable[..., Subscriber], tmp_path: Path
) -> None:
    Store(sqlite_url)  # migrated before the child starts
    broker = mosquitto()
    sub = subscriber(broker, f"{PFX}/available")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.api.mqtt.publisher_proc", broker.url(), PFX, sqlite_url],
        cwd=ROOT,
        stdout=subprocess.PIPE,
    )
    try:
        sub.wait(lambda: [m.payload for m in sub.messages] == [ONLINE], "online")
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        sub.wait(lambda: len(sub.messages) == 2, "the last will")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)
    assert [m.payload for m in sub.messages] == [ONLINE, OFFLINE]
    late = subscriber(broker, f"{PFX}/available")
    late.wait(lambda: len(late.messages) == 1, "retained availability")
    assert late.messages[0].payload == OFFLINE and late.messages[0].retain
