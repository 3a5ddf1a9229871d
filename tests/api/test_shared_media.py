"""Distributed mode with one shared media directory: two real `safewatch worker` processes write evidence to it, one
real `safewatch api` process (own data dir and store) serves that evidence and runs retention over it.

Each worker runs one camera (`--max-cameras 1`) that sees the van parked in the fire lane of the sample clip; each
opens an incident whose snapshot the API serves; removing the cameras closes them and the API serves their clips.
Then one incident is marked false positive (keep) and both are made 400 days old in the store: the API's retention
deletes the other one's rows and evidence, and keeps the kept one's, although its files are older than the evidence
age limit too.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import yaml
from sqlalchemy import update

from api.store.db import Store
from api.store.keys import create_key
from api.store.models import Incident
from pipelines.distributed.leases import lease_owners
from tests.fixtures.redis import RedisNamespace, free_port
from tests.pipelines.distributed.test_distributed import ROOT, _camera_yaml, _get_ok, _Procs, _wait
from vision.media.store import MediaStore

pytestmark = [pytest.mark.redis, pytest.mark.timeout(240)]
CAMERAS = ("van-a", "van-b")


def _camera(cam_id: str, clip: Path) -> str:
    data = yaml.safe_load(_camera_yaml(cam_id, clip, fps=2.0, rules=True))
    data["evidence"] = {"enabled": True, "clip": {"pre_roll_s": 1.0, "post_roll_s": 0.0, "wait_timeout_s": 2.0}}
    return yaml.safe_dump(data, sort_keys=False)


@pytest.fixture
def deployment(redis_ns: RedisNamespace, tmp_path: Path, sample_clip: Path) -> Iterator[dict[str, Any]]:
    cfg, media = tmp_path / "cameras", tmp_path / "shared-media"
    cfg.mkdir()
    for cam in CAMERAS:
        (cfg / f"{cam}.yaml").write_text(_camera(cam, sample_clip))
    db_url = f"sqlite:///{tmp_path / 'api-data' / 'safewatch.db'}"
    store = Store(db_url)
    with store.session() as session:
        _row, key = create_key(session, role="admin", name="test")
    env = {
        **os.environ,
        "SAFEWATCH_REDIS_URL": redis_ns.url,
        "SAFEWATCH_REDIS_PREFIX": redis_ns.prefix,
        "SAFEWATCH_MEDIA_ROOT": str(media),  # the shared volume: the only setting the processes have in common
        "SAFEWATCH_MODELS_DIR": str(ROOT / "models"),
        "SAFEWATCH_WEBHOOK_DISPATCHER": "false",
        "SAFEWATCH_RETENTION_INTERVAL_S": "0.5",
        "OMP_NUM_THREADS": "1",
    }
    procs = _Procs(tmp_path, env)
    port = free_port()
    procs.env = {**env, "SAFEWATCH_DATA_DIR": str(tmp_path / "api-data")}
    procs.start("api", "api", "--config-dir", str(cfg), "--port", str(port), "--sync-interval", "0.5")
    for i in range(2):  # each its own data dir (event spool): they share only the media directory
        procs.env = {**env, "SAFEWATCH_DATA_DIR": str(tmp_path / f"w{i}-data")}
        procs.start(
            f"w{i}", "worker", "--worker-id", f"w{i}", "--max-cameras", "1", "--lease-ttl", "3", "--poll", "0.5"
        )
    http = httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"X-API-Key": key}, timeout=10)
    try:
        yield {"procs": procs, "http": http, "store": store, "media": media, "tmp": tmp_path, "redis": redis_ns}
    finally:
        http.close()
        procs.stop_all()
        store.dispose()


def test_workers_write_to_the_shared_media_dir_and_the_api_serves_and_retains_it(deployment: dict[str, Any]) -> None:
    procs, http, media = deployment["procs"], deployment["http"], deployment["media"]
    client = redis.Redis.from_url(deployment["redis"].url, decode_responses=True)
    _wait("API", lambda: _get_ok(http, "/healthz"), 60, procs)

    def opened() -> dict[str, dict[str, Any]]:
        items = http.get("/v1/incidents", params={"rule": "exit_blocked"}).json()["items"]
        found = {i["camera_id"]: i for i in items if i["snapshot_url"]}
        return found if set(found) == set(CAMERAS) else {}

    incidents = _wait("an incident with a snapshot on each camera", opened, 90, procs)
    owners = lease_owners(client, deployment["redis"].prefix)
    assert {owners[c] for c in CAMERAS} == {"w0", "w1"}  # one camera, so one incident, per worker
    for inc in incidents.values():
        r = http.get(f"/v1/incidents/{inc['id']}/snapshot.jpg")
        assert r.status_code == 200 and r.content[:2] == b"\xff\xd8"

    for cam in CAMERAS:  # the workers stop the cameras: the incidents close and their clips are written
        assert http.delete(f"/v1/cameras/{cam}").status_code == 204
    ids = {cam: inc["id"] for cam, inc in incidents.items()}

    def closed_with_clips() -> bool:
        details = [http.get(f"/v1/incidents/{i}").json() for i in ids.values()]
        return all(d["status"] == "closed" and d["clip_url"] for d in details)

    _wait("both incidents closed with a clip", closed_with_clips, 60, procs)
    for inc_id in ids.values():
        r = http.get(f"/v1/incidents/{inc_id}/clip.mp4")
        assert r.status_code == 200 and r.content[4:8] == b"ftyp"
    dirs = {d.incident_id: d.path for d in MediaStore(media).incidents()}
    assert set(ids.values()) <= set(dirs)  # the evidence is in the shared directory …
    for i in range(2):  # … and nowhere else
        assert not [p for p in (deployment["tmp"] / f"w{i}-data").rglob("*") if p.suffix in (".jpg", ".mp4")]

    kept, dropped = ids["van-a"], ids["van-b"]
    assert http.post(f"/v1/incidents/{kept}/false-positive", json={"note": "parked legally"}).status_code == 200
    long_ago = datetime.now(UTC) - timedelta(days=400)
    with deployment["store"].session() as session:  # both ended 400 days ago, past the 365 days of the store
        session.execute(update(Incident).where(Incident.id.in_(ids.values())).values(ended_at=long_ago))
    for f in dirs[kept].rglob("*"):  # and the kept one's files are past the 30 days of evidence
        os.utime(f, (long_ago.timestamp(), long_ago.timestamp()))

    def gone() -> bool:
        return bool(http.get(f"/v1/incidents/{dropped}").status_code == 404)

    _wait("the API's retention deleting the old incident", gone, 30, procs)
    _wait("its evidence deleted", lambda: not dirs[dropped].exists(), 10, procs)
    assert http.get(f"/v1/incidents/{kept}").status_code == 200
    assert http.get(f"/v1/incidents/{kept}/snapshot.jpg").status_code == 200 and dirs[kept].is_dir()
    assert "retention deleted 1 closed incidents older than 365 days" in (deployment["tmp"] / "api.log").read_text()
