"""Finding 1 (camera streams as a way into the host) and finding 7 (YAML aliases), against the running service.

An operator key tries to point a camera at host files (directly, by `..`, through a symlink in the media root), to
tell existing from missing files by the answer, and to make the server connect or listen (http, tcp `listen=1`, udp,
rtmp, srt); an admin key may set those schemes, the same host files stay out of reach. `frame.jpg` is for operators.
A "billion laughs" camera YAML dropped on disk is refused at once instead of stalling the service.
"""

from __future__ import annotations

import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.pipelines.config.test_yaml_io import billion_laughs
from tests.security.conftest import SAMPLE, LiveService, _start, camera_yaml, free_port

ROOTS = "local video files must be under the media roots"
ADMIN_NEEDED = "streams need an admin key"
SECRET = "-----BEGIN PGP PRIVATE KEY BLOCK-----\nsafewatch-test-secret\n"


@pytest.fixture(scope="module")
def host(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """media/ (the only media root: a clip, a symlink out of it), secret.asc beside it."""
    base = tmp_path_factory.mktemp("host")
    (base / "media").mkdir()
    shutil.copy(SAMPLE, base / "media" / "clip.mp4")
    (base / "secret.asc").write_text(SECRET, encoding="utf-8")
    (base / "media" / "escape.mp4").symlink_to(base / "secret.asc")
    return base


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory, host: Path) -> Iterator[LiveService]:
    cam = camera_yaml("yard-1", "north", enabled=False)
    service = _start(tmp_path_factory.mktemp("streams"), [cam], {"SAFEWATCH_MEDIA_ROOTS": str(host / "media")})
    yield service
    service.stop()


def _put(svc: LiveService, key: str, camera_id: str, detect: str, **extra: Any) -> httpx.Response:
    body = camera_yaml(camera_id, "north", detect=detect, **{"enabled": False, **extra})
    with svc.client(key) as http:
        return http.put(f"/v1/cameras/{camera_id}", json={k: v for k, v in body.items() if k != "id"})


def _refused(r: httpx.Response, fragment: str, path: str = "streams.detect") -> None:
    """422 with exactly one problem, at `path`, saying `fragment`; nothing of the secret file in it."""
    assert r.status_code == 422, r.text
    [problem] = r.json()["detail"]
    assert problem["path"] == path and fragment in problem["message"], problem
    assert "safewatch-test-secret" not in r.text


def test_operator_cannot_point_a_camera_at_host_files(svc: LiveService, host: Path) -> None:
    operator = svc.key("operator")
    attempts = {
        "/etc/passwd": ROOTS,
        str(host / "secret.asc"): ROOTS,
        str(host / "media" / ".." / "secret.asc"): ROOTS,
        str(host / "media" / "escape.mp4"): ROOTS,  # inside by name, a symlink out
        "../../../../../../etc/passwd": ROOTS,
        "file:///etc/passwd": ADMIN_NEEDED,
        f"file://{host}/media/clip.mp4": ADMIN_NEEDED,
    }
    clip = str(host / "media" / "clip.mp4")
    for source, fragment in attempts.items():
        _refused(_put(svc, operator, "peek-1", source), fragment)
        record = _put(svc, operator, "peek-1", clip, streams={"detect": clip, "record": source})
        _refused(record, fragment, "streams.record")
    assert not (svc.config_dir / "peek-1.yaml").exists()
    # an admin key reaches no further: files through the API are under the media roots for every key
    for detect in ("/etc/passwd", str(host / "media" / "escape.mp4"), "file:///etc/passwd"):
        _refused(_put(svc, svc.admin_key, "peek-1", detect), ROOTS)


def test_existing_and_missing_files_get_the_same_answer(svc: LiveService, host: Path) -> None:
    operator = svc.key("operator")
    pairs = [
        ("/etc/passwd", "/etc/passwd-not-here"),
        (str(host / "secret.asc"), str(host / "secret-not-here.asc")),
        (str(host / "media" / ".." / "secret.asc"), str(host / "media" / ".." / "not-here.asc")),
    ]
    for existing, missing in pairs:
        a, b = _put(svc, operator, "peek-2", existing), _put(svc, operator, "peek-2", missing)
        assert (a.status_code, a.content) == (b.status_code, b.content), (existing, a.text, b.text)


