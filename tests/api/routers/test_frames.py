"""GET /v1/cameras/{id}/frame.jpg (operator role): the zone editor's background (live or first file frame)."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image

from api.app import create_app
from api.auth import Role
from api.service import EmbeddedService
from tests.api.conftest import add_keys, auth, make_settings, store_of
from tests.vision.detect.helpers import built_default_models_dir

URL = "/v1/cameras/{}/frame.jpg"


@pytest.fixture
def config_dir(tmp_path: Path, repo_root: Path, sample_clip: Path) -> Path:
    """demo-gate.yaml (stream: the real sample clip), a stream camera and a camera whose video file is not a video."""
    out = tmp_path / "cameras"
    out.mkdir()
    text = (repo_root / "camera_configs" / "demo-gate.yaml").read_text(encoding="utf-8")
    (out / "demo-gate.yaml").write_text(text.replace("sample_media/vtest.mp4", str(sample_clip)), encoding="utf-8")
    rtsp = text.replace("id: demo-gate", "id: gate-rtsp").replace(
        "sample_media/vtest.mp4", "rtsp://admin:s3cret@cam5.example:554/sub"
    )
    (out / "gate-rtsp.yaml").write_text(rtsp, encoding="utf-8")
    (tmp_path / "broken.mp4").write_bytes(b"this is not a video" * 100)
    broken = text.replace("id: demo-gate", "id: gate-broken").replace(
        "sample_media/vtest.mp4", str(tmp_path / "broken.mp4")
    )
    (out / "gate-broken.yaml").write_text(broken, encoding="utf-8")
    return out


@pytest.fixture
def frame_app(tmp_path: Path, sqlite_url: str, config_dir: Path) -> FastAPI:
    return create_app(make_settings(tmp_path, sqlite_url, config_dir=config_dir, webhook_dispatcher=False))


@pytest.fixture
def frame_client(frame_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(frame_app) as c:
        yield c


@pytest.fixture
def operator(frame_app: FastAPI) -> dict[str, str]:
    return auth(add_keys(store_of(frame_app))[Role.operator])


def _first_frame(path: Path) -> np.ndarray:
    with av.open(str(path)) as container:
        frame = next(container.decode(video=0))
        return frame.to_ndarray(format="rgb24")


def _image(body: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(body))
    assert img.format == "JPEG"
    return img


def test_file_camera_shows_the_first_frame_of_its_clip(
    frame_client: TestClient, operator: dict[str, str], sample_clip: Path
) -> None:
    r = frame_client.get(URL.format("demo-gate"), headers=operator)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/jpeg"
    assert r.headers["x-frame-source"] == "file"
    assert r.headers["cache-control"] == "no-store"
    img = _image(r.content)
    assert img.size == (768, 576)
    decoded = np.asarray(img.convert("RGB"), dtype=np.int16)
    expected = _first_frame(sample_clip).astype(np.int16)
    assert float(np.abs(decoded - expected).mean()) < 4.0  # the same picture, up to JPEG loss


def test_max_side_downscales_keeping_the_aspect(frame_client: TestClient, operator: dict[str, str]) -> None:
    r = frame_client.get(URL.format("demo-gate"), params={"max_side": 320}, headers=operator)
    assert r.status_code == 200
    assert _image(r.content).size == (320, 240)
    assert frame_client.get(URL.format("demo-gate"), params={"max_side": 8}, headers=operator).status_code == 422


def test_a_running_camera_shows_its_latest_analysed_frame(
    frame_app: FastAPI, frame_client: TestClient, operator: dict[str, str]
) -> None:
    latest = np.zeros((48, 64, 3), np.uint8)
    latest[:, 32:] = (255, 0, 0)  # right half red
    frame_app.state.ctx.frames = lambda camera_id: latest if camera_id == "gate-rtsp" else None
    r = frame_client.get(URL.format("gate-rtsp"), headers=operator)
    assert r.status_code == 200, r.text
    assert r.headers["x-frame-source"] == "live"
    pixels = np.asarray(_image(r.content).convert("RGB"))
    assert pixels.shape == (48, 64, 3)
    assert pixels[24, 5].tolist() == pytest.approx([0, 0, 0], abs=12)
    assert pixels[24, 60].tolist() == pytest.approx([255, 0, 0], abs=12)
    # other cameras still fall back to their video file
    assert frame_client.get(URL.format("demo-gate"), headers=operator).headers["x-frame-source"] == "file"


@pytest.mark.parametrize(
    ("camera_id", "message"),
    [
        ("no-such-camera", "camera 'no-such-camera' not found"),
        ("gate-rtsp", "camera 'gate-rtsp' not running"),
        ("gate-broken", "cannot be read"),
    ],
)
def test_no_frame_is_404_with_the_reason(
    frame_client: TestClient, operator: dict[str, str], camera_id: str, message: str
) -> None:
    r = frame_client.get(URL.format(camera_id), headers=operator)
    assert r.status_code == 404
    assert message in r.json()["detail"]
    assert "s3cret" not in r.text


def test_frames_need_the_operator_role(frame_app: FastAPI, frame_client: TestClient) -> None:
    """A frame shows whatever the camera's source decodes to: for those who set the sources, not for viewers."""
    viewer = auth(add_keys(store_of(frame_app))[Role.viewer])
    r = frame_client.get(URL.format("demo-gate"), headers=viewer)
    assert r.status_code == 403 and "operator" in r.json()["detail"]


