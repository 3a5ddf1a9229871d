"""Push rate control against real receivers: a burst of 60 incidents from 3 cameras × 2 rules.

Two paced subscriptions (generic JSON and DingTalk), a 1 s interval per (camera, rule) and a limit of 6 messages in
a 2 s window (`webhook_rate_window_s` shortens the minute). The JSON receiver fails its first requests, so digests
are retried. Checked on what the receivers saw: every incident in exactly one delivered message (its own or a
digest's), messages of one (camera, rule) at least the interval apart, never more than the limit in any window
(failed attempts counted too), nothing dropped (every outbox row delivered), retried messages with the same id and
the same content, and the digests' zh-CN text with the camera's name, time zone and links.
"""

from __future__ import annotations

import json
import re
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import Role
from api.store.db import Store
from api.store.incidents import apply_event
from api.store.outbox import BackoffFn, Outcome, create_webhook, record_outcome
from api.store.pacing import Limits, claim_paced, release
from api.webhooks.signing import verify
from tests.api.conftest import add_keys, auth, make_event, make_settings
from tests.api.webhook_receiver import Received, Receiver, wait_for

pytestmark = pytest.mark.timeout(120)

SECRET = "s3cret-for-tests"
LOOPBACK = "127.0.0.1"
CAMERAS = ("gate-1", "gate-2", "yard-1")
RULES = ("intrusion", "no_helmet")
PER_GROUP = 10  # 60 incidents in all
INTERVAL_S = 1
LIMIT = 6
WINDOW_S = 2.0
GAP_S = 0.04  # between two incidents of the burst: ~2.4 s in all
CAMERA_YAML = """id: gate-1
site: north
name: 1号门
streams:
  detect: rtsp://cam1.example/stream
schedule:
  timezone: Asia/Shanghai
  windows: [{start: "00:00", end: "24:00"}]
"""


@pytest.fixture
def receivers() -> Iterator[tuple[Receiver, Receiver]]:
    pair = (Receiver(), Receiver())
    for r in pair:
        r.start()
    yield pair
    for r in pair:
        r.stop()


