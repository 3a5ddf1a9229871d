"""Webhooks end to end against a real receiver: signatures, retries, dead letters, re-drive, restarts, leases."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.app import create_app
from api.auth import Role
from api.settings import Settings
from api.store.db import Store
from api.store.incidents import apply_event
from api.store.models import WebhookDelivery
from api.store.outbox import claim_due, create_webhook
from api.webhooks.formats import render
from api.webhooks.signing import sign, verify
from pipelines.bus.base import InProcessBus
from pipelines.events import IncidentEvent
from tests.api.conftest import add_keys, auth, make_event, make_settings, store_of
from tests.api.webhook_receiver import Receiver, wait_for

SECRET = "s3cret-for-tests"
LOOPBACK = "127.0.0.1"  # the receivers listen on loopback, which webhooks reach only when allow-listed


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.start()
    yield r
    r.stop()


def _subscribe(client: TestClient, admin: str, url: str, **extra: Any) -> str:
    r = client.post("/v1/webhooks", json={"url": url, "secret": SECRET, **extra}, headers=auth(admin))
    assert r.status_code == 201, r.text
    assert "secret" not in r.json() and "wecom-token" not in r.json()["url"]
    return str(r.json()["id"])


def _deliveries(client: TestClient, admin: str, hook: str, **params: str) -> list[dict[str, Any]]:
    r = client.get(f"/v1/webhooks/{hook}/deliveries", params=params, headers=auth(admin))
    assert r.status_code == 200, r.text
    return list(r.json())


def test_one_signed_delivery_per_event_via_the_bus(tmp_path: Path, sqlite_url: str, receiver: Receiver) -> None:
    bus = InProcessBus()
    app = create_app(make_settings(tmp_path, sqlite_url, webhook_allow_hosts=LOOPBACK), bus=bus)
    admin = add_keys(app.state.ctx.store)[Role.admin]
    with TestClient(app) as client:
        hook = _subscribe(client, admin, receiver.url)
        _subscribe(client, admin, receiver.url + "&other", filters={"rules": ["smoke_fire"]})  # matches nothing
        events = [make_event("inc-a", 0), make_event("inc-a", 1), make_event("inc-b", 0, snapshot_url="b.jpg")]
        for event in [*events, events[0], events[1]]:  # at-least-once producers: duplicates must not re-deliver
            bus.publish(event)
        wait_for(lambda: receiver.count() >= 3)
        time.sleep(0.3)
        assert receiver.count() == 3
        wait_for(lambda: all(d["status"] == "delivered" for d in _deliveries(client, admin, hook)))
        assert len(_deliveries(client, admin, hook)) == 3
    seen = set()
    for got in receiver.received:
        h = {k.lower(): v for k, v in got.headers.items()}
        assert verify(SECRET, h["x-safewatch-timestamp"], got.body, h["x-safewatch-signature"])
        event = IncidentEvent.model_validate_json(got.body)
        assert h["x-safewatch-event-id"] == event.event_key
        seen.add(event.event_key)
    assert seen == {"inc-a:0", "inc-a:1", "inc-b:0"}
    b = json.loads(next(g.body for g in receiver.received if b'"inc-b"' in g.body))
    assert b["snapshot_url"].startswith("http://safewatch.test/v1/incidents/inc-b/snapshot.jpg?exp=")  # signed


def test_receiver_down_for_a_while_is_retried(tmp_path: Path, sqlite_url: str, receiver: Receiver) -> None:
    receiver.stop()
    app = create_app(make_settings(tmp_path, sqlite_url, webhook_max_attempts=50, webhook_allow_hosts=LOOPBACK))
    admin = add_keys(app.state.ctx.store)[Role.admin]
    with TestClient(app) as client:
        hook = _subscribe(client, admin, receiver.url)
        apply_event(app.state.ctx.store, make_event("down", 0))
        wait_for(lambda: _deliveries(client, admin, hook)[0]["attempts"] >= 2)
        failed = _deliveries(client, admin, hook)[0]
        assert (failed["status"], failed["last_error"]) == ("pending", "connect_error")
        receiver.start()
        wait_for(lambda: _deliveries(client, admin, hook)[0]["status"] == "delivered")
        assert receiver.count() == 1


def test_dead_letter_then_redrive(tmp_path: Path, sqlite_url: str, receiver: Receiver) -> None:
    receiver.status = 500
    app = create_app(make_settings(tmp_path, sqlite_url, webhook_max_attempts=3, webhook_allow_hosts=LOOPBACK))
    admin = add_keys(app.state.ctx.store)[Role.admin]
    with TestClient(app) as client:
        hook = _subscribe(client, admin, receiver.url, format="dingtalk")
        apply_event(app.state.ctx.store, make_event("dead", 0))
        wait_for(lambda: _deliveries(client, admin, hook)[0]["status"] == "dead")
        (dead,) = _deliveries(client, admin, hook, status="dead")
        assert (dead["attempts"], dead["response_code"], receiver.count()) == (3, 500, 3)
        assert dead["last_error"] == "http_500"
        time.sleep(0.3)
        assert receiver.count() == 3  # dead letters are not retried
        receiver.status = 200
        r = client.post(f"/v1/webhooks/{hook}/deliveries/{dead['id']}/redrive", headers=auth(admin))
        assert r.json() == {"redriven": 1}
        wait_for(lambda: _deliveries(client, admin, hook)[0]["status"] == "delivered")
        assert receiver.count() == 4
        assert (
            client.post(f"/v1/webhooks/{hook}/deliveries/{dead['id']}/redrive", headers=auth(admin)).status_code == 404
        )
        assert client.post(f"/v1/webhooks/{hook}/redrive", headers=auth(admin)).json() == {"redriven": 0}
        metrics = client.get("/metrics", headers=auth(admin)).text
        assert 'safewatch_webhook_failures_total{final="true",format="dingtalk"} 1.0' in metrics
    body = json.loads(receiver.received[-1].body)
    assert body["msgtype"] == "markdown" and "消防通道占用" in body["markdown"]["title"]  # zh-CN by default


def test_restart_resumes_outbox_without_duplicates(db_url: str, tmp_path: Path, receiver: Receiver) -> None:
    quiet = create_app(make_settings(tmp_path, db_url, webhook_dispatcher=False, webhook_allow_hosts=LOOPBACK))
    admin = add_keys(quiet.state.ctx.store)[Role.admin]
    with TestClient(quiet) as client:
        hook = _subscribe(client, admin, receiver.url)
        for i in range(4):
            apply_event(quiet.state.ctx.store, make_event(f"r{i}", 0))
    # A dispatcher that crashed after claiming one delivery: its lease must expire before anyone re-sends it.
    crashed = Store(db_url, run_migrations=False)
    with crashed.session() as s:
        assert len(claim_due(s, "crashed-owner", lease_s=0.5, batch=1)) == 1
    crashed.dispose()
    for _ in range(2):  # two restarts on the same DB
        app = create_app(make_settings(tmp_path, db_url, webhook_allow_hosts=LOOPBACK))
        with TestClient(app) as client:
            wait_for(lambda: all(d["status"] == "delivered" for d in _deliveries(client, admin, hook)))
            time.sleep(0.2)
    keys = sorted(g.headers["X-Safewatch-Event-Id"] for g in receiver.received)
    assert keys == ["r0:0", "r1:0", "r2:0", "r3:0"]


def test_two_dispatchers_never_claim_the_same_delivery(db_url: str, tmp_path: Path) -> None:
    store = Store(db_url)
    with store.session() as s:
        create_webhook(s, url="http://127.0.0.1:9/", secret=SECRET, fmt="json", filters={})
    for i in range(30):
        apply_event(store, make_event(f"c{i}", 0))
    stores = [store, *(Store(db_url, run_migrations=False) for _ in range(3))]
    claimed: dict[int, list[int]] = {}

    def claim(k: int) -> None:
        got: list[int] = []
        for _ in range(5):
            with stores[k].session() as s:
                got += [c.delivery_id for c in claim_due(s, f"d{k}", lease_s=30, batch=4)]
        claimed[k] = got

    threads = [threading.Thread(target=claim, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    every = [d for got in claimed.values() for d in got]
    assert len(every) == len(set(every)) == 30  # each delivery claimed by exactly one dispatcher
    for s in stores:
        s.dispose()


def test_formats_render_markdown_with_snapshot_link() -> None:
    payload = make_event("f1", 0, snapshot_url="f1/s.jpg").model_dump(mode="json")
    base = "https://sw.example"
    link = f"{base}/v1/incidents/f1/snapshot.jpg"
    ding = json.loads(render("dingtalk", payload, base))
    assert ding["msgtype"] == "markdown" and link in ding["markdown"]["text"] and ding["markdown"]["title"]
    wecom = json.loads(render("wecom", payload, base))
    assert wecom["msgtype"] == "markdown" and link in wecom["markdown"]["content"]
    feishu = json.loads(render("feishu", payload, base))
    post = feishu["content"]["post"]["zh_cn"]
    assert feishu["msg_type"] == "post" and {"tag": "a", "text": "查看快照", "href": link} in post["content"][-1]
    generic = json.loads(render("json", payload, base))
    assert IncidentEvent.model_validate(generic).snapshot_url == link


def test_signature_scheme() -> None:
    body = b'{"id":"x"}'
    assert sign("k", 1700000000, body) == (
        "sha256=" + __import__("hmac").new(b"k", b'1700000000.{"id":"x"}', "sha256").hexdigest()
    )
    now = str(int(time.time()))
    assert verify("k", now, body, sign("k", int(now), body))
    assert not verify("other", now, body, sign("k", int(now), body))
    assert not verify("k", "1", body, sign("k", 1, body))  # too old


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"url": "ftp://x", "secret": SECRET}, "url"),
        ({"url": "http://x", "secret": "short"}, "secret"),
        ({"url": "http://x", "secret": SECRET, "format": "slack"}, "format"),
        ({"url": "http://x", "secret": SECRET, "filters": {"zones": ["a"]}}, "zones"),
        ({"url": "http://x", "secret": SECRET, "extra": 1}, "extra"),
        ({"secret": SECRET}, "url"),
        ({"url": "http://127.0.0.1:6379/", "secret": SECRET}, "loopback address"),
        ({"url": "http://169.254.169.254/latest/meta-data/", "secret": SECRET}, "link-local address"),
    ],
)
def test_bad_subscriptions_are_rejected(
    client: TestClient, keys: dict[Role, str], body: dict[str, Any], fragment: str
) -> None:
    r = client.post("/v1/webhooks", json=body, headers=auth(keys[Role.admin]))
    assert r.status_code == 422 and fragment in r.text
    assert client.get("/v1/webhooks", headers=auth(keys[Role.admin])).json() == []


def test_delete_unknown_webhook_and_settings_defaults(client: TestClient, keys: dict[Role, str]) -> None:
    assert client.delete("/v1/webhooks/nope", headers=auth(keys[Role.admin])).status_code == 404
    assert client.get("/v1/webhooks/nope/deliveries", headers=auth(keys[Role.admin])).status_code == 404
    s = Settings(data_dir=Path("/srv/sw"))
    assert s.database_url == "sqlite:////srv/sw/safewatch.db" and s.media_dir == Path("/srv/sw/media")


def test_deliveries_show_error_classes_never_stored_response_text(tmp_path: Path, sqlite_url: str) -> None:
    """Rows an older release wrote (`HTTP 500: <response body>`, exception text) show only their class."""
    app = create_app(make_settings(tmp_path, sqlite_url, webhook_dispatcher=False))
    store = store_of(app)
    admin = add_keys(store)[Role.admin]
    with store.session() as s:
        hook = create_webhook(s, url="https://hooks.example/a", secret=SECRET, fmt="json", filters={}).id
    apply_event(store, make_event("old-1", 0))
    apply_event(store, make_event("old-2", 0))
    with store.session() as s:
        old_http, old_exc = sorted(s.scalars(select(WebhookDelivery)), key=lambda d: d.id)
        old_http.last_error, old_http.response_code = "HTTP 500: internal-secret-body", 500
        old_exc.last_error = "ConnectError: http://10.0.0.7:6379 refused"
    with TestClient(app) as client:
        shown = _deliveries(client, admin, hook)
    assert sorted(d["last_error"] for d in shown) == ["http_500", "request_error"]
    assert "internal-secret-body" not in json.dumps(shown) and "10.0.0.7" not in json.dumps(shown)
