"""`POST/GET/DELETE /v1/models` on the app (embedded catalogue): real uploads of a real ONNX model, refusals with
their reasons, and deletion refused while a camera runs or pins a version."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import Role
from tests.api.conftest import add_keys, auth, make_settings, store_of
from vision.detect.model_store import file_sha256

NAME = "coco-yolov3-tiny"


@pytest.fixture
def http(tmp_path: pathlib.Path, sqlite_url: str) -> Iterator[tuple[TestClient, dict[Role, str]]]:
    settings = make_settings(tmp_path, sqlite_url, max_model_bytes=40 * 1024 * 1024)
    (tmp_path / "cameras").mkdir()
    app = create_app(settings)
    with TestClient(app) as client:
        yield client, add_keys(store_of(app))


def _push(client: TestClient, key: str, onnx: bytes, card: str, **fields: str) -> tuple[int, dict[str, Any]]:
    files = {
        "file": ("model.onnx", onnx, "application/octet-stream"),
        "card": ("card.yaml", card.encode(), "text/yaml"),
    }
    r = client.post("/v1/models", files=files, data=fields, headers=auth(key))
    return r.status_code, r.json()


def test_push_list_and_delete(
    http: tuple[TestClient, dict[Role, str]], coco_v2: pathlib.Path, coco_card_text: str, tmp_path: pathlib.Path
) -> None:
    client, keys = http
    sha = file_sha256(coco_v2)
    code, body = _push(client, keys[Role.admin], coco_v2.read_bytes(), coco_card_text, sha256=sha)
    assert code == 201, body
    assert body["name"] == NAME and [v["sha256"] for v in body["versions"]] == [sha]
    assert body["shipped_sha256"] == yaml.safe_load((pathlib.Path("models") / f"{NAME}.yaml").read_text())["sha256"]
    store = tmp_path / "data" / "media" / "models"
    assert file_sha256(store / f"{sha}.onnx") == sha and (store / f"{sha}.yaml").is_file()
    assert not list(store.glob(".upload-*"))  # the temporary upload is gone
    listed = client.get("/v1/models", headers=auth(keys[Role.viewer])).json()
    assert [(m["name"], m["versions"][0]["provides"]) for m in listed] == [
        (NAME, ["bicycle", "bus", "car", "motorcycle", "person", "truck"])
    ]
    assert _push(client, keys[Role.operator], b"x", coco_card_text)[0] == 403

    catalog = client.app.state.ctx.models  # type: ignore[attr-defined]
    catalog.report("gate-1", "worker-a", {NAME: sha})  # what a worker running it reports
    r = client.delete(f"/v1/models/{NAME}", headers=auth(keys[Role.admin]))
    assert r.status_code == 409 and "gate-1" in r.json()["detail"]
    assert client.get("/v1/models", headers=auth(keys[Role.viewer])).json()[0]["versions"][0]["cameras"] == ["gate-1"]
    catalog.report("gate-1", "worker-a", {})
    pinned = {"id": "pinned", "site": "s", "name": "p", "streams": {"detect": "sample_media/vtest.mp4"},
              "models": {NAME: sha[:8]}}  # fmt: skip
    (tmp_path / "cameras" / "pinned.yaml").write_text(yaml.safe_dump(pinned))
    r = client.delete(f"/v1/models/{NAME}", headers=auth(keys[Role.admin]))
    assert r.status_code == 409 and "pinned" in r.json()["detail"]
    (tmp_path / "cameras" / "pinned.yaml").unlink()
    assert client.delete(f"/v1/models/{NAME}", headers=auth(keys[Role.admin])).status_code == 204
    assert client.get("/v1/models", headers=auth(keys[Role.viewer])).json() == []
    assert not (store / f"{sha}.onnx").exists()
    assert client.delete(f"/v1/models/{NAME}", headers=auth(keys[Role.admin])).status_code == 404


@pytest.mark.parametrize(
    ("case", "status", "reason"),
    [
        ("corrupt", 422, "not a loadable ONNX model"),
        ("sha", 422, "sha256 mismatch: the request says"),
        ("classes", 422, "output has 80 classes but 2 class names"),
        ("card", 422, "invalid model card"),
        ("no-card", 422, "missing form field `card`"),
        ("json", 415, "multipart/form-data"),
        ("oversize", 413, "the limit is 41943040 bytes"),
    ],
)
def test_bad_uploads_are_refused_with_a_reason(
    http: tuple[TestClient, dict[Role, str]], coco_v2: pathlib.Path, coco_card_text: str, case: str, status: int,
    reason: str,
) -> None:  # fmt: skip
    client, keys = http
    data, card, fields = coco_v2.read_bytes(), coco_card_text, {}
    if case == "corrupt":
        data = data[: len(data) // 2]
    elif case == "sha":
        fields = {"sha256": "0" * 64}
    elif case == "classes":
        card = coco_card_text.replace("class_names: from metadata", "class_names: [person, bicycle]")
        card = yaml.safe_dump({**yaml.safe_load(card), "labels": {"person": "person"}})
    elif case == "card":
        card = "name: [unclosed"
    elif case == "oversize":
        data = data + b"\0" * (41943040 - len(data) + 1)
    headers = auth(keys[Role.admin])
    if case == "no-card":
        r = client.post("/v1/models", files={"file": ("m.onnx", data)}, headers=headers)
    elif case == "json":
        r = client.post("/v1/models", json={"file": "x"}, headers=headers)
    else:
        code, body = _push(client, keys[Role.admin], data, card, **fields)
        assert (code, reason in str(body["detail"])) == (status, True), body
        assert client.get("/v1/models", headers=headers).json() == []
        return
    assert (r.status_code, reason in r.json()["detail"]) == (status, True), r.json()
