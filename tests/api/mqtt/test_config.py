"""Parsing of SAFEWATCH_MQTT_URL, topic names, the settings' validation and the status change rule (table tests)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from api.mqtt.broker import BrokerUrl
from api.mqtt.status import CameraReport, CameraStatus
from api.mqtt.topics import Topics, level
from api.settings import Settings
from pipelines.camera.state import CameraState


@pytest.mark.parametrize(
    ("url", "host", "port", "tls", "user", "password"),
    [
        ("mqtt://broker.example", "broker.example", 1883, False, None, None),
        ("mqtt://broker.example:1884", "broker.example", 1884, False, None, None),
        ("mqtts://broker.example", "broker.example", 8883, True, None, None),
        ("mqtt://user:pa%40ss@broker.example:1883", "broker.example", 1883, False, "user", "pa@ss"),
        ("mqtts://user@broker.example/", "broker.example", 8883, True, "user", None),
    ],
)
def test_broker_url(url: str, host: str, port: int, tls: bool, user: str | None, password: str | None) -> None:
    broker = BrokerUrl.parse(url)
    assert (broker.host, broker.port, broker.tls, broker.username, broker.password) == (host, port, tls, user, password)
    if password:
        assert password not in str(broker) and password not in repr(broker)


@pytest.mark.parametrize(
    "url",
    [
        "http://user:hunter2@broker.example",
        "mqtt://user:hunter2@",
        "mqtt://user:hunter2@broker.example:99999",
        "mqtt://user:hunter2@broker.example/topic",
        "broker.example:1883",
    ],
)
def test_bad_broker_url_is_refused_without_the_password(url: str) -> None:
    with pytest.raises(ValueError) as err:
        BrokerUrl.parse(url)
    assert "hunter2" not in str(err.value)


def test_topics() -> None:
    t = Topics("plant/sw")
    assert t.events == "plant/sw/events"
    assert t.available == "plant/sw/available"
    assert t.rule("sip-plot-12", "gate-3", "exit_blocked") == "plant/sw/sip-plot-12/gate-3/exit_blocked"
    assert t.status("site/a+b#", "gate-3") == "plant/sw/site_a_b_/gate-3/status"
    assert level("") == "_"


def test_settings(tmp_path: Path) -> None:
    s = Settings(data_dir=tmp_path, mqtt_url="mqtt://sw:hunter2@broker.example:1883", mqtt_topic_prefix="a/b")
    assert "hunter2" not in repr(s)
    with pytest.raises(ValidationError) as err:
        Settings(data_dir=tmp_path, mqtt_url="ftp://sw:hunter2@broker.example")
    msg = err.value.errors()[0]["msg"]  # what `safewatch` prints for a bad setting (cli/common.py)
    assert "mqtt://" in msg and "ftp://***@broker.example" in msg and "hunter2" not in msg
    for prefix in ("", "/a", "a/", "a/+", "a/#", "a//b"):
        with pytest.raises(ValidationError):
            Settings(data_dir=tmp_path, mqtt_topic_prefix=prefix)


def _status(state: CameraState | None, fps: float | None, open_incidents: int = 0) -> CameraStatus:
    return CameraStatus.of(CameraReport("gate-3", "sip-plot-12", state, fps), open_incidents)


@pytest.mark.parametrize(
    ("before", "after", "changed"),
    [
        (None, _status(CameraState.STREAMING, 5.0), True),
        (_status(CameraState.STREAMING, 5.0), _status(CameraState.STREAMING, 5.2), False),
        (_status(CameraState.STREAMING, 5.0), _status(CameraState.STREAMING, 6.0), True),
        (_status(CameraState.STREAMING, 5.0), _status(CameraState.STREAMING, 5.0, 1), True),
        (_status(CameraState.CONNECTING, 0.0), _status(CameraState.RECONNECTING, 0.0), True),
        (_status(CameraState.STREAMING, 5.0), _status(None, None), True),
        (_status(None, None), _status(None, None), False),
    ],
)
def test_status_published_on_change(before: CameraStatus | None, after: CameraStatus, changed: bool) -> None:
    assert after.changed(before) is changed


@pytest.mark.parametrize(
    ("state", "shown"),
    [(CameraState.STREAMING, "streaming"), *((s, "offline") for s in CameraState if s != CameraState.STREAMING)],
)
def test_every_camera_state_maps_to_streaming_or_offline(state: CameraState, shown: str) -> None:
    assert _status(state, 1.0).state.value == shown
