"""Sites and site maps (`/v1/sites`): markers, plan images (upload and camera frame), states and open incidents,
validation errors and site scopes, against the real store and camera configs on disk."""

from __future__ import annotations

import io
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image

from api.app import create_app
from api.auth import Role
from api.store.incidents import apply_event
from api.store.keys import create_key
from api.workers import WorkerInfo
from tests.api.conftest import T0, add_keys, auth, make_event, make_settings, store_of

MAP = "/v1/sites/{}/map"
SITE = "1号工地"  # sites are free text: a Chinese name travels in the path


def camera_config(camera_id: str, site: str, clip: Path) -> dict[str, Any]:
    return {
        "id": camera_id,
        "site": site,
        "name": f"{camera_id} 门口",
        "streams": {"detect": str(clip)},
        "zones": [{"name": "area", "polygon": [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9], [0.1, 0.9]]}],
        "rules": [{"type": "intrusion", "zones": ["area"]}],
    }


def write_cameras(config_dir: Path, cameras: list[dict[str, Any]]) -> None:
    config_dir.mkdir(parents=True, exist_ok=True)
    for cam in cameras:
        (config_dir / f"{cam['id']}.yaml").write_text(yaml.safe_dump(cam, allow_unicode=True), encoding="utf-8")


def png_bytes(width: int = 320, height: int = 200, fmt: str = "PNG") -> bytes:
    pixels = np.zeros((height, width, 3), dtype=np.uint8)
    pixels[:, : width // 2] = (200, 220, 240)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format=fmt)
    return buf.getvalue()


@pytest.fixture
def sites_app(tmp_path: Path, sqlite_url: str, sample_clip: Path) -> FastAPI:
    config_dir = tmp_path / "cameras"
    write_cameras(
        config_dir,
        [
            camera_config("gate-1", SITE, sample_clip),
            camera_config("gate-2", SITE, sample_clip),
            camera_config("yard-1", "south", sample_clip),
        ],
    )

    def workers() -> list[WorkerInfo]:
        return [WorkerInfo(id="w1", host="h", cameras=["gate-1", "yard-1"], fps=2.0, lag_s=0.0, last_seen=T0)]

    settings = make_settings(tmp_path, sqlite_url, config_dir=config_dir, webhook_dispatcher=False)
    return create_app(settings, workers=workers)


@pytest.fixture
def client(sites_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(sites_app) as c:
        yield c


@pytest.fixture
def keys(sites_app: FastAPI) -> dict[Role, str]:
    return add_keys(store_of(sites_app))


def scoped_key(app: FastAPI, role: Role, sites: list[str]) -> dict[str, str]:
    with store_of(app).session() as session:
        _row, plain = create_key(session, role=role.value, name="scoped", sites=sites)
    return auth(plain)


def test_sites_are_listed_from_cameras_and_scoped(
    client: TestClient, sites_app: FastAPI, keys: dict[Role, str]
) -> None:
    r = client.get("/v1/sites", headers=auth(keys[Role.viewer]))
    assert r.status_code == 200
    assert [(s["site"], s["cameras"], s["has_plan"]) for s in r.json()] == [(SITE, 2, False), ("south", 1, False)]
    south = scoped_key(sites_app, Role.viewer, ["south"])
    assert [s["site"] for s in client.get("/v1/sites", headers=south).json()] == ["south"]
    assert client.get("/v1/sites").status_code == 401


def test_markers_save_and_reload_with_states_and_severities(
    client: TestClient, sites_app: FastAPI, keys: dict[Role, str]
) -> None:
    store = store_of(sites_app)
    apply_event(store, make_event("i1", camera_id="gate-1", site=SITE, severity="critical"))
    apply_event(store, make_event("i2", camera_id="gate-1", site=SITE, severity="warning", rule="intrusion"))
    apply_event(store, make_event("i3", camera_id="gate-1", site=SITE, severity="critical", rule="loitering"))
    shadow = make_event("i9", camera_id="gate-1", site=SITE, severity="info", shadow=True, candidate="next-model")
    apply_event(store, shadow)  # a shadow run's incident: not on the map
    closed = make_event("i4", camera_id="gate-2", site=SITE)
    apply_event(store, closed)
    apply_event(store, make_event("i4", 1, camera_id="gate-2", site=SITE, type="closed"))
    viewer, operator = auth(keys[Role.viewer]), auth(keys[Role.operator])
    empty = client.get(MAP.format(SITE), headers=viewer).json()
    assert empty["plan"] is None and empty["markers"] == [] and empty["updated_at"] is None
    body = {"markers": [{"camera_id": "gate-1", "x": 0.25, "y": 0.75}, {"camera_id": "gate-2", "x": 1.0, "y": 0.0}]}
    assert client.put(MAP.format(SITE), json=body, headers=viewer).status_code == 403
    r = client.put(MAP.format(SITE), json=body, headers=operator)
    assert r.status_code == 200, r.text
    again = client.get(MAP.format(SITE), headers=viewer).json()
    assert again["markers"] == body["markers"]
    cameras = {c["id"]: c for c in again["cameras"]}
    assert cameras["gate-1"]["state"] == "streaming" and cameras["gate-2"]["state"] == "offline"
    assert cameras["gate-1"]["open"] == {"critical": 2, "warning": 1} and cameras["gate-2"]["open"] == {}
    assert cameras["gate-1"]["name"] == "gate-1 门口"
    # an open camera_offline incident makes a running camera offline on the map
    apply_event(store, make_event("i5", camera_id="gate-1", site=SITE, rule="camera_offline", severity="warning"))
    cameras = {c["id"]: c for c in client.get(MAP.format(SITE), headers=viewer).json()["cameras"]}
    assert cameras["gate-1"]["state"] == "offline" and cameras["gate-1"]["open"]["warning"] == 2
    # replacing the markers removes the ones left out
    one = {"markers": [{"camera_id": "gate-2", "x": 0.5, "y": 0.5}]}
    assert client.put(MAP.format(SITE), json=one, headers=operator).json()["markers"] == one["markers"]


@pytest.mark.parametrize(
    ("marker", "path"),
    [
        ({"camera_id": "gate-1", "x": 1.01, "y": 0.5}, "x"),
        ({"camera_id": "gate-1", "x": 0.5, "y": -0.1}, "y"),
        ({"camera_id": "gate-1", "x": "nan", "y": 0.5}, "x"),
        ({"camera_id": "gate-1", "x": 0.5}, "y"),
        ({"camera_id": "gate-1", "x": 0.5, "y": 0.5, "z": 1}, "z"),
        ({"camera_id": "Gate 1", "x": 0.5, "y": 0.5}, "camera_id"),
    ],
)
def test_bad_markers_are_422(client: TestClient, keys: dict[Role, str], marker: dict[str, Any], path: str) -> None:
    r = client.put(MAP.format(SITE), json={"markers": [marker]}, headers=auth(keys[Role.operator]))
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["path"] == f"body.markers.0.{path}"


def test_unknown_duplicate_and_foreign_cameras_are_422(client: TestClient, keys: dict[Role, str]) -> None:
    operator = auth(keys[Role.operator])
    markers = [
        {"camera_id": "gate-1", "x": 0.1, "y": 0.1},
        {"camera_id": "nope", "x": 0.2, "y": 0.2},
        {"camera_id": "yard-1", "x": 0.3, "y": 0.3},  # a camera of another site
        {"camera_id": "gate-1", "x": 0.4, "y": 0.4},
    ]
    r = client.put(MAP.format(SITE), json={"markers": markers}, headers=operator)
    assert r.status_code == 422
    assert [p["path"] for p in r.json()["detail"]] == [f"body.markers.{i}.camera_id" for i in (1, 2, 3)]
    assert "placed twice" in r.json()["detail"][2]["message"]
    assert client.get(MAP.format(SITE), headers=operator).json()["markers"] == []  # nothing stored


def test_unknown_and_foreign_sites_are_404(client: TestClient, sites_app: FastAPI, keys: dict[Role, str]) -> None:
    body: dict[str, list[Any]] = {"markers": []}
    assert client.get(MAP.format("nowhere"), headers=auth(keys[Role.admin])).status_code == 404
    assert client.put(MAP.format("nowhere"), json=body, headers=auth(keys[Role.admin])).status_code == 404
    north = scoped_key(sites_app, Role.operator, [SITE])
    for method, path in [("GET", MAP), ("PUT", MAP), ("GET", MAP + "/image"), ("PUT", MAP + "/image")]:
        unknown = client.request(method, path.format("nowhere"), headers=north, json=body)
        foreign = client.request(method, path.format("south"), headers=north, json=body)
        assert (foreign.status_code, foreign.json()) == (404, {"detail": "site 'south' not found"}), (method, path)
        assert unknown.status_code == 404
    assert client.put(MAP.format(SITE), json=body, headers=north).status_code == 200


def _upload(client: TestClient, headers: dict[str, str], data: bytes, name: str = "plan.png") -> Any:
    return client.put(MAP.format(SITE) + "/image", files={"file": (name, data)}, headers=headers)


def test_plan_upload_is_reencoded_and_served(client: TestClient, keys: dict[Role, str]) -> None:
    viewer, operator = auth(keys[Role.viewer]), auth(keys[Role.operator])
    assert client.get(MAP.format(SITE) + "/image", headers=viewer).status_code == 404  # no plan yet
    assert _upload(client, viewer, png_bytes()).status_code == 403
    r = _upload(client, operator, png_bytes())
    assert r.status_code == 200, r.text
    plan = r.json()["plan"]
    assert (plan["content_type"], plan["width"], plan["height"]) == ("image/png", 320, 200)
    got = client.get(plan["url"], headers=viewer)
    assert got.status_code == 200 and got.headers["content-type"] == "image/png"
    assert got.headers["etag"] == f'"{plan["sha256"]}"' and got.headers["x-content-type-options"] == "nosniff"
    assert Image.open(io.BytesIO(got.content)).size == (320, 200)
    cached = client.get(plan["url"], headers={**viewer, "If-None-Match": got.headers["etag"]})
    assert cached.status_code == 304 and not cached.content
    # a JPEG replaces it, and markers stay
    client.put(MAP.format(SITE), json={"markers": [{"camera_id": "gate-1", "x": 0.5, "y": 0.5}]}, headers=operator)
    r = _upload(client, operator, png_bytes(640, 480, "JPEG"), "photo.jpg")
    assert r.json()["plan"]["content_type"] == "image/jpeg" and len(r.json()["markers"]) == 1
    sites = client.get("/v1/sites", headers=viewer).json()
    assert sites[0]["has_plan"] is True and sites[0]["markers"] == 1


def test_large_plans_are_stored_reduced(client: TestClient, keys: dict[Role, str]) -> None:
    r = _upload(client, auth(keys[Role.operator]), png_bytes(5000, 400))
    assert r.status_code == 200, r.text
    plan = r.json()["plan"]
    assert 2048 <= plan["width"] < 4096 and plan["height"] == round(400 * plan["width"] / 5000)


@pytest.mark.parametrize(
    ("data", "name", "status"),
    [
        (b"", "plan.png", 400),
        (b"GIF89a" + b"\0" * 100, "plan.gif", 415),
        (b"hello, not an image at all", "plan.png", 415),
        (png_bytes()[:60], "plan.png", 422),  # truncated PNG
        (png_bytes(fmt="JPEG")[:300], "plan.jpg", 422),  # truncated JPEG
    ],
)
def test_bad_plan_images_are_4xx(
    client: TestClient, keys: dict[Role, str], data: bytes, name: str, status: int
) -> None:
    r = _upload(client, auth(keys[Role.operator]), data, name)
    assert r.status_code == status, r.text
    assert client.get(MAP.format(SITE) + "/image", headers=auth(keys[Role.viewer])).status_code == 404


def test_a_plan_over_the_pixel_limit_is_refused_before_decoding(client: TestClient, keys: dict[Role, str]) -> None:
    huge = png_bytes(1, 1)
    # patch the IHDR size to 60000 x 60000 (3.6 GP): the header alone must refuse it
    header = bytearray(huge)
    header[16:24] = (60000).to_bytes(4, "big") + (60000).to_bytes(4, "big")
    header[29:33] = zlib.crc32(bytes(header[12:29])).to_bytes(4, "big")  # the IHDR chunk's CRC
    r = _upload(client, auth(keys[Role.operator]), bytes(header))
    assert r.status_code == 422 and "too large" in r.json()["detail"]


def test_plan_upload_size_and_form_errors(client: TestClient, keys: dict[Role, str]) -> None:
    operator = auth(keys[Role.operator])
    r = client.put(MAP.format(SITE) + "/image", content=png_bytes(), headers={**operator, "Content-Type": "image/png"})
    assert r.status_code == 415
    noise = np.random.default_rng(7).integers(0, 256, (800, 1000, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noise).save(buf, format="PNG")
    assert buf.tell() > 2 * 1024 * 1024  # over the 1 MiB limit of JSON bodies: this route reads its own
    assert _upload(client, operator, buf.getvalue()).status_code == 200
    markers = {"markers": [{"camera_id": "gate-1", "x": 0.5, "y": 0.5}] * 30000}
    assert client.put(MAP.format(SITE), json=markers, headers=operator).status_code == 413  # JSON: 1 MiB
    big = b"\x89PNG\r\n\x1a\n" + b"\0" * (10 * 1024 * 1024 + 1)
    assert _upload(client, operator, big).status_code == 413
    r = client.put(MAP.format(SITE) + "/image", files={"other": ("x.png", png_bytes())}, headers=operator)
    assert r.status_code == 422


def test_plan_from_a_camera_frame(client: TestClient, sites_app: FastAPI, keys: dict[Role, str]) -> None:
    operator = auth(keys[Role.operator])
    r = client.put(MAP.format(SITE) + "/image", params={"from_camera": "gate-1"}, headers=operator)
    assert r.status_code == 200, r.text
    plan = r.json()["plan"]
    assert (plan["content_type"], plan["width"], plan["height"]) == ("image/jpeg", 768, 576)  # the clip's first frame
    r = client.put(MAP.format(SITE) + "/image", params={"from_camera": "yard-1"}, headers=operator)
    assert r.status_code == 422 and "belongs to site 'south'" in r.json()["detail"]
    assert client.put(MAP.format(SITE) + "/image", params={"from_camera": "nope"}, headers=operator).status_code == 404
    north = scoped_key(sites_app, Role.operator, [SITE])
    r = client.put(MAP.format(SITE) + "/image", params={"from_camera": "yard-1"}, headers=north)
    assert (r.status_code, r.json()["detail"]) == (404, "camera 'yard-1' not found")  # not "belongs to south"


def test_a_removed_cameras_marker_is_left_out(
    client: TestClient, sites_app: FastAPI, keys: dict[Role, str], tmp_path: Path
) -> None:
    operator = auth(keys[Role.operator])
    body = {"markers": [{"camera_id": "gate-1", "x": 0.1, "y": 0.2}, {"camera_id": "gate-2", "x": 0.3, "y": 0.4}]}
    assert client.put(MAP.format(SITE), json=body, headers=operator).status_code == 200
    (tmp_path / "cameras" / "gate-2.yaml").unlink()
    got = client.get(MAP.format(SITE), headers=operator).json()
    assert [m["camera_id"] for m in got["markers"]] == ["gate-1"] and [c["id"] for c in got["cameras"]] == ["gate-1"]
    assert client.get("/v1/sites", headers=operator).json()[0]["markers"] == 1
    # the map outlives the site's last camera
    (tmp_path / "cameras" / "gate-1.yaml").unlink()
    assert client.get(MAP.format(SITE), headers=operator).json()["cameras"] == []
