"""The product end to end: a camera on the real RTSP test server → incident in the API, on the SSE stream and at a
real webhook receiver exactly once with a valid signature; snapshot and clip downloadable (clip Range requests);
restart of the service → nothing lost or duplicated, the webhook outbox resumes."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
import yaml

from api.service import EmbeddedService
from api.settings import Settings
from api.store.keys import create_key
from api.webhooks.signing import verify
from tests.api.webhook_receiver import Receiver

pytestmark = [pytest.mark.rtsp, pytest.mark.timeout(240)]

VAN_ZONE = [[0.83, 0.06], [0.95, 0.06], [0.95, 0.19], [0.83, 0.19]]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _camera_yaml(url: str) -> dict[str, Any]:
    return {
        "id": "gate-e2e",
        "site": "e2e-site",
        "name": "端到端 消防通道",
        "streams": {"detect": url},
        "analysis_fps": 4,
        "zones": [{"name": "fire_lane", "kind": "fire_exit", "anchor": "overlap", "polygon": VAN_ZONE}],
        "rules": [{"type": "exit_blocked", "zones": ["fire_lane"], "dwell_seconds": 3, "static_scene": False}],
        "evidence": {"clip": {"pre_roll_s": 2, "post_roll_s": 2, "max_clip_s": 30}},
    }


class Running:
    """An EmbeddedService with its HTTP server in a thread."""

    def __init__(self, settings: Settings) -> None:
        self.service = EmbeddedService(settings)
        config = uvicorn.Config(
            self.service.app, host="127.0.0.1", port=settings.port, log_level="warning", timeout_graceful_shutdown=2
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.base = f"http://127.0.0.1:{settings.port}"

    def start(self) -> Running:
        self.thread.start()
        _wait(lambda: self.server.started, 20, "http server")
        self.service.start()
        return self

    def stop(self) -> None:
        self.service.stop_cameras()
        self.server.should_exit = True
        self.thread.join(20)


def _wait(cond: Callable[[], object], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.start()
    yield r
    r.stop()


def test_camera_to_api_sse_and_webhook_across_restart(
    tmp_path: Path, repo_root: Path, rtsp_server: Any, receiver: Receiver
) -> None:
    config_dir = tmp_path / "configs"
    config_dir.mkdir()
    (config_dir / "gate-e2e.yaml").write_text(yaml.safe_dump(_camera_yaml(rtsp_server.url("cam1")), allow_unicode=True))
    settings = Settings(
        data_dir=tmp_path / "data",
        config_dir=config_dir,
        models_dir=repo_root / "models",
        port=_free_port(),
        webhook_poll_interval_s=0.1,
        webhook_backoff_base_s=0.1,
        webhook_backoff_max_s=0.5,
        webhook_allow_hosts="127.0.0.1",  # the receiver listens on loopback
        sse_poll_interval_s=0.2,
    )
    run = Running(settings).start()
    with run.service.store.session() as session:
        _row, key = create_key(session, role="admin", name="e2e")
    headers = {"X-API-Key": key}
    secret = "e2e-secret"
    r = httpx.post(
        f"{run.base}/v1/webhooks", headers=headers, json={"url": receiver.url, "secret": secret, "format": "json"}
    )
    assert r.status_code in (200, 201), r.text

    sse_events: list[dict[str, Any]] = []
    sse_thread = threading.Thread(target=_read_sse, args=(run.base, headers, sse_events), daemon=True)
    sse_thread.start()
    try:
        opened = _wait(lambda: _incidents(run.base, headers), 90, "an exit_blocked incident in the API")
        incident = opened[0]
        assert incident["rule"] == "exit_blocked" and incident["zone"] == "fire_lane"
        assert incident["camera_id"] == "gate-e2e" and incident["labels"] == ["truck"]
        _wait(lambda: any(e.get("id") == incident["id"] for e in sse_events), 20, "the incident on the SSE stream")
        _wait(lambda: _delivered(receiver, incident["id"]), 20, "the webhook delivery")
        snap = httpx.get(f"{run.base}/v1/incidents/{incident['id']}/snapshot.jpg", headers=headers)
        assert snap.status_code == 200 and snap.content[:2] == b"\xff\xd8"
        raw = httpx.get(f"{run.base}/v1/incidents/{incident['id']}/snapshot.jpg?raw=1", headers=headers)
        assert raw.status_code == 200 and raw.content != snap.content
    finally:
        run.stop()  # closes the open incident, writes its clip, drains the bus into the store

    # Restart on the same data dir: the camera comes back, the webhook outbox resumes.
    run2 = Running(settings).start()
    try:
        detail = httpx.get(f"{run2.base}/v1/incidents/{incident['id']}", headers=headers).json()
        assert detail["status"] == "closed" and detail["clip_url"], detail
        _wait(lambda: _delivered(receiver, incident["id"], seq=detail["last_seq"]), 30, "the closing webhook")
        clip = httpx.get(f"{run2.base}/v1/incidents/{incident['id']}/clip.mp4", headers=headers)
        assert clip.status_code == 200 and clip.content[4:8] == b"ftyp"
        part = httpx.get(
            f"{run2.base}/v1/incidents/{incident['id']}/clip.mp4", headers={**headers, "Range": "bytes=0-99"}
        )
        assert part.status_code == 206 and part.content == clip.content[:100]
        _wait(lambda: len(_incidents(run2.base, headers)) >= 2, 90, "a new incident after the restart")
    finally:
        run2.stop()

    # Every webhook delivery is signed and no (id, seq) arrived twice; the store holds each event once.
    keys = []
    for req in receiver.received:
        ts, sig = req.headers["X-Safewatch-Timestamp"], req.headers["X-Safewatch-Signature"]
        assert verify(secret, ts, req.body, sig)
        body = json.loads(req.body)
        keys.append((body["id"], body["seq"]))
    assert len(keys) == len(set(keys)), f"duplicate webhook deliveries: {keys}"
    ids = {i for i, _ in keys}
    assert incident["id"] in ids


def _incidents(base: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    r = httpx.get(f"{base}/v1/incidents", headers=headers, params={"rule": "exit_blocked"})
    return list(r.json()["items"]) if r.status_code == 200 else []


def _delivered(receiver: Receiver, incident_id: str, seq: int = 0) -> bool:
    for req in receiver.received:
        body = json.loads(req.body)
        if body.get("id") == incident_id and body.get("seq") == seq:
            return True
    return False


def _read_sse(base: str, headers: dict[str, str], out: list[dict[str, Any]]) -> None:
    try:
        with httpx.stream("GET", f"{base}/v1/events", headers=headers, timeout=None) as resp:
            for line in resp.iter_lines():
                if line.startswith("data:"):
                    out.append(json.loads(line[5:].strip()))
    except (httpx.HTTPError, json.JSONDecodeError):
        return
