"""Camera config API over real YAML files: CRUD round trip, loader-identical validation, label coverage, redaction."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import Role
from pipelines.config.camera import load_camera_config, load_camera_configs
from pipelines.worker.settings import DEFAULT_MEDIA_ROOT
from tests.api.conftest import add_keys, auth, make_settings, store_of
from tests.vision.detect.helpers import DEFAULT, built_default_models_dir

SQUARE = [[0.1, 0.5], [0.4, 0.5], [0.4, 0.9], [0.1, 0.9]]


def camera_body(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "site": "sip-plot-12",
        "name": "3号门 消防通道",
        "streams": {"detect": "rtsp://admin:s3cret@cam5.example:554/sub"},
        "analysis_fps": 5,
        "zones": [
            {"name": "fire_lane", "kind": "fire_exit", "polygon": SQUARE},
            {"name": "work_area", "polygon": [[0, 0], [1, 0], [1, 1], [0, 1]]},
        ],
        "rules": [
            {"type": "exit_blocked", "zones": ["fire_lane"], "dwell_seconds": 30},
            {"type": "intrusion", "zones": ["work_area"], "labels": ["person"], "min_seconds": 1},
        ],
    }
    body.update(changes)
    return body


@pytest.fixture
def config_dir(tmp_path: Path, repo_root: Path) -> Path:
    out = tmp_path / "cameras"
    out.mkdir()
    for src in (repo_root / "camera_configs").glob("*.yaml"):
        shutil.copy(src, out / src.name)
    return out


def _app(tmp_path: Path, sqlite_url: str, config_dir: Path, models_dir: Path, **settings: Any) -> FastAPI:
    values = {"config_dir": config_dir, "models_dir": models_dir, "webhook_dispatcher": False, **settings}
    return create_app(make_settings(tmp_path, sqlite_url, **values))


@pytest.fixture
def cam_app(tmp_path: Path, sqlite_url: str, config_dir: Path) -> FastAPI:
    return _app(tmp_path, sqlite_url, config_dir, built_default_models_dir())


@pytest.fixture
def cam_client(cam_app: FastAPI) -> Iterator[TestClient]:
    with TestClient(cam_app) as c:
        yield c


@pytest.fixture
def op(cam_app: FastAPI) -> dict[str, str]:
    keys = add_keys(store_of(cam_app))
    return auth(keys[Role.operator])


def _files(config_dir: Path) -> list[str]:
    return sorted(p.name for p in config_dir.iterdir())


def test_list_and_get_the_demo_cameras(cam_client: TestClient, op: dict[str, str]) -> None:
    listed = cam_client.get("/v1/cameras", headers=op).json()
    assert [c["id"] for c in listed["items"]] == ["demo-gate", "demo-yard"]
    assert listed["problems"] == []
    r = cam_client.get("/v1/cameras/demo-gate", headers=op)
    assert r.status_code == 200 and r.headers["etag"].startswith('"')
    gate = r.json()
    assert gate["name"] == "演示 1号门 消防通道"
    assert [z["name"] for z in gate["zones"]] == ["fire_lane", "footpath"]
    assert [z["anchor"] for z in gate["zones"]] == ["overlap", "bottom_center"]  # the YAML vocabulary, as written
    assert [rule["type"] for rule in gate["rules"]] == ["exit_blocked", "intrusion"]
    assert gate["rules"][0]["dwell_seconds"] == 20


def test_crud_round_trip_on_yaml_files(cam_client: TestClient, op: dict[str, str], config_dir: Path) -> None:
    created = cam_client.put("/v1/cameras/gate-3", json=camera_body(), headers=op)
    assert created.status_code == 201, created.text
    assert created.headers["location"] == "/v1/cameras/gate-3"
    path = config_dir / "gate-3.yaml"
    text = path.read_text(encoding="utf-8")
    assert "3号门 消防通道" in text  # allow_unicode: readable, not \u escapes
    assert "polygon: [[0.1, 0.5], [0.4, 0.5], [0.4, 0.9], [0.1, 0.9]]" in text
    on_disk = load_camera_config(path)
    assert on_disk.id == "gate-3" and on_disk.rules[0].type == "exit_blocked"
    assert {c.id for c in load_camera_configs(config_dir)} == {"demo-gate", "demo-yard", "gate-3"}

    got = cam_client.get("/v1/cameras/gate-3", headers=op)
    assert got.json()["zones"][0]["polygon"] == SQUARE
    assert got.headers["etag"] == created.headers["etag"]

    body = camera_body(id="gate-3", analysis_fps=2)
    body["zones"][0]["polygon"] = [[0.2, 0.5], [0.5, 0.5], [0.5, 0.9]]
    replaced = cam_client.put("/v1/cameras/gate-3", json=body, headers=op)
    assert replaced.status_code == 200
    assert replaced.headers["etag"] != created.headers["etag"]
    assert load_camera_config(path).analysis_fps == 2
    assert cam_client.get("/v1/cameras/gate-3", headers=op).json()["zones"][0]["polygon"] == body["zones"][0]["polygon"]

    assert cam_client.delete("/v1/cameras/gate-3", headers=op).status_code == 204
    assert not path.exists()
    missing = cam_client.get("/v1/cameras/gate-3", headers=op)
    assert missing.status_code == 404 and "gate-3" in missing.json()["detail"]
    assert cam_client.delete("/v1/cameras/gate-3", headers=op).status_code == 404
    assert _files(config_dir) == ["demo-gate.yaml", "demo-yard.yaml"]  # no temp files left behind


def test_put_replaces_a_hand_written_file_found_by_id(
    cam_client: TestClient, op: dict[str, str], config_dir: Path
) -> None:
    (config_dir / "east-gate-by-hand.yml").write_text(
        yaml.safe_dump({"id": "gate-7", **camera_body()}, allow_unicode=True), encoding="utf-8"
    )
    assert cam_client.get("/v1/cameras/gate-7", headers=op).status_code == 200
    r = cam_client.put("/v1/cameras/gate-7", json=camera_body(analysis_fps=1), headers=op)
    assert r.status_code == 200  # replaced, not created
    assert _files(config_dir) == ["demo-gate.yaml", "demo-yard.yaml", "gate-7.yaml"]
    assert load_camera_config(config_dir / "gate-7.yaml").analysis_fps == 1


def _zones_only() -> dict[str, Any]:
    return {"zones": [{"name": "a", "polygon": SQUARE}], "rules": []}


INVALID: list[tuple[str, dict[str, Any], str, str]] = [
    (
        "self-intersecting polygon",
        {"zones": [{"name": "a", "polygon": [[0, 0], [1, 1], [1, 0], [0, 1]]}], "rules": []},
        "zones.0.polygon",
        "self-intersecting",
    ),
    (
        "polygon out of range",
        {"zones": [{"name": "a", "polygon": [[0, 0], [1.5, 0], [1, 1]]}]},
        "zones.0.polygon.1.0",
        "less than or equal to 1",
    ),
    ("two-point polygon", {"zones": [{"name": "a", "polygon": [[0, 0], [1, 0]]}]}, "zones.0.polygon", "at least 3"),
    (
        "closed polygon ring",
        {"zones": [{"name": "a", "polygon": [*SQUARE, SQUARE[0]]}], "rules": []},
        "zones.0.polygon",
        "polygon points 4 and 0 are identical (the polygon closes implicitly; do not repeat the first point)",
    ),
    (
        "near-zero polygon area",
        {"zones": [{"name": "a", "polygon": [[0.1, 0.1], [0.1005, 0.1], [0.1, 0.1005]]}], "rules": []},
        "zones.0.polygon",
        "polygon has (near) zero area",
    ),
    (
        "anchor outside the YAML vocabulary",
        {"zones": [{"name": "a", "polygon": SQUARE, "anchor": "box_overlap"}], "rules": []},
        "zones.0.anchor",
        "'bottom_center', 'center' or 'overlap'",
    ),
    (
        "rule names a missing zone",
        {**_zones_only(), "rules": [{"type": "intrusion", "zones": ["nowhere"]}]},
        "rules.0.zones.0",
        "'nowhere', which does not exist",
    ),
    ("unknown rule type", {**_zones_only(), "rules": [{"type": "teleport"}]}, "rules.0", "unknown rule type"),
    ("unknown field", {"colour": "red"}, "colour", "unknown field 'colour'"),
    ("missing field", {"site": None}, "site", "required field is missing"),
    ("id does not match the path", {"id": "other"}, "id", "does not match"),
    (
        "stream file outside the media roots",
        {"streams": {"detect": "no/such/clip.mp4"}},
        "streams.detect",
        "local video files must be under the media roots",
    ),
    (
        "stream file missing in a media root",
        {"streams": {"detect": str(DEFAULT_MEDIA_ROOT / "no-such-clip.mp4")}},
        "streams.detect",
        "file not found",
    ),
    ("http stream with an operator key", {"streams": {"detect": "http://cam1.example/x"}}, "streams.detect", "admin"),
    ("bad URL scheme", {"streams": {"detect": "gopher://x/y"}}, "streams.detect", "unsupported URL scheme"),
    ("fps out of range", {"analysis_fps": 0}, "analysis_fps", "greater than 0"),
]


@pytest.mark.parametrize(("case", "changes", "path", "message"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_configs_get_422_with_field_paths(
    cam_client: TestClient,
    op: dict[str, str],
    config_dir: Path,
    case: str,
    changes: dict[str, Any],
    path: str,
    message: str,
) -> None:
    body = {k: v for k, v in camera_body(**changes).items() if v is not None}
    before = {p.name: p.read_bytes() for p in config_dir.iterdir()}
    r = cam_client.put("/v1/cameras/gate-3", json=body, headers=op)
    assert r.status_code == 422, (case, r.text)
    problems = r.json()["detail"]
    assert all(set(p) == {"path", "message"} for p in problems)
    assert any(p["path"] == path and message in p["message"] for p in problems), problems
    assert {p.name: p.read_bytes() for p in config_dir.iterdir()} == before  # nothing written, no temp files


def test_label_not_provided_names_the_build_command(
    tmp_path: Path, sqlite_url: str, config_dir: Path, repo_root: Path
) -> None:
    models = tmp_path / "models"
    models.mkdir()
    for name in (f"{DEFAULT}.yaml", f"{DEFAULT}.onnx"):
        (models / name).symlink_to(built_default_models_dir() / name)
    shutil.copy(repo_root / "models" / "helmet.yaml", models / "helmet.yaml")  # a card, not built
    app = _app(tmp_path, sqlite_url, config_dir, models)
    op = auth(add_keys(store_of(app))[Role.operator])
    body = camera_body(rules=[{"type": "no_helmet", "zones": ["work_area"]}])
    with TestClient(app) as client:
        r = client.put("/v1/cameras/yard-2", json=body, headers=op)
        assert r.status_code == 422, r.text
        [problem] = r.json()["detail"]
        assert problem["path"] == "rules.0"
        assert "no_helmet" in problem["message"] and "`safewatch models build helmet`" in problem["message"]
        assert not (config_dir / "yard-2.yaml").exists()
        ok = client.put("/v1/cameras/yard-2", json=camera_body(), headers=op)  # persons and vehicles: coco has them
        assert ok.status_code == 201


def test_credentials_never_leave_and_survive_a_get_put_round_trip(
    cam_client: TestClient, op: dict[str, str], config_dir: Path
) -> None:
    body = camera_body(
        streams={"detect": "rtsp://admin:s3cret@cam5.example/sub", "record": "rtsp://u:pw9@cam5.example/main"}
    )
    put = cam_client.put("/v1/cameras/gate-3", json=body, headers=op)
    got = cam_client.get("/v1/cameras/gate-3", headers=op)
    listed = cam_client.get("/v1/cameras", headers=op)
    for r in (put, got, listed):
        assert "s3cret" not in r.text and "pw9" not in r.text
    assert got.json()["streams"] == {"detect": "rtsp://***@cam5.example/sub", "record": "rtsp://***@cam5.example/main"}

    edited = got.json()
    edited["zones"][0]["polygon"] = [[0.1, 0.5], [0.3, 0.5], [0.3, 0.8]]
    assert cam_client.put("/v1/cameras/gate-3", json=edited, headers=op).status_code == 200
    stored = load_camera_config(config_dir / "gate-3.yaml")
    assert stored.streams.detect == "rtsp://admin:s3cret@cam5.example/sub"
    assert stored.streams.record == "rtsp://u:pw9@cam5.example/main"
    assert stored.zones[0].polygon == [(0.1, 0.5), (0.3, 0.5), (0.3, 0.8)]

    changed = {**edited, "streams": {"detect": "rtsp://***@cam9.example/sub"}}  # another host: stored as given
    assert cam_client.put("/v1/cameras/gate-3", json=changed, headers=op).status_code == 200
    assert load_camera_config(config_dir / "gate-3.yaml").streams.detect == "rtsp://***@cam9.example/sub"


def test_roles_viewer_reads_operator_writes(cam_app: FastAPI, cam_client: TestClient, config_dir: Path) -> None:
    keys = add_keys(store_of(cam_app))
    viewer, operator = auth(keys[Role.viewer]), auth(keys[Role.operator])
    assert cam_client.get("/v1/cameras", headers=viewer).status_code == 200
    assert cam_client.get("/v1/cameras/demo-gate", headers=viewer).status_code == 200
    denied = cam_client.put("/v1/cameras/gate-3", json=camera_body(), headers=viewer)
    assert denied.status_code == 403 and "operator" in denied.json()["detail"]
    assert cam_client.delete("/v1/cameras/demo-gate", headers=viewer).status_code == 403
    assert cam_client.get("/v1/cameras").status_code == 401
    assert _files(config_dir) == ["demo-gate.yaml", "demo-yard.yaml"]
    assert cam_client.put("/v1/cameras/gate-3", json=camera_body(), headers=operator).status_code == 201


@pytest.mark.parametrize("bad_id", ["Gate-3", "gate.3", "gate%203", "x" * 65])
def test_invalid_ids_in_the_path_get_422(cam_client: TestClient, op: dict[str, str], bad_id: str) -> None:
    assert cam_client.get(f"/v1/cameras/{bad_id}", headers=op).status_code == 422
    assert cam_client.put(f"/v1/cameras/{bad_id}", json=camera_body(), headers=op).status_code == 422
    assert cam_client.delete(f"/v1/cameras/{bad_id}", headers=op).status_code == 422


def test_if_match_detects_lost_updates(cam_client: TestClient, op: dict[str, str], config_dir: Path) -> None:
    etag = cam_client.get("/v1/cameras/demo-gate", headers=op).headers["etag"]
    original = (config_dir / "demo-gate.yaml").read_text(encoding="utf-8")
    stale = {**op, "If-Match": '"0000"'}
    r = cam_client.put("/v1/cameras/demo-gate", json=camera_body(), headers=stale)
    assert r.status_code == 412 and "If-Match" in r.json()["detail"]
    assert cam_client.delete("/v1/cameras/demo-gate", headers=stale).status_code == 412
    assert (config_dir / "demo-gate.yaml").read_text(encoding="utf-8") == original
    fresh = cam_client.put("/v1/cameras/demo-gate", json=camera_body(), headers={**op, "If-Match": etag})
    assert fresh.status_code == 200
    created_only_if_exists = cam_client.put("/v1/cameras/new-cam", json=camera_body(), headers={**op, "If-Match": "*"})
    assert created_only_if_exists.status_code == 412


def test_hand_broken_file_is_reported_and_can_be_fixed(
    cam_client: TestClient, op: dict[str, str], config_dir: Path
) -> None:
    path = config_dir / "demo-gate.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("dwell_seconds: 20", "dwell_seconds: -5"), "utf-8")
    listed = cam_client.get("/v1/cameras", headers=op).json()
    assert [c["id"] for c in listed["items"]] == ["demo-yard"]
    assert listed["problems"][0]["file"] == "demo-gate.yaml"
    assert listed["problems"][0]["path"] == "rules.0.dwell_seconds"
    r = cam_client.get("/v1/cameras/demo-gate", headers=op)
    assert r.status_code == 409 and "rules.0.dwell_seconds" in r.json()["detail"]
    assert cam_client.put("/v1/cameras/demo-gate", json=camera_body(), headers=op).status_code == 200
    assert cam_client.get("/v1/cameras/demo-gate", headers=op).status_code == 200


def test_duplicate_ids_are_reported_and_put_leaves_one_file(
    cam_client: TestClient, op: dict[str, str], config_dir: Path
) -> None:
    shutil.copy(config_dir / "demo-gate.yaml", config_dir / "zz-copy.yaml")
    listed = cam_client.get("/v1/cameras", headers=op).json()
    assert [c["id"] for c in listed["items"]] == ["demo-gate", "demo-yard"]
    assert listed["problems"][0]["file"] == "zz-copy.yaml" and "already used" in listed["problems"][0]["message"]
    assert cam_client.put("/v1/cameras/demo-gate", json=camera_body(), headers=op).status_code == 200
    assert _files(config_dir) == ["demo-gate.yaml", "demo-yard.yaml"]


def test_put_refuses_to_overwrite_a_file_of_another_camera(
    cam_client: TestClient, op: dict[str, str], config_dir: Path
) -> None:
    shutil.move(config_dir / "demo-yard.yaml", config_dir / "gate-3.yaml")  # file name says gate-3, id demo-yard
    r = cam_client.put("/v1/cameras/gate-3", json=camera_body(), headers=op)
    assert r.status_code == 409 and "demo-yard" in r.json()["detail"]
    assert load_camera_config(config_dir / "gate-3.yaml").id == "demo-yard"


def test_stream_files_need_a_media_root(tmp_path: Path, sqlite_url: str, config_dir: Path, sample_clip: Path) -> None:
    clips = tmp_path / "clips"
    clips.mkdir()
    shutil.copy(sample_clip, clips / "gate.mp4")
    body = camera_body(streams={"detect": str(clips / "gate.mp4")})
    for i, (roots, expected) in enumerate((((), 422), ((DEFAULT_MEDIA_ROOT, clips), 201))):
        url = f"{sqlite_url}.{i}"  # a fresh store per app
        app = _app(tmp_path, url, config_dir, built_default_models_dir(), media_roots=roots)
        admin = auth(add_keys(store_of(app))[Role.admin])
        with TestClient(app) as client:
            r = client.put("/v1/cameras/gate-3", json=body, headers=admin)  # files: roots apply to admins too
            assert r.status_code == expected, r.text


def test_other_schemes_need_an_admin_key_and_operators_may_keep_them(
    cam_app: FastAPI, cam_client: TestClient, config_dir: Path
) -> None:
    keys = add_keys(store_of(cam_app))
    admin, operator = auth(keys[Role.admin]), auth(keys[Role.operator])
    hls = camera_body(streams={"detect": "https://viewer:pw7@cam1.example/live.m3u8"})
    refused = cam_client.put("/v1/cameras/gate-3", json=hls, headers=operator)
    assert refused.status_code == 422 and "https:// streams need an admin key" in refused.text
    assert not (config_dir / "gate-3.yaml").exists()
    assert cam_client.put("/v1/cameras/gate-3", json=hls, headers=admin).status_code == 201

    edited = cam_client.get("/v1/cameras/gate-3", headers=operator).json()  # the URL comes back redacted
    edited["analysis_fps"] = 2
    assert cam_client.put("/v1/cameras/gate-3", json=edited, headers=operator).status_code == 200
    stored = load_camera_config(config_dir / "gate-3.yaml")
    assert (stored.analysis_fps, stored.streams.detect) == (2, "https://viewer:pw7@cam1.example/live.m3u8")
    moved = {**edited, "streams": {"detect": "https://cam2.example/live.m3u8"}}
    assert cam_client.put("/v1/cameras/gate-3", json=moved, headers=operator).status_code == 422


def test_camera_files_are_written_owner_only(cam_client: TestClient, op: dict[str, str], config_dir: Path) -> None:
    (config_dir / "demo-gate.yaml").chmod(0o644)
    assert cam_client.put("/v1/cameras/demo-gate", json=camera_body(), headers=op).status_code == 200
    assert cam_client.put("/v1/cameras/gate-3", json=camera_body(), headers=op).status_code == 201
    for name in ("demo-gate.yaml", "gate-3.yaml"):
        assert (config_dir / name).stat().st_mode & 0o777 == 0o600, name


def test_one_put_reports_a_broken_polygon_and_an_unknown_zone_together(
    cam_client: TestClient, op: dict[str, str]
) -> None:
    bowtie = [[0.1, 0.1], [0.9, 0.9], [0.9, 0.1], [0.1, 0.9]]
    body = camera_body(
        zones=[{"name": "fire_lane", "polygon": bowtie}],
        rules=[{"type": "intrusion", "zones": ["loading_bay"]}],
    )
    r = cam_client.put("/v1/cameras/gate-3", json=body, headers=op)
    assert r.status_code == 422, r.text
    assert {p["path"]: p["message"] for p in r.json()["detail"]} == {
        "zones.0.polygon": "polygon is self-intersecting: edge 0-1 meets edge 2-3",
        "rules.0.zones.0": "rule intrusion names zone 'loading_bay', which does not exist; zones: fire_lane",
    }


def test_camera_files_are_parsed_once_per_change(
    cam_client: TestClient, op: dict[str, str], config_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GET /v1/cameras[/{id}] re-parse a file only when it changed; edits, new and removed files show at once."""
    import api.camera_store

    parsed: list[str] = []
    real = api.camera_store.load_camera_config

    def counting(path: Path, **kwargs: Any) -> Any:
        parsed.append(Path(path).name)
        return real(path, **kwargs)

    monkeypatch.setattr(api.camera_store, "load_camera_config", counting)
    for _ in range(3):
        assert [c["id"] for c in cam_client.get("/v1/cameras", headers=op).json()["items"]] == [
            "demo-gate",
            "demo-yard",
        ]
        assert cam_client.get("/v1/cameras/demo-gate", headers=op).status_code == 200
    assert sorted(parsed) == ["demo-gate.yaml", "demo-yard.yaml"]

    gate = config_dir / "demo-gate.yaml"
    gate.write_text(gate.read_text(encoding="utf-8").replace("演示 1号门", "改过的 1号门"), encoding="utf-8")
    assert cam_client.get("/v1/cameras/demo-gate", headers=op).json()["name"].startswith("改过的 1号门")
    cam_client.get("/v1/cameras", headers=op)
    assert sorted(parsed) == ["demo-gate.yaml", "demo-gate.yaml", "demo-yard.yaml"]

    (config_dir / "extra.yml").write_text(
        (config_dir / "demo-yard.yaml").read_text(encoding="utf-8").replace("id: demo-yard", "id: extra-1"),
        encoding="utf-8",
    )
    (config_dir / "broken.yaml").write_text("id: broken\nsite: s\n", encoding="utf-8")
    for _ in range(2):
        listed = cam_client.get("/v1/cameras", headers=op).json()
        assert [c["id"] for c in listed["items"]] == ["demo-gate", "demo-yard", "extra-1"]
        assert {p["file"] for p in listed["problems"]} == {"broken.yaml"}  # an invalid file is cached too
    assert parsed.count("extra.yml") == 1 and parsed.count("broken.yaml") == 1

    (config_dir / "extra.yml").unlink()
    assert [c["id"] for c in cam_client.get("/v1/cameras", headers=op).json()["items"]] == ["demo-gate", "demo-yard"]
    assert cam_client.get("/v1/cameras/extra-1", headers=op).status_code == 404
