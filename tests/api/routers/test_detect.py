"""POST /v1/detect with the real default model on real images: detections, single-frame violations, bad uploads."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image

from api.app import create_app
from api.auth import Role
from tests.api.conftest import add_keys, auth, make_settings, store_of
from tests.vision.detect.helpers import DEFAULT, built_default_models_dir
from tests.vision.detect.test_images import encoded, png_bomb

WHOLE = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]
MAX_UPLOAD = 1_000_000

CAMERAS: dict[str, dict[str, Any]] = {
    "everywhere": {
        "zones": [{"name": "all", "kind": "forbidden", "polygon": WHOLE}],
        "rules": [{"type": "intrusion", "zones": ["all"], "labels": ["person"], "min_seconds": 5}],
    },
    "left-strip": {  # a forbidden strip along the left edge: only the leftmost person of bus.jpg stands in it
        "zones": [{"name": "strip", "polygon": [[0.0, 0.0], [0.2, 0.0], [0.2, 1.0], [0.0, 1.0]]}],
        "rules": [{"type": "intrusion", "zones": ["strip"]}],
    },
    "lobby": {
        "zones": [{"name": "lobby", "kind": "indoor", "anchor": "center", "polygon": WHOLE}],
        "rules": [
            {"type": "exit_blocked", "zones": ["lobby"], "labels": ["motorcycle"], "dwell_seconds": 30},
            {"type": "ebike_indoor", "zones": ["lobby"]},
            {"type": "loitering", "zones": ["lobby"], "labels": ["motorcycle"], "dwell_seconds": 10},
            {"type": "intrusion", "zones": ["lobby"], "enabled": False},
        ],
    },
}


@pytest.fixture(scope="module")
def detect_app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    tmp = tmp_path_factory.mktemp("detect")
    config_dir = tmp / "cameras"
    config_dir.mkdir()
    for cam_id, fields in CAMERAS.items():
        body = {"id": cam_id, "site": "s", "name": cam_id, "streams": {"detect": "rtsp://cam/1"}, **fields}
        (config_dir / f"{cam_id}.yaml").write_text(yaml.safe_dump(body), encoding="utf-8")
    settings = make_settings(
        tmp,
        f"sqlite:///{(tmp / 'store.db').as_posix()}",
        config_dir=config_dir,
        models_dir=built_default_models_dir(),
        max_upload_bytes=MAX_UPLOAD,
        webhook_dispatcher=False,
    )
    return create_app(settings)


@pytest.fixture(scope="module")
def roles(detect_app: FastAPI) -> dict[Role, str]:
    return add_keys(store_of(detect_app))


@pytest.fixture(scope="module")
def client(detect_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(detect_app) as c:
        yield c


@pytest.fixture
def platform(roles: dict[Role, str]) -> dict[str, str]:
    return auth(roles[Role.platform])


def post(client: TestClient, headers: dict[str, str], data: bytes, name: str = "image.jpg", **fields: str) -> Any:
    return client.post("/v1/detect", files={"file": (name, data, "image/jpeg")}, data=fields, headers=headers)


def test_bus_gives_people_with_sensible_boxes(client: TestClient, platform: dict[str, str], test_images: Path) -> None:
    r = post(client, platform, (test_images / "bus.jpg").read_bytes(), "bus.jpg")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["image"] == {"width": 810, "height": 1080, "filename": "bus.jpg"}
    assert body["models"] == [DEFAULT]
    assert "violations" not in body and "rules" not in body
    people = [d for d in body["detections"] if d["label"] == "person"]
    assert len(people) >= 3
    for d in people:
        x1, y1, x2, y2 = d["box"]
        assert 0 <= x1 < x2 <= 810 and 0 <= y1 < y2 <= 1080
        assert 1.5 < (y2 - y1) / (x2 - x1) < 6  # standing people: taller than wide (one is cut by the edge)
        assert 0.25 <= d["confidence"] <= 1 and d["class_name"] == "person"
    best = max(people, key=lambda d: d["confidence"])
    assert best["box"] == pytest.approx([42, 386, 223, 916], abs=8)  # the man on the left, feet near the bottom


def test_conf_and_model_fields(client: TestClient, platform: dict[str, str], test_images: Path) -> None:
    data = (test_images / "bus.jpg").read_bytes()
    low = post(client, platform, data, conf="0.1", model=DEFAULT).json()
    high = post(client, platform, data, conf="0.9").json()
    assert {d["label"] for d in low["detections"]} >= {"person", "bus"}
    assert len(high["detections"]) == 2 and all(d["confidence"] >= 0.9 for d in high["detections"])


def test_camera_with_whole_frame_zone_reports_intrusion(
    client: TestClient, platform: dict[str, str], test_images: Path
) -> None:
    body = post(client, platform, (test_images / "bus.jpg").read_bytes(), camera_id="everywhere").json()
    people = [d["box"] for d in body["detections"] if d["label"] == "person"]
    [violation] = body["violations"]
    assert violation["rule"] == "intrusion" and violation["zone"] == "all" and violation["labels"] == ["person"]
    assert violation["rule_key"] == "0:intrusion" and "track_ids" not in violation  # untracked: zone-level
    assert sorted(violation["boxes"]) == sorted(people)
    assert violation["confidence"] == pytest.approx(max(d["confidence"] for d in body["detections"]))
    assert body["camera_id"] == "everywhere" and "min_seconds" in body["note"]  # min_seconds 5 ignored
    assert body["rules"] == [{"rule_key": "0:intrusion", "rule": "intrusion", "evaluated": True, "note": None}]


def test_zone_limits_the_violation_to_people_inside(
    client: TestClient, platform: dict[str, str], test_images: Path
) -> None:
    body = post(client, platform, (test_images / "bus.jpg").read_bytes(), camera_id="left-strip").json()
    [violation] = body["violations"]
    [box] = violation["boxes"]
    assert (box[0] + box[2]) / 2 < 0.2 * 810  # feet inside the strip
    assert len([d for d in body["detections"] if d["label"] == "person"]) >= 3


def test_dwell_rules_fire_on_one_frame_and_history_rules_are_skipped(
    client: TestClient, platform: dict[str, str], test_images: Path
) -> None:
    body = post(client, platform, (test_images / "motorcycle_left.png").read_bytes(), camera_id="lobby").json()
    assert body["models"] == [DEFAULT]  # chosen from the rules' labels
    fired = {v["rule"]: v for v in body["violations"]}
    assert set(fired) == {"exit_blocked", "ebike_indoor"}  # dwell_seconds 30 ignored on a single frame
    assert fired["exit_blocked"]["labels"] == ["motorcycle"] and fired["ebike_indoor"]["zone"] == "lobby"
    rules = {r["rule"]: r for r in body["rules"]}
    assert rules["exit_blocked"]["evaluated"] and "dwell_seconds ignored" in rules["exit_blocked"]["note"]
    assert not rules["loitering"]["evaluated"] and "over many frames" in rules["loitering"]["note"]
    assert not rules["intrusion"]["evaluated"] and "disabled" in rules["intrusion"]["note"]


def _multipart(data: bytes, boundary: str = "sw-test-boundary") -> bytes:
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n"
    ).encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode()


Upload = Callable[[TestClient, dict[str, str], Path], Any]

BAD: list[tuple[str, Upload, int, str]] = [
    ("empty file", lambda c, h, ti: post(c, h, b""), 400, "empty"),
    ("text, not an image", lambda c, h, ti: post(c, h, b"hello, not an image"), 415, "not an image"),
    ("truncated jpeg", lambda c, h, ti: post(c, h, (ti / "bus.jpg").read_bytes()[:25000]), 422, "truncated"),
    ("decompression bomb", lambda c, h, ti: post(c, h, png_bomb(20000, 20000), "bomb.png"), 422, "too large"),
    ("json, not multipart", lambda c, h, ti: c.post("/v1/detect", json={"file": "x"}, headers=h), 415, "multipart"),
    ("no file field", lambda c, h, ti: c.post("/v1/detect", files={"camera_id": (None, "x")}, headers=h), 422, "file"),
    ("conf out of range", lambda c, h, ti: post(c, h, (ti / "bus.jpg").read_bytes(), conf="2"), 422, "conf"),
    ("conf not a number", lambda c, h, ti: post(c, h, (ti / "bus.jpg").read_bytes(), conf="high"), 422, "conf"),
    ("unknown field", lambda c, h, ti: post(c, h, (ti / "bus.jpg").read_bytes(), camera="x"), 422, "camera"),
    ("unknown model", lambda c, h, ti: post(c, h, (ti / "bus.jpg").read_bytes(), model="nope"), 422, "unknown model"),
    ("unknown camera", lambda c, h, ti: post(c, h, (ti / "bus.jpg").read_bytes(), camera_id="gate-9"), 404, "gate-9"),
    (
        "invalid camera id",
        lambda c, h, ti: post(c, h, (ti / "bus.jpg").read_bytes(), camera_id="A B"),
        422,
        "camera_id",
    ),
    ("oversize", lambda c, h, ti: post(c, h, b"\xff" * (MAX_UPLOAD + 1)), 413, str(MAX_UPLOAD)),
    (
        "oversize, chunked without Content-Length",
        lambda c, h, ti: c.post(
            "/v1/detect",
            content=iter([_multipart(b"\xff" * (MAX_UPLOAD + 100_000))]),
            headers={**h, "Content-Type": "multipart/form-data; boundary=sw-test-boundary"},
        ),
        413,
        "too large",
    ),
    (
        "malformed multipart",
        lambda c, h, ti: c.post("/v1/detect", content=b"garbage", headers={**h, "Content-Type": "multipart/form-data"}),
        400,
        "multipart",
    ),
]


@pytest.mark.parametrize(("case", "send", "code", "reason"), BAD, ids=[b[0] for b in BAD])
def test_bad_uploads_get_the_right_4xx(
    client: TestClient, platform: dict[str, str], test_images: Path, case: str, send: Upload, code: int, reason: str
) -> None:
    r = send(client, platform, test_images)
    assert r.status_code == code, (case, r.text)
    assert reason.lower() in r.text.lower(), r.text


def test_detect_needs_the_platform_role(client: TestClient, roles: dict[Role, str], test_images: Path) -> None:
    data = (test_images / "bus.jpg").read_bytes()
    assert post(client, {}, data).status_code == 401
    denied = post(client, auth(roles[Role.operator]), data)
    assert denied.status_code == 403 and "platform" in denied.json()["detail"]
    assert post(client, auth(roles[Role.admin]), data).status_code == 200


def test_detectors_are_loaded_once_per_app(
    detect_app: FastAPI, client: TestClient, platform: dict[str, str], test_images: Path
) -> None:
    registry = detect_app.state.ctx.registry
    post(client, platform, (test_images / "zidane.jpg").read_bytes())
    first = registry.detector(DEFAULT)
    post(client, platform, (test_images / "zidane.jpg").read_bytes())
    assert registry.detector(DEFAULT) is first


def test_each_inference_is_timed_per_model(
    detect_app: FastAPI, client: TestClient, platform: dict[str, str], test_images: Path
) -> None:
    metrics = detect_app.state.ctx.metrics

    def count() -> float:
        value = metrics.registry.get_sample_value("safewatch_inference_latency_seconds_count", {"model": DEFAULT})
        return float(value or 0.0)

    before = count()
    assert post(client, platform, (test_images / "bus.jpg").read_bytes()).status_code == 200
    assert count() == before + 1


@pytest.fixture(scope="module")
def bus_x4(test_images: Path) -> bytes:
    """bus.jpg upscaled 4x (3240x4320): decoded reduced by the server."""
    with Image.open(test_images / "bus.jpg") as img:
        big = img.resize((3240, 4320), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    big.save(buf, format="JPEG", quality=50)
    assert len(buf.getvalue()) < MAX_UPLOAD
    return buf.getvalue()


def test_large_jpeg_boxes_are_in_the_uploaded_pixels(
    client: TestClient, platform: dict[str, str], bus_x4: bytes
) -> None:
    body = post(client, platform, bus_x4, "bus4.jpg").json()
    assert body["image"] == {"width": 3240, "height": 4320, "filename": "bus4.jpg"}
    people = [d for d in body["detections"] if d["label"] == "person"]
    assert len(people) >= 3 and all(0 <= d["box"][0] < d["box"][2] <= 3240 for d in people)
    best = max(people, key=lambda d: d["confidence"])
    assert best["box"] == pytest.approx([4 * v for v in (42, 386, 223, 916)], abs=40)  # same man, 4x the pixels


def test_large_jpeg_violation_boxes_are_in_the_uploaded_pixels(
    client: TestClient, platform: dict[str, str], bus_x4: bytes
) -> None:
    body = post(client, platform, bus_x4, camera_id="left-strip").json()
    [violation] = body["violations"]
    [box] = violation["boxes"]
    assert box[2] > 600 and (box[0] + box[2]) / 2 < 0.2 * 3240  # in original pixels, feet inside the strip
    assert box in [d["box"] for d in body["detections"]]


DAMAGED = [
    ("ppm-pixels-cut", b"P6 100 100 255\n" + b"\x00" * 100, "truncated PPM"),
    ("ppm-header-cut", b"P6 100 100", "header"),
    ("ppm-maxval-0", b"P6 10 10 0\n" + b"\x00" * 300, "maxval"),
    ("png-header-cut", encoded("PNG")[:20], "header"),
    ("webp-cut", encoded("WEBP")[:40], "header"),
]


@pytest.mark.parametrize(("name", "data", "reason"), DAMAGED, ids=[d[0] for d in DAMAGED])
def test_damaged_images_are_422_not_500(
    client: TestClient, platform: dict[str, str], name: str, data: bytes, reason: str
) -> None:
    r = post(client, platform, data, f"{name}.img")
    assert r.status_code == 422, r.text
    assert reason in r.json()["detail"] and r.json()["detail"].startswith(f"{name}.img: ")


def test_not_decodable_reduced_and_too_many_pixels_is_422(
    client: TestClient, platform: dict[str, str], detect_app: FastAPI
) -> None:
    limit = detect_app.state.ctx.settings.detect_max_pixels
    side = int(limit**0.5) + 1
    r = post(client, platform, png_bomb(side, side), "big.png")
    assert r.status_code == 422 and f"limit {limit}" in r.json()["detail"], r.text


def test_every_slot_taken_is_429_with_retry_after(
    client: TestClient, platform: dict[str, str], detect_app: FastAPI, test_images: Path
) -> None:
    pool = detect_app.state.ctx.detect
    with contextlib.ExitStack() as held:
        for _ in range(pool.capacity):
            held.enter_context(pool.admit())
        r = post(client, platform, (test_images / "bus.jpg").read_bytes())
    assert r.status_code == 429 and r.headers["Retry-After"] == str(pool.retry_after_s), r.text
    assert "busy" in r.json()["detail"]
    assert post(client, platform, (test_images / "bus.jpg").read_bytes()).status_code == 200  # slots released
