"""Incident endpoints through HTTP: list/filter/cursor, detail, handling workflow + audit trail, media, stats."""

from __future__ import annotations

import re
import shutil
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.auth import Role
from api.store.incidents import apply_event
from api.store.keys import create_key, find_key
from pipelines.camera.state import CameraState
from tests.api.conftest import T0, auth, make_event, store_of


@pytest.fixture
def seeded(app: FastAPI) -> FastAPI:
    store = store_of(app)
    for i in range(5):
        apply_event(store, make_event(f"inc-{i}", 0, started_at=T0 + timedelta(hours=i), site=f"site-{i % 2}"))
    apply_event(store, make_event("inc-0", 1))
    apply_event(store, make_event("inc-0", 2, type="closed", ended_at=T0 + timedelta(minutes=1)))
    return app


def test_list_paginates_with_opaque_cursor(seeded: FastAPI, client: TestClient, keys: dict[Role, str]) -> None:
    h = auth(keys[Role.viewer])
    page = client.get("/v1/incidents", params={"limit": 2}, headers=h).json()
    ids = [i["id"] for i in page["items"]]
    while page["next_cursor"]:
        page = client.get("/v1/incidents", params={"limit": 2, "cursor": page["next_cursor"]}, headers=h).json()
        ids += [i["id"] for i in page["items"]]
    assert ids == ["inc-4", "inc-3", "inc-2", "inc-1", "inc-0"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"site": "site-1"}, ["inc-3", "inc-1"]),
        ({"status": "closed"}, ["inc-0"]),
        ({"status": "open", "since": "2025-03-01T10:00:00Z"}, ["inc-4", "inc-3", "inc-2"]),
        ({"until": "2025-03-01T09:00:00+00:00"}, ["inc-0"]),
        ({"camera": "nope"}, []),
        ({"rule": "exit_blocked", "status": "new", "limit": 1}, ["inc-4"]),
    ],
)
def test_list_filters(
    seeded: FastAPI, client: TestClient, keys: dict[Role, str], params: dict[str, str], expected: list[str]
) -> None:
    r = client.get("/v1/incidents", params=params, headers=auth(keys[Role.viewer]))
    assert r.status_code == 200, r.text
    assert [i["id"] for i in r.json()["items"]] == expected


def test_detail_has_events_links_and_audit_trail(seeded: FastAPI, client: TestClient, keys: dict[Role, str]) -> None:
    r = client.get("/v1/incidents/inc-0", headers=auth(keys[Role.viewer]))
    body = r.json()
    assert (body["status"], body["last_seq"], body["handling"]) == ("closed", 2, "new")
    assert [e["seq"] for e in body["events"]] == [0, 1, 2]
    assert body["events"][2]["event"]["type"] == "closed"
    assert body["actions"] == []


def test_handling_workflow_records_audit_trail(seeded: FastAPI, client: TestClient, keys: dict[Role, str]) -> None:
    op = auth(keys[Role.operator])
    r = client.post("/v1/incidents/inc-1/ack", headers=op)
    assert r.status_code == 200 and r.json()["handling"] == "acknowledged"
    r = client.post("/v1/incidents/inc-1/false-positive", json={"actor": "ann", "note": "a mannequin"}, headers=op)
    assert r.json()["handling"] == "false_positive" and r.json()["keep"] is True
    r = client.post("/v1/incidents/inc-1/resolve", json={}, headers=op)
    assert r.status_code == 409 and "false_positive" in r.json()["detail"]
    trail = client.get("/v1/incidents/inc-1", headers=op).json()["actions"]
    assert [(a["action"], a["actor"], a["from_status"], a["to_status"], a["note"]) for a in trail] == [
        ("ack", "operator-key", "new", "acknowledged", None),
        ("false-positive", "ann", "acknowledged", "false_positive", "a mannequin"),
    ]
    # The key that acted is recorded beside the client-supplied actor ("ann" is only what the client said).
    with store_of(seeded).read() as session:
        operator_row = find_key(session, keys[Role.operator])
        assert operator_row is not None
    assert {(a["key_id"], a["key_name"]) for a in trail} == {(operator_row.id, "operator-key")}
    r = client.post("/v1/incidents/inc-2/ack", headers=op)
    r = client.post("/v1/incidents/inc-2/ack", headers=op)
    assert r.status_code == 409 and "acknowledged" in r.json()["detail"]