def _incident(n: int) -> tuple[str, str, str]:
    camera, rule = CAMERAS[n % len(CAMERAS)], RULES[(n // len(CAMERAS)) % len(RULES)]
    return f"b{n:02d}-{camera}-{rule}", camera, rule


def _subscribe(client: TestClient, admin: str, url: str, fmt: str) -> str:
    body = {"url": url, "secret": SECRET, "format": fmt, "min_interval_s": INTERVAL_S, "rate_limit_per_min": LIMIT}
    r = client.post("/v1/webhooks", json=body, headers=auth(admin))
    assert r.status_code == 201, r.text
    assert (r.json()["language"], r.json()["events"]) == ("zh-CN", ["incident"])
    return str(r.json()["id"])


def _json_message(got: Received) -> tuple[str, list[str]]:
    """(group, incident ids) of a generic JSON message: one event, or a digest's events."""
    body = json.loads(got.body)
    events = body["events"] if body.get("kind") == "incident.digest" else [body]
    return f"{body['rule']}@{body['camera_id']}", [e["id"] for e in events]


def _chat_message(got: Received) -> tuple[str, list[str]]:
    text = json.loads(got.body)["markdown"]["text"]
    ids = re.findall(r"\b(b\d\d-[a-z0-9-]+-(?:intrusion|no_helmet)):0\b", text)
    (group,) = {f"{i.rsplit('-', 1)[1]}@{_camera(i)}" for i in ids}
    return group, ids


def _camera(incident: str) -> str:
    return next(c for c in CAMERAS if f"-{c}-" in incident)


def _check(received: list[Received], parse: Any, everyone: set[str]) -> dict[str, list[str]]:
    """The invariants on one receiver; returns the delivered messages' incident ids by event id."""
    for got in received:
        h = {k.lower(): v for k, v in got.headers.items()}
        assert verify(SECRET, h["x-safewatch-timestamp"], got.body, h["x-safewatch-signature"])
    times = sorted(g.at for g in received)  # every attempt counts against the platform's limit
    assert max(sum(1 for t in times if s <= t < s + WINDOW_S) for s in times) <= LIMIT
    by_group: dict[str, list[float]] = defaultdict(list)
    bodies: dict[str, set[bytes]] = defaultdict(set)
    delivered: dict[str, list[str]] = {}
    for got in received:
        group, ids = parse(got)
        by_group[group].append(got.at)
        event_id = got.headers["X-Safewatch-Event-Id"]
        bodies[event_id].add(json.dumps(sorted(ids)).encode())
        if got.status == 200:
            delivered[event_id] = ids
    for group, at in by_group.items():
        gaps = [b - a for a, b in zip(sorted(at), sorted(at)[1:], strict=False)]
        assert min(gaps, default=INTERVAL_S) >= INTERVAL_S - 0.005, (group, gaps)
    assert all(len(b) == 1 for b in bodies.values())  # a retried message is the same message
    every = [i for ids in delivered.values() for i in ids]
    assert sorted(every) == sorted(everyone)  # each incident in exactly one delivered message
    return delivered


def test_burst_is_folded_into_digests_within_the_rate(
    tmp_path: Path, db_url: str, receivers: tuple[Receiver, Receiver]
) -> None:
    plain, ding = receivers
    plain.fail_next = 3  # retried with the same ids
    settings = make_settings(
        tmp_path,
        db_url,
        webhook_allow_hosts=LOOPBACK,
        webhook_rate_window_s=WINDOW_S,
        webhook_max_attempts=20,
        webhook_backoff_max_s=0.3,
    )
    settings.config_dir.mkdir(parents=True)
    (settings.config_dir / "gate-1.yaml").write_text(CAMERA_YAML, encoding="utf-8")
    app = create_app(settings)
    store = app.state.ctx.store
    admin = add_keys(store)[Role.admin]
    with TestClient(app) as client:
        hooks = [_subscribe(client, admin, plain.url, "json"), _subscribe(client, admin, ding.url, "dingtalk")]
        everyone = set()
        for n in range(len(CAMERAS) * len(RULES) * PER_GROUP):
            incident, camera, rule = _incident(n)
            apply_event(store, make_event(incident, 0, camera_id=camera, rule=rule, site="north"))
            everyone.add(incident)
            time.sleep(GAP_S)

        def rows(hook: str) -> list[dict[str, Any]]:
            r = client.get(f"/v1/webhooks/{hook}/deliveries", params={"limit": 1000}, headers=auth(admin))
            return list(r.json())

        for hook in hooks:
            wait_for(lambda h=hook: all(d["status"] == "delivered" for d in rows(h)), timeout=60)
        deliveries = {hook: rows(hook) for hook in hooks}
    for hook, listed in deliveries.items():
        incidents = [d for d in listed if d["kind"] == "incident"]
        digests = {d["id"]: d for d in listed if d["kind"] == "incident.digest"}
        assert len(incidents) == len(everyone) and digests, hook  # nothing dropped, some folded
        assert all(d["digest_id"] is None or d["digest_id"] in digests for d in incidents)
        assert {d["event_key"] for d in digests.values()} <= {f"digest:{d['id']}" for d in incidents}
    sent_plain = _check(plain.received, _json_message, everyone)
    sent_ding = _check(ding.received, _chat_message, everyone)
    assert any(len(ids) > 1 for ids in sent_plain.values()) and any(len(ids) > 1 for ids in sent_ding.values())
    assert len(sent_ding) < len(everyone) / 2  # far fewer messages than incidents
    retried = {g.headers["X-Safewatch-Event-Id"] for g in plain.received if g.status == 503}
    assert retried and retried <= set(sent_plain)
    _check_digest_text(ding.received)


def _check_digest_text(received: list[Received]) -> None:
    """A digest of gate-1 in zh-CN: count, rule and camera name in the title, local times (+08:00), signed links."""
    texts = [json.loads(g.body)["markdown"] for g in received]
    digest = next(t for t in texts if "起区域入侵" in t["title"] and "1号门" in t["title"])
    assert re.search(r"\d+ 起区域入侵（1号门 \(gate-1\)，最近 \d+ 分钟）", digest["title"]), digest["title"]
    assert "+08:00" in digest["text"] and "查看详情" in digest["text"] and "sig=" in digest["text"]
    other = next(t for t in texts if "yard-1" in t["title"])
    assert "1号门" not in other["title"]  # a camera without a config shows its id


def test_one_dispatcher_at_a_time_sends_a_paced_subscription(db_url: str) -> None:
    """The subscription's lease: a second dispatcher claims nothing of it until the first lets go; the rate budget is
    the store's, so neither a second round nor a second dispatcher sends more than the limit."""
    store = Store(db_url)
    with store.session() as s:
        create_webhook(s, url="https://hooks.example/a", secret=SECRET, fmt="json", filters={}, rate_limit_per_min=3)
    for i in range(5):
        apply_event(store, make_event(f"p{i}", 0))
    limits = Limits(lease_s=30, batch=10, window_s=60)
    with store.session() as s:
        first = claim_paced(s, "a", limits)
    with store.session() as s:
        assert claim_paced(s, "b", limits) == []  # held by "a"
    assert [c.event_key for c in first] == ["p0:0", "p1:0", "p2:0"]  # the limit, in order
    with store.session() as s:
        for c in first:
            record_outcome(s, c, "a", Outcome(True, 200, None), max_attempts=3, backoff=BackoffFn(1, 1))
    with store.session() as s:
        assert claim_paced(s, "a", limits) == []  # 3 sent within the window: the others wait
        release(s, "a")
    with store.session() as s:
        assert claim_paced(s, "b", limits) == []  # free now, but the window is the store's
    with store.session() as s:
        later = claim_paced(s, "b", Limits(lease_s=30, batch=10, window_s=0.001))
    assert [c.event_key for c in later] == ["p3:0", "p4:0"]
    store.dispose()
