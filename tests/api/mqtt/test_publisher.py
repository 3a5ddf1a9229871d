"""The MQTT publisher against a real, private Mosquitto broker and a real store (SQLite)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from api.links import public_event
from api.mqtt.session import OFFLINE, ONLINE
from api.store.db import Store
from api.store.incidents import apply_event
from pipelines.events import IncidentEvent
from tests.api.conftest import make_event
from tests.api.mqtt.conftest import Mosquitto, Subscriber
from tests.api.mqtt.helpers import BASE_URL, keys, metric, publisher, wait_until

PFX = "sw-test"


def _events() -> list[IncidentEvent]:
    """Two incidents interleaved, the second on another camera and rule, both closed in the end."""
    out = []
    for seq in range(4):
        out.append(make_event("inc-a", seq))
        out.append(make_event("inc-b", seq, camera_id="yard-1", rule="no_helmet", zone="work_area"))
    out.append(make_event("inc-a", 4, type="closed"))
    out.append(make_event("inc-b", 4, type="closed", camera_id="yard-1", rule="no_helmet", zone="work_area"))
    return out


@pytest.fixture
def store(sqlite_url: str) -> Store:
    return Store(sqlite_url)


def test_every_stored_event_once_in_order(
    store: Store, mosquitto: Callable[..., Mosquitto], subscriber: Callable[..., Subscriber], tmp_path: Path
) -> None:
    broker = mosquitto()
    sub = subscriber(broker, f"{PFX}/#")
    pub, metrics = publisher(store, broker.url(), PFX, tmp_path / "cursor.json")
    pub.start()
    try:
        wait_until(pub.connected.is_set, "publisher connected")
        events = _events()
        for event in events:
            assert apply_event(store, event).applied
        apply_event(store, events[0])  # a redelivery the store ignores: not published again
        sub.wait(lambda: len(sub.on(f"{PFX}/events")) >= len(events), "all events on <prefix>/events")
        wait_until(lambda: metric(metrics, "safewatch_mqtt_events_published_total") == len(events), "all acked")
        wait_until(lambda: metric(metrics, "safewatch_mqtt_backlog") == 0, "backlog gauge at 0")
    finally:
        pub.stop()
    got = sub.on(f"{PFX}/events")
    assert keys(got) == [(e.id, e.seq) for e in events]  # once each, in store order
    assert [json.loads(m.payload) for m in got] == [public_event(e.model_dump(mode="json"), BASE_URL) for e in events]
    per_rule_a = sub.on(f"{PFX}/sip-plot-12/gate-3/exit_blocked")
    per_rule_b = sub.on(f"{PFX}/sip-plot-12/yard-1/no_helmet")
    assert keys(per_rule_a) == [("inc-a", s) for s in range(5)]
    assert keys(per_rule_b) == [("inc-b", s) for s in range(5)]
    assert not any(m.retain for m in got + per_rule_a + per_rule_b)
    sub.wait(lambda: len(sub.on(f"{PFX}/available")) >= 2, "offline after the clean stop")  # delivered async
    assert [m.payload for m in sub.on(f"{PFX}/available")] == [ONLINE, OFFLINE]  # clean stop says offline itself


def test_backlog_resent_in_order_after_broker_restart(
    store: Store, mosquitto: Callable[..., Mosquitto], subscriber: Callable[..., Subscriber], tmp_path: Path
) -> None:
    broker = mosquitto()
    sub = subscriber(broker, f"{PFX}/events")  # persistent session: the broker keeps it across its restart
    pub, metrics = publisher(store, broker.url(), PFX, tmp_path / "cursor.json")
    pub.start()
    try:
        wait_until(pub.connected.is_set, "publisher connected")
        before, during = _events()[:4], _events()[4:]
        for event in before:
            apply_event(store, event)
        sub.wait(lambda: len(sub.on(f"{PFX}/events")) == len(before), "events before the outage")
        wait_until(lambda: metric(metrics, "safewatch_mqtt_events_published_total") == len(before), "acked")
        broker.stop()
        wait_until(lambda: not pub.connected.is_set(), "publisher noticed the outage")
        for event in during:  # the store takes events while the broker is down
            assert apply_event(store, event).applied
        wait_until(lambda: metric(metrics, "safewatch_mqtt_backlog") == len(during), "backlog counted")
        assert metric(metrics, "safewatch_mqtt_connected") == 0
        broker.start()
        sub.wait(lambda: len({*keys(sub.on(f"{PFX}/events"))}) == len(before) + len(during), "the backlog")
        wait_until(lambda: metric(metrics, "safewatch_mqtt_backlog") == 0, "backlog drained")
    finally:
        pub.stop()
    received = sub.on(f"{PFX}/events")
    fresh = keys([m for m in received if not m.dup])
    assert fresh == [(e.id, e.seq) for e in before + during]  # in order, published once (all acked before the outage)
    # The broker itself may redeliver (DUP set) what it had sent the subscriber just before it stopped, if the
    # subscriber's acknowledgement had not reached its persisted state: QoS 1 to the subscriber, not the publisher.
    assert set(keys([m for m in received if m.dup])) <= {(e.id, e.seq) for e in before}
    assert metric(metrics, "safewatch_mqtt_events_dropped_total") == 0


def test_backlog_is_bounded_and_counted(
    store: Store, mosquitto: Callable[..., Mosquitto], subscriber: Callable[..., Subscriber], tmp_path: Path
) -> None:
    broker = mosquitto()
    sub = subscriber(broker, f"{PFX}/events")
    pub, metrics = publisher(store, broker.url(), PFX, tmp_path / "cursor.json", backlog_max=3)
    pub.start()
    try:
        wait_until(pub.connected.is_set, "publisher connected")
        broker.stop()
        wait_until(lambda: not pub.connected.is_set(), "publisher noticed the outage")
        events = _events()
        for event in events:
            apply_event(store, event)
        wait_until(lambda: metric(metrics, "safewatch_mqtt_events_dropped_total") == len(events) - 3, "drops")
        broker.start()
        sub.wait(lambda: len(sub.on(f"{PFX}/events")) == 3, "the newest 3 events")
        wait_until(lambda: metric(metrics, "safewatch_mqtt_backlog") == 0, "backlog drained")
    finally:
        pub.stop()
    assert keys(sub.on(f"{PFX}/events")) == [(e.id, e.seq) for e in events[-3:]]


def test_restart_resumes_from_the_persisted_cursor(
    store: Store, mosquitto: Callable[..., Mosquitto], subscriber: Callable[..., Subscriber], tmp_path: Path
) -> None:
    broker = mosquitto()
    sub = subscriber(broker, f"{PFX}/events")
    cursor = tmp_path / "cursor.json"
    first, before, after = _events()[:2], _events()[2:5], _events()[5:]
    for event in first:  # stored before MQTT was ever configured: not published (no cursor yet)
        apply_event(store, event)
    pub, _ = publisher(store, broker.url(), PFX, cursor)
    pub.start()
    wait_until(pub.connected.is_set, "publisher connected")
    for event in before:
        apply_event(store, event)
    sub.wait(lambda: len(sub.on(f"{PFX}/events")) == len(before), "events of the first run")
    pub.stop()
    for event in after:  # stored while no publisher runs
        apply_event(store, event)
    pub, _ = publisher(store, broker.url(), PFX, cursor)
    pub.start()
    try:
        sub.wait(lambda: len(sub.on(f"{PFX}/events")) == len(before + after), "events stored meanwhile")
    finally:
        pub.stop()
    assert keys(sub.on(f"{PFX}/events")) == [(e.id, e.seq) for e in before + after]


def test_credentials_are_used_and_never_logged(
    store: Store,
    mosquitto: Callable[..., Mosquitto],
    subscriber: Callable[..., Subscriber],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    broker = mosquitto(users={"sw": "s3cret-pw", "reader": "r3ader-pw"})
    sub = subscriber(broker, f"{PFX}/available", auth=("reader", "r3ader-pw"))
    wrong, wrong_metrics = publisher(store, broker.url("sw:wrong-pw"), PFX, tmp_path / "c1.json")
    wrong.start()
    try:
        wait_until(lambda: "connection refused" in caplog.text, "the broker refused the wrong password")
        assert metric(wrong_metrics, "safewatch_mqtt_connected") == 0
    finally:
        wrong.stop()
    pub, _ = publisher(store, broker.url("sw:s3cret-pw"), PFX, tmp_path / "c2.json")
    pub.start()
    try:
        sub.wait(lambda: [m.payload for m in sub.on(f"{PFX}/available")][-1:] == [ONLINE], "online")
    finally:
        pub.stop()
    assert "s3cret-pw" not in caplog.text and "wrong-pw" not in caplog.text
    assert f"mqtt://***@127.0.0.1:{broker.port}" in caplog.text


def test_mqtts_verifies_the_broker_certificate(
    store: Store,
    mosquitto: Callable[..., Mosquitto],
    subscriber: Callable[..., Subscriber],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    broker = mosquitto(tls=True)
    sub = subscriber(broker, f"{PFX}/available")  # on the plain listener of the same broker
    url = f"mqtts://127.0.0.1:{broker.tls_port}"
    untrusted, metrics = publisher(store, url, PFX, tmp_path / "c1.json")  # the system CAs do not know the test CA
    untrusted.start()
    try:
        wait_until(lambda: "CERTIFICATE_VERIFY_FAILED" in caplog.text, "the unknown certificate refused")
        assert metric(metrics, "safewatch_mqtt_connected") == 0
    finally:
        untrusted.stop()
    pub, _ = publisher(store, url, PFX, tmp_path / "c2.json", ca_file=str(broker.workdir / "ca.crt"))
    pub.start()
    try:
        sub.wait(lambda: [m.payload for m in sub.on(f"{PFX}/available")][-1:] == [ONLINE], "online over TLS")
    finally:
        pub.stop()