@pytest.fixture
def with_media(seeded: FastAPI, sample_clip: Path, repo_root: Path) -> FastAPI:
    media = seeded.state.ctx.settings.media_dir
    (media / "inc-4").mkdir(parents=True)
    shutil.copy(sample_clip, media / "inc-4" / "clip.mp4")
    shutil.copy(repo_root / "sample_media" / "candle.jpg", media / "inc-4" / "snap.jpg")
    shutil.copy(repo_root / "sample_media" / "person_multi_det.jpg", media / "inc-4" / "snap_raw.jpg")
    apply_event(
        store_of(seeded), make_event("inc-4", 1, snapshot_url="inc-4/snap.jpg", clip_url=str(media / "inc-4/clip.mp4"))
    )
    apply_event(store_of(seeded), make_event("inc-3", 1, snapshot_url="../../../etc/passwd"))
    return seeded


def test_snapshot_annotated_and_raw(
    with_media: FastAPI, client: TestClient, keys: dict[Role, str], repo_root: Path
) -> None:
    h = auth(keys[Role.viewer])
    r = client.get("/v1/incidents/inc-4/snapshot.jpg", headers=h)
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert r.content == (repo_root / "sample_media" / "candle.jpg").read_bytes()
    raw = client.get("/v1/incidents/inc-4/snapshot.jpg?raw=1", headers=h)
    assert raw.content == (repo_root / "sample_media" / "person_multi_det.jpg").read_bytes()
    detail = client.get("/v1/incidents/inc-4", headers=h).json()
    assert detail["snapshot_url"].startswith("http://safewatch.test/v1/incidents/inc-4/snapshot.jpg?exp=")  # signed
    assert detail["events"][1]["event"]["clip_url"].startswith("http://safewatch.test/v1/incidents/inc-4/clip.mp4?exp=")
    assert client.get("/v1/incidents/inc-3/snapshot.jpg", headers=h).status_code == 404  # outside media root
    assert client.get("/v1/incidents/inc-2/clip.mp4", headers=h).status_code == 404
    assert client.get("/v1/incidents/nope/clip.mp4", headers=h).status_code == 404


def test_clip_supports_http_range(
    with_media: FastAPI, client: TestClient, keys: dict[Role, str], sample_clip: Path
) -> None:
    h = auth(keys[Role.viewer])
    data = sample_clip.read_bytes()
    full = client.get("/v1/incidents/inc-4/clip.mp4", headers=h)
    assert full.status_code == 200 and full.content == data and full.headers["accept-ranges"] == "bytes"
    part = client.get("/v1/incidents/inc-4/clip.mp4", headers={**h, "Range": "bytes=100-1099"})
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 100-1099/{len(data)}"
    assert part.content == data[100:1100]
    tail = client.get("/v1/incidents/inc-4/clip.mp4", headers={**h, "Range": "bytes=-500"})
    assert tail.status_code == 206 and tail.content == data[-500:]
    bad = client.get("/v1/incidents/inc-4/clip.mp4", headers={**h, "Range": f"bytes={len(data) + 10}-"})
    assert bad.status_code == 416 and bad.headers["content-range"] == f"bytes */{len(data)}"


