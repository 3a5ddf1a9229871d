"""Shadow incidents in the store (migration 0008): `apply_event` keeps a shadow run's events with their flag and
candidate and writes no webhook outbox row for them; the push readers (SSE backlog, MQTT) never see them; the list
and stats leave them out unless asked (`?shadow=only|include`)."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from api.app import create_app
from api.auth import Role
from api.mqtt.cursor import EventReader
from api.store.incidents import IncidentFilter, apply_event, events_after, list_incidents
from api.store.models import Incident, WebhookDelivery
from api.store.outbox import create_webhook
from tests.api.conftest import add_keys, auth, make_event, make_settings, store_of


def test_shadow_events_are_stored_apart_and_never_pushed(tmp_path: Path, sqlite_url: str) -> None:
    app = create_app(make_settings(tmp_path, sqlite_url, webhook_dispatcher=False))
    store = store_of(app)
    viewer = add_keys(store)[Role.viewer]
    with store.session() as s:
        create_webhook(s, url="http://127.0.0.1:9/", secret="s3cret-for-tests", fmt="json", filters={})
    prod = [make_event("prod-1", 0), make_event("prod-1", 1)]
    shadow = [
        make_event("shad-1", 0, shadow=True, candidate="cand"),
        make_event("shad-1", 1, shadow=True, candidate="cand"),
    ]
    results = [apply_event(store, e) for e in [prod[0], shadow[0], prod[1], shadow[1]]]
    assert [r.applied for r in results] == [True] * 4
    assert [r.deliveries for r in results] == [1, 0, 1, 0]
    assert not apply_event(store, shadow[0]).applied  # de-duplicated like any event
    with store.read() as s:
        outbox = s.scalars(select(WebhookDelivery.event_key)).all()
        assert sorted(outbox) == ["prod-1:0", "prod-1:1"]
        row = s.get(Incident, "shad-1")
        assert row is not None and (row.shadow, row.candidate) == (True, "cand")
        assert [e.incident_id for e in events_after(s, 0)] == ["prod-1", "prod-1"]  # the SSE backlog
        assert s.scalar(select(func.count()).select_from(Incident)) == 2
        for which, ids in (("exclude", ["prod-1"]), ("only", ["shad-1"]), ("include", ["shad-1", "prod-1"])):
            rows, _ = list_incidents(s, IncidentFilter(shadow=which), cursor=None, limit=10)  # type: ignore[arg-type]
            assert sorted(r.id for r in rows) == sorted(ids), which
    mqtt = EventReader(store, "http://safewatch.test").after(0, 10)
    assert [(e.number, '"prod-1"' in e.data) for e in mqtt] == [(1, True), (3, True)]  # MQTT: production's only
    with TestClient(app) as client:
        listed = client.get("/v1/incidents", headers=auth(viewer)).json()["items"]
        assert [(i["id"], i["shadow"], i["candidate"]) for i in listed] == [("prod-1", False, None)]
        only = client.get("/v1/incidents", params={"shadow": "only"}, headers=auth(viewer)).json()["items"]
        assert [(i["id"], i["shadow"], i["candidate"]) for i in only] == [("shad-1", True, "cand")]
        assert client.get("/v1/incidents", params={"shadow": "all"}, headers=auth(viewer)).status_code == 422
        assert client.get("/v1/incidents/shad-1", headers=auth(viewer)).json()["shadow"] is True  # by id: found
        stats = client.get("/v1/stats", headers=auth(viewer)).json()
        assert stats["total"] == 1 and stats["by_rule"] == {"exit_blocked": 1}
