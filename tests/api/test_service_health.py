"""camera_offline end to end: the embedded service (`safewatch run`) with two cameras on real RTSP servers and no
models (cameras without rules: the health rules are on by default). The server of one camera is killed, then frozen
(SIGSTOP), each for longer than offline_after_s: one camera_offline incident per outage in GET /v1/incidents, with the
last good frame as its snapshot and no clip, closed once frames flow again, counted in GET /v1/stats; the other
camera raises nothing."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from api.settings import Settings
from api.store.keys import create_key
from tests.api.test_service_e2e import Running, _free_port, _wait
from tests.fixtures.rtsp import RtspServer

pytestmark = [pytest.mark.rtsp, pytest.mark.timeout(240)]

OFFLINE_AFTER_S = 3.0


def _camera(cid: str, url: str) -> dict[str, Any]:
    health = {"offline_after_s": OFFLINE_AFTER_S, "offline_clear_s": 1, "tamper": False}
    return {"id": cid, "site": "health-site", "name": cid, "streams": {"detect": url}, "analysis_fps": 2,
            "health": health}  # fmt: skip


def _offline(base: str, headers: dict[str, str], camera: str) -> list[dict[str, Any]]:
    r = httpx.get(f"{base}/v1/incidents", headers=headers, params={"rule": "camera_offline", "camera": camera})
    return sorted(r.json()["items"], key=lambda i: i["started_at"]) if r.status_code == 200 else []


def test_killed_and_frozen_camera_is_offline_once_per_outage(
    tmp_path: Path, repo_root: Path, rtsp_server_factory: Any
) -> None:
    flaky: RtspServer = rtsp_server_factory(mounts=("cam1",))
    steady: RtspServer = rtsp_server_factory(mounts=("cam1",))
    config_dir = tmp_path / "configs"
    config_dir.mkdir()
    for cid, server in (("flaky", flaky), ("steady", steady)):
        (config_dir / f"{cid}.yaml").write_text(yaml.safe_dump(_camera(cid, server.url("cam1"))))
    settings = Settings(
        data_dir=tmp_path / "data", config_dir=config_dir, models_dir=repo_root / "models", port=_free_port()
    )
    run = Running(settings).start()
    with run.service.store.session() as session:
        _row, key = create_key(session, role="admin", name="health")
    headers = {"X-API-Key": key}
    try:
        _wait(lambda: _frames(run, "flaky") > 4 and _frames(run, "steady") > 4, 60, "both cameras streaming")
        flaky.kill()
        time.sleep(OFFLINE_AFTER_S + 3.0)
        [incident] = _wait(lambda: _offline(run.base, headers, "flaky"), 20, "camera_offline after the kill")
        assert incident["status"] == "open" and incident["labels"] == ["no_frames"]
        assert incident["severity"] == "warning" and incident["clip_url"] is None
        snap = httpx.get(f"{run.base}/v1/incidents/{incident['id']}/snapshot.jpg", headers=headers)
        assert snap.status_code == 200 and snap.content[:2] == b"\xff\xd8", "the last good frame"
        flaky.start()
        _wait(lambda: _offline(run.base, headers, "flaky")[0]["status"] == "closed", 60, "closed after the return")

        flaky.freeze()
        time.sleep(OFFLINE_AFTER_S + 3.0)
        _wait(lambda: len(_offline(run.base, headers, "flaky")) == 2, 20, "camera_offline after the freeze")
        flaky.thaw()
        _wait(lambda: all(i["status"] == "closed" for i in _offline(run.base, headers, "flaky")), 60, "closed again")
        time.sleep(2.0)
        assert len(_offline(run.base, headers, "flaky")) == 2, "exactly one incident per outage"
        assert _offline(run.base, headers, "steady") == []
        stats = httpx.get(f"{run.base}/v1/stats", headers=headers).json()
        assert stats["by_rule"] == {"camera_offline": 2} and stats["by_camera"] == {"flaky": 2}
    finally:
        run.stop()


def _frames(run: Running, camera: str) -> int:
    return sum(s.frames for s in run.service.worker.status() if s.camera_id == camera)