def test_stats_json_and_csv(seeded: FastAPI, client: TestClient, keys: dict[Role, str]) -> None:
    h = auth(keys[Role.viewer])
    stats = client.get("/v1/stats", headers=h).json()
    assert stats["total"] == 5
    assert stats["by_site"] == {"sip-plot-12": 1, "site-0": 2, "site-1": 2}  # inc-0 moved site in seq 1
    assert stats["by_status"] == {"closed": 1, "open": 4}
    assert stats["by_day"] == {"2025-03-01": 5}
    csv = client.get("/v1/stats", params={"format": "csv", "since": "2025-03-01T11:00:00"}, headers=h)
    assert csv.headers["content-type"].startswith("text/csv")
    lines = csv.text.splitlines()
    assert lines[0] == "dimension,key,count" and "total,all,2" in lines and "camera,gate-3,2" in lines


def test_health_workers_and_metrics(seeded: FastAPI, client: TestClient, keys: dict[Role, str]) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "database": "ok"}
    workers = client.get("/v1/workers", headers=auth(keys[Role.viewer])).json()
    assert len(workers) == 1 and set(workers[0]) == {"id", "host", "cameras", "fps", "lag_s", "last_seen"}
    metrics = seeded.state.ctx.metrics
    metrics.camera_frame_rate("gate-3", 4.5)
    metrics.camera_state("gate-3", CameraState.STREAMING)
    metrics.observe_inference("yolo", 0.03)
    text = client.get("/metrics", headers=auth(keys[Role.viewer])).text
    assert 'safewatch_incidents{rule="exit_blocked",status="open"} 4.0' in text
    assert 'safewatch_camera_fps{camera="gate-3"} 4.5' in text
    assert 'safewatch_stream_state{camera="gate-3",state="streaming"} 1.0' in text
    exported = set(re.findall(r'safewatch_stream_state\{camera="gate-3",state="(\w+)"\}', text))
    assert exported == {s.value for s in CameraState}  # the metric's vocabulary is the camera state enum, no more
    assert 'safewatch_inference_latency_seconds_count{model="yolo"} 1.0' in text


def _scoped_key(app: FastAPI, role: Role, *sites: str) -> dict[str, str]:
    with store_of(app).session() as session:
        _row, plain = create_key(session, role=role.value, name=f"{role.value}-{'-'.join(sites)}", sites=sites)
    return auth(plain)


def test_scoped_key_sees_only_its_sites(seeded: FastAPI, client: TestClient) -> None:
    h = _scoped_key(seeded, Role.operator, "site-1")
    page = client.get("/v1/incidents", headers=h).json()
    assert [i["id"] for i in page["items"]] == ["inc-3", "inc-1"]
    # A filter for another site is ANDed with the scope: nothing, not the other site's incidents.
    assert client.get("/v1/incidents", params={"site": "site-0"}, headers=h).json()["items"] == []
    assert client.get("/v1/incidents/inc-1", headers=h).status_code == 200
    for path in ("/v1/incidents/inc-2", "/v1/incidents/inc-2/snapshot.jpg", "/v1/incidents/inc-2/clip.mp4"):
        r = client.get(path, headers=h)
        assert (r.status_code, r.json()["detail"]) == (404, "incident 'inc-2' not found"), path
    r = client.post("/v1/incidents/inc-2/ack", headers=h)
    assert (r.status_code, r.json()["detail"]) == (404, "incident 'inc-2' not found")
    stats = client.get("/v1/stats", headers=h).json()
    assert (stats["total"], stats["by_site"]) == (2, {"site-1": 2})
    csv = client.get("/v1/stats", params={"format": "csv"}, headers=h).text
    assert "site,site-1,2" in csv and "site-0" not in csv and "total,all,2" in csv
    assert client.post("/v1/incidents/inc-1/ack", headers=h).status_code == 200


def test_key_scoped_to_an_unknown_site_sees_nothing(seeded: FastAPI, client: TestClient) -> None:
    h = _scoped_key(seeded, Role.viewer, "elsewhere")
    assert client.get("/v1/incidents", headers=h).json()["items"] == []
    assert client.get("/v1/stats", headers=h).json()["total"] == 0
