"""`safewatch run` as users run it: a subprocess on a camera config dir; incidents appear in the API; Ctrl-C (SIGINT)
stops it cleanly — the open incident is closed, its clip and manifest are written, the process exits 0. And its
flags reach every part of the service (`--models-dir` serves the cameras and the API alike)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
import yaml
from fastapi.testclient import TestClient

from api.service import EmbeddedService
from api.settings import Settings
from api.store.db import Store
from api.store.incidents import get_incident
from api.store.keys import create_key
from cli.common import read_settings
from cli.main import build_parser

pytestmark = pytest.mark.timeout(180)

VAN_ZONE = [[0.83, 0.06], [0.95, 0.06], [0.95, 0.19], [0.83, 0.19]]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(cond: Any, timeout: float, what: str, proc: subprocess.Popen[str]) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"safewatch run exited early ({proc.returncode}) while waiting for {what}")
        value = cond()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def test_run_serves_incidents_and_stops_cleanly_on_ctrl_c(tmp_path: Path, repo_root: Path, sample_clip: Path) -> None:
    configs = tmp_path / "cameras"
    configs.mkdir()
    camera = {
        "id": "run-gate",
        "site": "run-site",
        "name": "运行测试 消防通道",
        "streams": {"detect": str(sample_clip)},
        "analysis_fps": 4,
        "zones": [{"name": "fire_lane", "kind": "fire_exit", "anchor": "overlap", "polygon": VAN_ZONE}],
        "rules": [{"type": "exit_blocked", "zones": ["fire_lane"], "dwell_seconds": 3, "static_scene": False}],
        "evidence": {"clip": {"pre_roll_s": 2, "post_roll_s": 2, "max_clip_s": 30}},
    }
    (configs / "run-gate.yaml").write_text(yaml.safe_dump(camera, allow_unicode=True), encoding="utf-8")
    port, data = _free_port(), tmp_path / "data"
    env = {**os.environ, "SAFEWATCH_MODELS_DIR": str(repo_root / "models"), "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "cli.main", "run", "--demo", "--config-dir", str(configs)]
    cmd += ["--data-dir", str(data), "--port", str(port)]
    log = (tmp_path / "run.log").open("w+", encoding="utf-8")
    proc = subprocess.Popen(cmd, cwd=repo_root, env=env, stdout=log, stderr=subprocess.STDOUT, text=True)
    try:
        key = _wait(lambda: _key(tmp_path / "run.log"), 60, "the printed API key", proc)
        base, headers = f"http://127.0.0.1:{port}", {"X-API-Key": key}

        def open_incident() -> dict[str, Any] | None:
            try:
                r = httpx.get(f"{base}/v1/incidents", headers=headers, params={"rule": "exit_blocked"}, timeout=5)
            except httpx.HTTPError:
                return None
            items = r.json()["items"] if r.status_code == 200 else []
            return items[0] if items else None

        incident = _wait(open_incident, 90, "an exit_blocked incident in the API", proc)
        assert incident["status"] == "open" and incident["camera_id"] == "run-gate"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    output = (tmp_path / "run.log").read_text(encoding="utf-8")
    assert "Traceback" not in output, output
    store = Store(f"sqlite:///{(data / 'safewatch.db').as_posix()}")
    try:
        with store.read() as session:
            row = get_incident(session, incident["id"])
            assert row is not None and row.status == "closed"  # closed at shutdown, not left dangling
            assert row.clip_path and row.evidence_sha256  # clip flushed, manifest written before exit
    finally:
        store.dispose()
    clips = list((data / "media").rglob("clip-000.mp4"))
    assert clips and all(c.stat().st_size > 1000 for c in clips)


def _key(path: Path) -> str | None:
    match = re.search(r"admin API key \(shown once\): (sw_\S+)", path.read_text(encoding="utf-8"))
    return match.group(1) if match else None


def test_models_dir_flag_serves_the_cameras_and_the_api(tmp_path: Path) -> None:
    """`run --models-dir X`: the API's registry (POST /v1/detect, camera checks) is the cameras' registry, on X.

    X holds no model card, so detect must answer 503 "no default person model" — with ./models it would detect."""
    models, cameras = tmp_path / "models", tmp_path / "cameras"
    models.mkdir()
    cameras.mkdir()
    argv = ["run", "--models-dir", str(models), "--config-dir", str(cameras), "--data-dir", str(tmp_path / "data")]
    service = EmbeddedService(read_settings(Settings, build_parser().parse_args(argv)))
    registry = service.app.state.ctx.registry
    assert registry is service.worker.registry and registry.models_dir == models
    with service.store.session() as session:
        _row, key = create_key(session, role="platform", name="detect")
    ok, jpeg = cv2.imencode(".jpg", np.full((64, 64, 3), 128, dtype=np.uint8))
    assert ok
    with TestClient(service.app) as http:
        r = http.post("/v1/detect", files={"file": ("x.jpg", jpeg.tobytes(), "image/jpeg")}, headers={"X-API-Key": key})
    assert r.status_code == 503 and "person" in r.text, r.text
