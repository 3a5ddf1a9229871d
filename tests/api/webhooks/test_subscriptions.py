"""Subscription settings (pacing, language, event kinds) through the API, and `evidence.checkpoint` deliveries."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import Role
from api.store.checkpoints import record_checkpoints
from api.store.incidents import apply_event
from api.store.keys import create_key
from api.webhooks.signing import verify
from tests.api.conftest import add_keys, auth, make_event, make_settings, store_of
from tests.api.webhook_receiver import Receiver, wait_for
from vision.media.chain import EvidenceChain
from vision.media.signing import generate, load_signer

SECRET = "s3cret-for-tests"
HOOK = "https://hooks.example/robot/send?access_token=t0ken"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.start()
    yield r
    r.stop()


def _post(client: TestClient, admin: str, **body: Any) -> Any:
    return client.post("/v1/webhooks", json={"url": HOOK, "secret": SECRET, **body}, headers=auth(admin))


def test_defaults_per_format_and_patch(client: TestClient, keys: dict[Role, str]) -> None:
    admin = keys[Role.admin]
    plain = _post(client, admin).json()
    assert [plain[k] for k in ("min_interval_s", "rate_limit_per_min", "language", "events")] == [
        0,
        0,
        "zh-CN",
        ["incident"],
    ]
    ding = _post(client, admin, format="dingtalk").json()
    assert (ding["rate_limit_per_min"], _post(client, admin, format="feishu").json()["rate_limit_per_min"]) == (20, 100)
    assert _post(client, admin, format="wecom", rate_limit_per_min=0).json()["rate_limit_per_min"] == 0
    r = client.patch(
        f"/v1/webhooks/{ding['id']}",
        json={"min_interval_s": 300, "language": "en", "events": ["incident", "evidence.checkpoint"]},
        headers=auth(admin),
    )
    assert r.status_code == 200, r.text
    changed = r.json()
    assert (changed["min_interval_s"], changed["language"], changed["rate_limit_per_min"]) == (300, "en", 20)
    assert changed["events"] == ["incident", "evidence.checkpoint"] and changed["format"] == "dingtalk"
    listed = {h["id"]: h for h in client.get("/v1/webhooks", headers=auth(admin)).json()}
    assert listed[ding["id"]] == changed
    assert client.patch("/v1/webhooks/nope", json={"language": "en"}, headers=auth(admin)).status_code == 404
    assert client.patch(f"/v1/webhooks/{ding['id']}", json={"url": HOOK}, headers=auth(admin)).status_code == 422


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"min_interval_s": -1}, "min_interval_s"),
        ({"min_interval_s": 90000}, "min_interval_s"),
        ({"rate_limit_per_min": 10000}, "rate_limit_per_min"),
        ({"rate_limit_per_min": "fast"}, "rate_limit_per_min"),
        ({"language": "fr"}, "language"),
        ({"events": []}, "events"),
        ({"events": ["incident.digest"]}, "events"),
        ({"events": ["incident", "incident"]}, "must not repeat"),
    ],
)
def test_bad_settings_are_refused_with_the_reason(
    client: TestClient, keys: dict[Role, str], body: dict[str, Any], fragment: str
) -> None:
    admin = keys[Role.admin]
    r = _post(client, admin, **body)
    assert r.status_code == 422 and fragment in r.text, r.text
    hook = _post(client, admin).json()["id"]
    r = client.patch(f"/v1/webhooks/{hook}", json=body, headers=auth(admin))
    assert r.status_code == 422 and fragment in r.text, r.text


def test_a_site_scoped_admin_cannot_subscribe_to_checkpoints(client: TestClient, app: Any) -> None:
    with store_of(app).session() as session:
        _row, scoped = create_key(session, role="admin", name="north-admin", sites=["north"])
    north = {"filters": {"sites": ["north"]}}
    r = _post(client, scoped, events=["evidence.checkpoint"], **north)
    assert r.status_code == 403 and "every site" in r.text
    hook = _post(client, scoped, **north).json()["id"]
    assert (
        client.patch(f"/v1/webhooks/{hook}", json={"filters": {"sites": ["south"]}}, headers=auth(scoped)).status_code
        == 403
    )
    assert client.patch(f"/v1/webhooks/{hook}", json={"language": "en"}, headers=auth(scoped)).status_code == 200


def test_checkpoints_go_to_subscriptions_that_ask_for_them(tmp_path: Path, sqlite_url: str, receiver: Receiver) -> None:
    settings = make_settings(tmp_path, sqlite_url, webhook_allow_hosts="127.0.0.1")
    app = create_app(settings)
    store = store_of(app)
    keys = add_keys(store)
    chain = EvidenceChain(
        settings.media_dir, tmp_path / "state", "main", signer=load_signer(generate(tmp_path / "k").private)
    )
    with TestClient(app) as client:
        admin = keys[Role.admin]
        both = {"url": receiver.url + "&both", "secret": SECRET, "events": ["incident", "evidence.checkpoint"]}
        assert client.post("/v1/webhooks", json=both, headers=auth(admin)).status_code == 201
        only = {
            "url": receiver.url + "&feishu",
            "secret": SECRET,
            "format": "feishu",
            "events": ["evidence.checkpoint"],
        }
        assert client.post("/v1/webhooks", json=only, headers=auth(admin)).status_code == 201
        default = {"url": receiver.url + "&default", "secret": SECRET}
        assert client.post("/v1/webhooks", json=default, headers=auth(admin)).status_code == 201
        for n in (1, 2):
            chain.tombstone(
                settings.media_dir / f"gone-{n}", incident_id=f"gone-{n}", camera_id="c", reason="age", size=1
            )
            (checkpoint,) = record_checkpoints(store, settings.media_dir)
            assert checkpoint.seq == n
        apply_event(store, make_event("after", 0))
        wait_for(lambda: receiver.count() >= 6)
        time.sleep(0.3)
        listed = client.get("/v1/evidence/checkpoints", headers=auth(keys[Role.viewer])).json()
        assert [(c["chain"], c["seq"]) for c in listed] == [("main", 2), ("main", 1)]  # newest first
        assert listed[0]["entry"]["signature"]["key_id"]
        assert client.get("/v1/evidence/checkpoints").status_code == 401
    by_hook: dict[str, list[tuple[str, str]]] = {}
    for got in receiver.received:
        h = {k.lower(): v for k, v in got.headers.items()}
        assert verify(SECRET, h["x-safewatch-timestamp"], got.body, h["x-safewatch-signature"])
        by_hook.setdefault(got.path.rsplit("&", 1)[1], []).append(
            (h["x-safewatch-event-type"], h["x-safewatch-event-id"])
        )
    checkpoints = [("evidence.checkpoint", "checkpoint:main:1"), ("evidence.checkpoint", "checkpoint:main:2")]
    assert sorted(by_hook["both"]) == sorted([*checkpoints, ("incident", "after:0")])
    assert sorted(by_hook["feishu"]) == checkpoints and by_hook["default"] == [("incident", "after:0")]
    body = next(
        json.loads(g.body) for g in receiver.received if g.path.endswith("&both") and b"checkpoint:main:2" in g.body
    )
    assert (body["kind"], body["chain"], body["seq"], body["entry"]["seq"]) == ("evidence.checkpoint", "main", 2, 2)
    assert len(body["entry_sha256"]) == 64
