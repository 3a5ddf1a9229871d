"""Shadow runs end to end: a real replay of sample_media/vtest.mp4 (its first 36 s) on the demo gate camera with a
shadow candidate (the fp32 model under another card, at confidence 0.6 instead of 0.25, so the two sides differ),
events through the in-process bus into the API's store, a real webhook receiver and a real SSE client on a uvicorn
server: production incidents reach both, shadow incidents neither; the store keeps the shadow ones with their flag,
candidate and snapshot; the list and stats leave them out unless asked; `safewatch eval --shadow` compares the two
on that store, with production's handling (false positives) turned into the candidate's wins.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy import select

from api.app import create_app
from api.auth import Role
from api.settings import Settings
from api.store.models import IncidentEventRow, WebhookDelivery
from cli.main import main as cli_main
from pipelines.bus.base import InProcessBus
from pipelines.camera.assemble import EvidenceOptions, build_runtime
from pipelines.camera.sinks import BusSink, CallbackSink
from pipelines.config.camera import load_camera_config
from pipelines.events import EventType, IncidentEvent
from tests.api.conftest import add_keys, make_settings, store_of
from tests.api.webhook_receiver import Receiver, wait_for
from vision.detect.registry import ModelRegistry

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
CANDIDATE = "coco-candidate"
SECONDS = 36.0


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default card and file, and the candidate: the same file under another card, at confidence 0.6."""
    out = tmp_path_factory.mktemp("models")
    for name in ("coco-yolov3-tiny.yaml", "coco-yolov3-tiny.onnx"):
        shutil.copyfile(ROOT / "models" / name, out / name)
    card = (ROOT / "models" / "coco-yolov3-tiny.yaml").read_text(encoding="utf-8")
    card = card.replace("name: coco-yolov3-tiny\n", f"name: {CANDIDATE}\n", 1).replace(
        "default: true", "default: false"
    )
    (out / f"{CANDIDATE}.yaml").write_text(card.replace("confidence: 0.25", "confidence: 0.6", 1), encoding="utf-8")
    return out


def _serve(app: FastAPI) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", timeout_graceful_shutdown=2)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for(lambda: server.started, timeout=20)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)  # the SSE streams still open are cut after 2 s


class SseClient:
    """Reads `GET /v1/events` on its own thread and keeps every event's JSON."""

    def __init__(self, base: str, key: str, last_event_id: str | None = None) -> None:
        self.events: list[dict[str, Any]] = []
        headers = {"X-API-Key": key, **({"Last-Event-ID": last_event_id} if last_event_id else {})}
        self._thread = threading.Thread(target=self._read, args=(base, headers), daemon=True)
        self._thread.start()

    def _read(self, base: str, headers: dict[str, str]) -> None:
        try:
            with httpx.stream("GET", f"{base}/v1/events", headers=headers, timeout=None) as resp:
                for line in resp.iter_lines():
                    if line.startswith("data:"):
                        self.events.append(json.loads(line[5:]))
        except httpx.HTTPError:
            pass  # the server stopped


def _replay(models: Path, settings: Settings, bus: InProcessBus) -> list[IncidentEvent]:
    """The first SECONDS of the clip through the demo camera with a shadow candidate; every event published."""
    camera = load_camera_config(ROOT / "camera_configs" / "demo-gate.yaml")
    camera = camera.model_copy(update={"shadow_models": [CANDIDATE]})
    published: list[IncidentEvent] = []
    runtime = build_runtime(
        camera,
        ModelRegistry(models),
        sinks=[BusSink(bus), CallbackSink(published.append)],
        evidence=EvidenceOptions(media_root=settings.media_dir),
    )
    assert runtime.shadow is not None and runtime.shadow.lockstep  # a file read as fast as it decodes
    stop = threading.Event()
    runtime.source.open()
    try:
        runtime.pipeline.run(runtime.source, stop, on_frame=lambda f: stop.set() if f.pts >= SECONDS else None)
    finally:
        runtime.close()
    assert runtime.shadow.stats.processed == runtime.shadow.stats.offered > 100 and runtime.shadow.stats.dropped == 0
    return published


def test_shadow_incidents_never_reach_a_webhook_receiver_or_sse(tmp_path: Path, models: Path) -> None:
    url = f"sqlite:///{(tmp_path / 'store.db').as_posix()}"
    settings = make_settings(tmp_path, url, webhook_allow_hosts="127.0.0.1")
    bus = InProcessBus()
    app = create_app(settings, bus=bus)
    keys = add_keys(store_of(app))
    receiver = Receiver()
    receiver.start()
    try:
        for base in _serve(app):
            _run_and_check(base, keys, app, settings, bus, models, receiver)
    finally:
        receiver.stop()
    _check_eval(url, tmp_path)