def test_files_in_the_media_root_work_and_frames_are_for_operators(svc: LiveService, host: Path) -> None:
    operator = svc.key("operator")
    missing = _put(svc, operator, "clip-1", str(host / "media" / "not-yet.mp4"))
    _refused(missing, "file not found")  # inside the root, which operators may know: it may say so
    created = _put(svc, operator, "clip-1", str(host / "media" / "clip.mp4"))
    assert created.status_code == 201, created.text
    assert (svc.config_dir / "clip-1.yaml").stat().st_mode & 0o777 == 0o600  # it may hold stream passwords
    with svc.client(svc.key("viewer")) as http:
        denied = http.get("/v1/cameras/clip-1/frame.jpg")
        assert denied.status_code == 403 and "operator" in denied.json()["detail"]
        assert http.get("/v1/cameras/yard-1/frame.jpg").status_code == 403
    with svc.client(operator) as http:
        frame = http.get("/v1/cameras/clip-1/frame.jpg")
        assert frame.status_code == 200 and frame.headers["content-type"] == "image/jpeg"
        assert http.delete("/v1/cameras/clip-1").status_code == 204


NETWORK = ["http://127.0.0.1:{p}/video.mjpg", "https://127.0.0.1:{p}/live.m3u8", "tcp://127.0.0.1:{p}?listen=1"]
NETWORK += ["udp://127.0.0.1:{p}", "rtmp://127.0.0.1:{p}/live", "srt://127.0.0.1:{p}", "rtp://127.0.0.1:{p}"]


@pytest.mark.parametrize("url", NETWORK)
def test_network_schemes_need_an_admin_key(svc: LiveService, url: str) -> None:
    url = url.format(p=free_port())
    scheme = url.split("://")[0]
    _refused(_put(svc, svc.key("operator"), "net-1", url), f"{scheme}:// {ADMIN_NEEDED}")
    assert not (svc.config_dir / "net-1.yaml").exists()
    accepted = _put(svc, svc.admin_key, "net-1", url)  # disabled: nothing connects
    assert accepted.status_code == 201, accepted.text
    with svc.client(svc.admin_key) as http:
        assert http.delete("/v1/cameras/net-1").status_code == 204


def test_operators_set_rtsp(svc: LiveService) -> None:
    r = _put(svc, svc.key("operator"), "rtsp-1", "rtsp://user:pw@cam1.example:554/sub")
    assert r.status_code == 201, r.text
    with svc.client(svc.key("operator")) as http:
        assert http.delete("/v1/cameras/rtsp-1").status_code == 204


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def test_no_listening_socket_through_a_camera(svc: LiveService) -> None:
    """What the operator's camera would have done, an admin's does (so the probe works): a worker listens."""
    refused_port, admin_port = free_port(), free_port()
    refused = _put(svc, svc.key("operator"), "listen-1", f"tcp://127.0.0.1:{refused_port}?listen=1", enabled=True)
    _refused(refused, ADMIN_NEEDED)
    accepted = _put(svc, svc.admin_key, "listen-2", f"tcp://127.0.0.1:{admin_port}?listen=1", enabled=True)
    assert accepted.status_code == 201, accepted.text
    try:
        # One successful probe is the answer: FFmpeg accepts the probe's connection, reads nothing and closes its
        # listening socket until the source reconnects, so probing again right after may find the port closed.
        deadline, listened = time.monotonic() + 90, False
        while not listened and time.monotonic() < deadline:
            listened = _listening(admin_port)
            time.sleep(0 if listened else 0.3)
        tail = svc.log()[-4000:]
        assert listened, f"the admin's listening camera never listened (the probe proves nothing):\n{tail}"
        assert not _listening(refused_port)
    finally:
        with svc.client(svc.admin_key) as http:
            assert http.delete("/v1/cameras/listen-2").status_code == 204


def test_billion_laughs_on_disk_is_refused_quickly(svc: LiveService) -> None:
    path = svc.config_dir / "laughs.yaml"
    path.write_text(billion_laughs(), encoding="utf-8")
    try:
        started = time.monotonic()
        with svc.client(svc.key("viewer")) as http:
            listed = http.get("/v1/cameras", timeout=10).json()
        assert time.monotonic() - started < 3
        [problem] = [p for p in listed["problems"] if p["file"] == "laughs.yaml"]
        assert "anchors (&) and aliases (*) are not allowed" in problem["message"]
        deadline = time.monotonic() + 10  # the worker's directory watch met it too, and went on
        while "laughs.yaml: YAML anchor" not in svc.log() and time.monotonic() < deadline:
            time.sleep(0.3)
        assert "laughs.yaml: YAML anchor '&l0'" in svc.log()
        with svc.client(svc.key("viewer")) as http:
            assert http.get("/healthz").status_code == 200
    finally:
        path.unlink()
