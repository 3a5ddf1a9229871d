"""Helpers of the MQTT tests: a publisher over a real store, waiting for conditions, reading metrics."""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from api.metrics import Metrics
from api.mqtt.broker import BrokerUrl
from api.mqtt.publisher import MqttOptions, MqttPublisher
from api.mqtt.status import CameraReports
from api.mqtt.topics import Topics
from api.store.db import Store
from tests.api.mqtt.conftest import WAIT_S, Received

BASE_URL = "http://safewatch.test"


def publisher(
    store: Store, url: str, prefix: str, cursor: Path, cameras: CameraReports | None = None, **options: Any
) -> tuple[MqttPublisher, Metrics]:
    metrics = Metrics(store)
    values: dict[str, Any] = {"poll_interval_s": 0.05, "status_interval_s": 0.05, "backoff_max_s": 0.5}
    values.update(options)
    opts = MqttOptions(
        broker=BrokerUrl.parse(url),
        topics=Topics(prefix),
        client_id=f"test-pub-{secrets.token_hex(4)}",
        cursor_path=cursor,
        **values,
    )
    return MqttPublisher(opts, store, metrics, BASE_URL, cameras), metrics


def wait_until(predicate: Callable[[], bool], what: str, timeout_s: float = WAIT_S) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(0.02)


def metric(metrics: Metrics, name: str) -> float:
    return metrics.registry.get_sample_value(name) or 0.0


def keys(messages: list[Received]) -> list[tuple[str, int]]:
    """(incident id, seq) of each event message, in arrival order."""
    out = []
    for m in messages:
        body = json.loads(m.payload)
        out.append((str(body["id"]), int(body["seq"])))
    return out
