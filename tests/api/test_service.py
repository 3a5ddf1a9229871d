"""`EmbeddedService.workers()` (GET /v1/workers in embedded mode): this process, summarised by `CameraWorker.load()`,
the same summary a distributed worker writes into its heartbeat. Runs demo-gate over the real sample clip."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.auth import Role
from api.service import EmbeddedService
from tests.api.conftest import add_keys, auth, make_settings, store_of
from tests.vision.detect.helpers import built_default_models_dir

pytestmark = pytest.mark.timeout(90)


def test_workers_report_the_running_cameras(
    tmp_path: Path, sqlite_url: str, repo_root: Path, sample_clip: Path
) -> None:
    config_dir = tmp_path / "cameras"
    config_dir.mkdir()
    text = (repo_root / "camera_configs" / "demo-gate.yaml").read_text(encoding="utf-8")
    (config_dir / "demo-gate.yaml").write_text(text.replace("sample_media/vtest.mp4", str(sample_clip)), "utf-8")
    settings = make_settings(
        tmp_path, sqlite_url, config_dir=config_dir, webhook_dispatcher=False, models_dir=built_default_models_dir()
    )
    service = EmbeddedService(settings)
    with TestClient(service.app) as client:
        key = auth(add_keys(store_of(service.app))[Role.viewer])
        [idle] = client.get("/v1/workers", headers=key).json()
        assert (idle["id"], idle["cameras"], idle["fps"], idle["lag_s"]) == (service.worker.id, [], 0.0, 0.0)
        service.start()
        try:
            deadline = time.monotonic() + 30
            while service.worker.load().fps == 0 and time.monotonic() < deadline:
                time.sleep(0.2)
            assert service.worker.load().fps > 0, "the worker analysed no frame within 30 s"
            [busy] = client.get("/v1/workers", headers=key).json()
        finally:
            service.stop_cameras(drain_timeout=5)
    assert set(busy) == {"id", "host", "cameras", "fps", "lag_s", "last_seen"}
    assert (busy["id"], busy["host"], busy["cameras"]) == (service.worker.id, service.worker.host, ["demo-gate"])
    assert 0 < busy["fps"] <= 10 and busy["fps"] == round(busy["fps"], 2) and busy["lag_s"] >= 0