@pytest.mark.parametrize(("headers", "status"), [({}, 401), (auth("sw_not-a-key"), 401)])
def test_frame_needs_a_key(frame_client: TestClient, headers: dict[str, str], status: int) -> None:
    r = frame_client.get(URL.format("demo-gate"), headers=headers)
    assert r.status_code == status
    assert r.headers["www-authenticate"] == "Bearer"


def test_embedded_service_provides_the_frames_of_its_worker(
    tmp_path: Path, sqlite_url: str, config_dir: Path, repo_root: Path
) -> None:
    settings = make_settings(
        tmp_path, sqlite_url, config_dir=config_dir, webhook_dispatcher=False, models_dir=repo_root / "models"
    )
    service = EmbeddedService(settings)
    assert service.app.state.ctx.frames == service.latest_frame
    assert service.latest_frame("demo-gate") is None  # workers not started: no camera runs yet
    with TestClient(service.app) as client:
        key = auth(add_keys(store_of(service.app))[Role.operator])
        r = client.get(URL.format("demo-gate"), headers=key)
        assert r.status_code == 200 and r.headers["x-frame-source"] == "file"


def test_a_running_worker_serves_its_live_frame(tmp_path: Path, sqlite_url: str, config_dir: Path) -> None:
    """End to end: EmbeddedService runs demo-gate over the real clip; frame.jpg then serves the analysed frames."""
    for other in ("gate-rtsp.yaml", "gate-broken.yaml"):
        (config_dir / other).unlink()
    settings = make_settings(
        tmp_path, sqlite_url, config_dir=config_dir, webhook_dispatcher=False, models_dir=built_default_models_dir()
    )
    service = EmbeddedService(settings)
    with TestClient(service.app) as client:
        key = auth(add_keys(store_of(service.app))[Role.operator])
        service.start()
        try:
            deadline = time.monotonic() + 30
            while service.latest_frame("demo-gate") is None and time.monotonic() < deadline:
                time.sleep(0.1)
            latest = service.latest_frame("demo-gate")
            assert latest is not None, "the worker analysed no frame within 30 s"
            assert latest.shape == (576, 768, 3)
            r = client.get(URL.format("demo-gate"), headers=key)
            assert r.status_code == 200 and r.headers["x-frame-source"] == "live"
            assert _image(r.content).size == (768, 576)
        finally:
            service.stop_cameras(drain_timeout=5)
