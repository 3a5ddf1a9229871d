"""Model rollout in distributed mode, with real processes: `safewatch api` + one `safewatch worker` on Redis, a camera
over the looping sample clip whose intrusion rule needs the default model.

`safewatch models push` sends a new version of coco-yolov3-tiny (the same weights re-saved, so another sha256): a
corrupt file and a card whose sha256 is not the file's are refused (exit 2 with the reason); the good one is running
on the worker's camera within seconds, swapped between frames (the camera is not restarted); `DELETE` is refused
while it runs. Then the stored file is tampered with and the worker's cached copy too: the camera, restarted by a
config change, fetches again, finds the hash wrong and refuses to run it (reported in `GET /v1/models`); a pin to the
shipped version is respected, and the pushed model can be deleted once nothing runs it.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
import yaml

from pipelines.distributed.model_catalog import RedisModelCatalog
from tests.fixtures.redis import RedisNamespace, free_port
from tests.pipelines.distributed.cluster import ROOT, Cluster, busy_camera_yaml
from vision.detect.model_store import file_sha256

pytestmark = [pytest.mark.redis, pytest.mark.slow]

NAME = "coco-yolov3-tiny"
SHIPPED = yaml.safe_load((ROOT / "models" / f"{NAME}.yaml").read_text())["sha256"]
ROLLOUT_S = 20.0  # the push answered → the worker's camera runs it (measured: under 1 s on an idle machine)


@pytest.fixture
def cluster(redis_ns: RedisNamespace, tmp_path: Path, sample_clip: Path) -> Iterator[tuple[Cluster, str, str]]:
    from api.store.db import Store
    from api.store.keys import create_key

    cfg, data = tmp_path / "cameras", tmp_path / "data"
    cfg.mkdir()
    data.mkdir()
    (cfg / "gate.yaml").write_text(busy_camera_yaml("gate", sample_clip, site="rollout"))
    port = free_port()
    c = Cluster.with_api(tmp_path, redis_ns.url, redis_ns.prefix, data, cfg, port)
    store = Store(f"sqlite:///{c.db}")
    with store.session() as session:
        _row, admin = create_key(session, role="admin", name="rollout-admin")
    store.dispose()
    c.start("w0", "worker", "--worker-id", "w0", "--lease-ttl", "4", "--poll", "0.5")
    try:
        yield c, f"http://127.0.0.1:{port}", admin
    finally:
        c.stop()


def _push(url: str, key: str, onnx: Path, card: Path) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "cli.main", "models", "push", str(onnx), "--card", str(card), "--url", url]
    return subprocess.run([*cmd, "--key", key], cwd=ROOT, capture_output=True, text=True, timeout=120)


def _running(catalog: RedisModelCatalog) -> dict[str, Any]:
    r = catalog.running().get("gate")
    return {"models": r.models, "error": r.error} if r is not None else {}


def _models(url: str, key: str) -> list[dict[str, Any]]:
    return list(httpx.get(f"{url}/v1/models", headers={"X-API-Key": key}, timeout=10).json())


def test_a_pushed_model_reaches_the_worker_and_bad_ones_are_refused(
    cluster: tuple[Cluster, str, str], redis_ns: RedisNamespace, tmp_path: Path, coco_v2: Path, coco_card_text: str
) -> None:
    c, url, admin = cluster
    client = redis.Redis.from_url(redis_ns.url, decode_responses=True)
    catalog = RedisModelCatalog(client, redis_ns.prefix)
    c.wait("the camera on the shipped model", lambda: _running(catalog).get("models") == {NAME: SHIPPED}, 90)

    card = tmp_path / "card.yaml"
    card.write_text(coco_card_text)
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(coco_v2.read_bytes()[: 1 << 20])
    refused = _push(url, admin, corrupt, card)
    assert (refused.returncode, "not a loadable ONNX model" in refused.stderr) == (2, True), refused.stderr
    files = {"file": ("v2.onnx", coco_v2.read_bytes()), "card": ("card.yaml", coco_card_text.encode())}
    r = httpx.post(f"{url}/v1/models", files=files, data={"sha256": SHIPPED}, headers={"X-API-Key": admin}, timeout=60)
    assert (r.status_code, "sha256 mismatch" in r.json()["detail"]) == (422, True), r.text  # changed on the way

    sha = file_sha256(coco_v2)
    started = time.monotonic()
    pushed = _push(url, admin, coco_v2, card)
    accepted = time.monotonic()
    assert pushed.returncode == 0, pushed.stderr
    c.wait("the worker's camera on the pushed version", lambda: _running(catalog).get("models") == {NAME: sha}, 60)
    rollout_s = time.monotonic() - accepted  # the push answered → fetched, verified, loaded, swapped in
    assert rollout_s < ROLLOUT_S, rollout_s
    push_s = accepted - started  # the CLI's own start, the upload and the API's validation
    assert "models swapped between frames" in c.log("w0") and c.log("w0").count("camera gate: models [") == 1
    listed = _models(url, c.key)
    assert [(m["name"], m["versions"][0]["sha256"], m["versions"][0]["cameras"]) for m in listed] == [
        (NAME, sha, ["gate"])
    ]
    r = httpx.delete(f"{url}/v1/models/{NAME}", headers={"X-API-Key": admin}, timeout=10)
    assert r.status_code == 409 and "gate" in r.json()["detail"]

    # worker side: the stored file and the worker's cached copy both changed → refetch, hash wrong, refused
    for path in (
        tmp_path / "data" / "media" / "models" / f"{sha}.onnx",
        tmp_path / "data" / "model-cache" / f"{sha}.onnx",
    ):
        path.write_bytes(path.read_bytes()[:-1] + b"\0")
    camera = yaml.safe_load((tmp_path / "cameras" / "gate.yaml").read_text())
    (tmp_path / "cameras" / "gate.yaml").write_text(yaml.safe_dump({**camera, "models": {NAME: sha[:12]}}))
    c.wait("the tampered version refused", lambda: "sha256 mismatch" in str(_models(url, c.key)[0]["errors"]), 60)
    assert _running(catalog).get("models") == {}  # it runs nothing rather than a file whose hash is wrong

    (tmp_path / "cameras" / "gate.yaml").write_text(yaml.safe_dump({**camera, "models": {NAME: SHIPPED[:8]}}))
    c.wait("the pin to the shipped version", lambda: _running(catalog).get("models") == {NAME: SHIPPED}, 60)
    r = httpx.delete(f"{url}/v1/models/{NAME}", headers={"X-API-Key": admin}, timeout=10)
    assert r.status_code == 204, r.text
    assert _models(url, c.key) == []
    client.close()
    print(f"rollout: `models push` took {push_s:.1f} s; the worker ran the version {rollout_s:.1f} s after it")