def _run_and_check(
    base: str,
    keys: dict[Role, str],
    app: FastAPI,
    settings: Settings,
    bus: InProcessBus,
    models: Path,
    receiver: Receiver,
) -> None:
    admin = {"X-API-Key": keys[Role.admin]}
    r = httpx.post(
        f"{base}/v1/webhooks", json={"url": receiver.url, "secret": "s3cret-for-tests"}, headers=admin, timeout=60
    )
    assert r.status_code == 201, r.text
    live = SseClient(base, keys[Role.platform])
    time.sleep(1.0)  # the stream is open before the first event
    published = _replay(models, settings, bus)
    production = [e for e in published if not e.shadow]
    shadow = [e for e in published if e.shadow]
    assert {e.candidate for e in shadow} == {CANDIDATE} and all(e.candidate is None for e in production)
    assert sum(e.type is EventType.opened for e in production) >= 3
    assert sum(e.type is EventType.opened for e in shadow) >= 1
    wanted = {e.event_key for e in production}
    wait_for(lambda: receiver.count() >= len(wanted), timeout=60)
    wait_for(lambda: len(live.events) >= len(production), timeout=30)
    time.sleep(1.5)  # anything else that would come has come
    delivered = [IncidentEvent.model_validate_json(g.body) for g in receiver.received]
    assert {e.event_key for e in delivered} == wanted and not any(e.shadow for e in delivered)
    assert b"shadow" not in b"".join(g.body for g in receiver.received)  # production JSON is as before shadow runs
    assert {f"{e['id']}:{e['seq']}" for e in live.events} == wanted
    resumed = SseClient(base, keys[Role.platform], last_event_id="0")  # the store's backlog path (resume)
    wait_for(lambda: len(resumed.events) >= len(production), timeout=30)
    time.sleep(0.5)
    assert {f"{e['id']}:{e['seq']}" for e in resumed.events} == wanted
    _check_store(app, base, admin, production, shadow, settings)


def _check_store(
    app: FastAPI,
    base: str,
    admin: dict[str, str],
    production: list[IncidentEvent],
    shadow: list[IncidentEvent],
    settings: Settings,
) -> None:
    shadow_ids = {e.id for e in shadow}
    with store_of(app).read() as session:
        keys = session.scalars(select(WebhookDelivery.event_key)).all()
        assert keys and not any(k.split(":")[0] in shadow_ids for k in keys)  # no outbox row for a shadow event
        flagged = session.scalars(select(IncidentEventRow.incident_id).where(IncidentEventRow.shadow.is_(True)))
        assert set(flagged) == shadow_ids
    http = httpx.Client(base_url=base, headers=admin, timeout=60)  # a loaded test machine answers slowly
    listed = http.get("/v1/incidents", params={"limit": 500}).json()["items"]
    assert {i["id"] for i in listed} == {e.id for e in production} and not any(i["shadow"] for i in listed)
    only = http.get("/v1/incidents", params={"limit": 500, "shadow": "only"}).json()["items"]
    assert {i["id"] for i in only} == shadow_ids and {i["candidate"] for i in only} == {CANDIDATE}
    assert all(i["snapshot_url"] and i["clip_url"] is None for i in only)  # a snapshot each, no clip
    both = http.get("/v1/incidents", params={"limit": 500, "shadow": "include"}).json()
    assert len(both["items"]) == len(listed) + len(only)
    stats = http.get("/v1/stats").json()
    assert stats["total"] == len(listed)
    link = only[0]["snapshot_url"].replace(settings.public_base_url or "", base)  # signed, opens without a key
    snap = httpx.get(link, timeout=60)
    assert snap.status_code == 200 and snap.content[:2] == b"\xff\xd8"
    for incident in listed:  # production's handling: every intrusion a false alarm, exit_blocked confirmed
        action = "false-positive" if incident["rule"] == "intrusion" else "ack"
        assert http.post(f"/v1/incidents/{incident['id']}/{action}").status_code == 200
    http.close()


def _check_eval(url: str, tmp_path: Path) -> None:
    out = tmp_path / "eval.json"
    args = ["eval", "--shadow", "demo-gate", "--since", "2000-01-01T00:00:00Z", "--database", url, "--json"]
    code = _cli(args, out)
    assert code == 0
    (report,) = json.loads(out.read_text(encoding="utf-8"))
    t = report["totals"]
    assert report["candidate"] == CANDIDATE
    assert t["both"] + t["production_only"] == t["production"] and t["both"] + t["shadow_only"] == t["shadow"]
    fp = [i for i in report["production_only"] if i["handling"] == "false_positive"]
    assert t["wins"] == len(report["wins"]) == len(fp)
    assert t["wins"] + t["shared_false_positives"] == report["by_rule"]["intrusion"]["production"]
    assert t["losses"] == len([i for i in report["production_only"] if i["handling"] == "acknowledged"])
    assert t["wins"] >= 1, report  # at 0.6 the candidate misses some walkers production alarmed on (marked false)
    for item in report["shadow_only"] + [p["shadow"] for p in report["both"]]:
        assert item["snapshot"] and (tmp_path / "data" / "media" / item["snapshot"]).is_file()
    text = tmp_path / "eval.txt"
    assert _cli(args[:-1], text) == 0
    assert "candidate wins (production false positives it did not raise)" in text.read_text(encoding="utf-8")


def _cli(args: list[str], out: Path) -> int:
    """`safewatch ARGS` with its stdout written to `out`."""
    with out.open("w", encoding="utf-8") as fh, contextlib.redirect_stdout(fh):
        return cli_main(args)
