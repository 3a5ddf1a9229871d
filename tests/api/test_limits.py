"""Request bodies over 1 MiB get 413 with the API's problem shape, by Content-Length or by counting a chunked body;
POST /v1/detect keeps its own (larger) upload limit."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image

from api.app import create_app
from api.auth import Role
from api.limits import MAX_BODY_BYTES
from tests.api.conftest import add_keys, auth, make_settings, store_of
from tests.vision.detect.helpers import built_default_models_dir

BIG = b'{"name": "' + b"x" * (2 * MAX_BODY_BYTES) + b'"}'


@pytest.fixture
def app(tmp_path: Path, sqlite_url: str) -> FastAPI:
    return create_app(
        make_settings(tmp_path, sqlite_url, models_dir=built_default_models_dir(), webhook_dispatcher=False)
    )


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


@pytest.fixture
def keys(app: FastAPI) -> dict[Role, str]:
    return add_keys(store_of(app))


def _chunks(data: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def _refused(r: object) -> None:
    assert getattr(r, "status_code", None) == 413, getattr(r, "text", r)
    body = r.json()  # type: ignore[attr-defined]
    assert set(body) == {"detail"} and "request body too large" in body["detail"]


def test_a_2_mib_json_body_is_refused_by_its_content_length(client: TestClient, keys: dict[Role, str]) -> None:
    headers = {**auth(keys[Role.admin]), "Content-Type": "application/json"}
    _refused(client.put("/v1/cameras/x", content=BIG, headers=headers))
    _refused(client.put("/v1/cameras/x", content=BIG))  # before authentication: no key needed to be refused


def test_a_chunked_2_mib_body_is_refused_while_it_streams(client: TestClient, keys: dict[Role, str]) -> None:
    headers = {**auth(keys[Role.admin]), "Content-Type": "application/json"}
    r = client.put("/v1/cameras/x", content=_chunks(BIG), headers=headers)
    assert r.request.headers.get("transfer-encoding") == "chunked" and "content-length" not in r.request.headers
    _refused(r)


def test_bodies_within_the_limit_pass_chunked_or_not(client: TestClient, keys: dict[Role, str]) -> None:
    headers = {**auth(keys[Role.operator]), "Content-Type": "application/json"}
    body = b'{"site": "s", "name": "n", "streams": {"detect": "rtsp://cam1.example/live"}, "notes": "'
    body += b"y" * (MAX_BODY_BYTES - len(body) - 2) + b'"}'
    assert len(body) == MAX_BODY_BYTES
    for content in (body, _chunks(body)):
        r = client.put("/v1/cameras/x", content=content, headers=headers)
        assert r.status_code == 422, r.text  # read and validated: "notes" is not a camera field
        assert any(p["path"] == "notes" for p in r.json()["detail"])
    r = client.post("/v1/keys", json={"role": "viewer", "name": "small"}, headers=auth(keys[Role.admin]))
    assert r.status_code == 201, r.text


def test_detect_uploads_keep_their_own_limit(client: TestClient, keys: dict[Role, str]) -> None:
    noise = np.random.default_rng(0).integers(0, 256, (900, 900, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, format="PNG")
    assert buffer.tell() > 2 * MAX_BODY_BYTES
    files = {"file": ("noise.png", buffer.getvalue(), "image/png")}
    r = client.post("/v1/detect", files=files, headers=auth(keys[Role.platform]))
    assert r.status_code == 200, r.text
    assert "detections" in r.json()


def test_every_operation_with_a_body_documents_413(app: FastAPI) -> None:
    """The OpenAPI document says what the body limit answers, on every operation that takes a body."""
    schema = app.openapi()
    with_body = [
        (path, method, op)
        for path, operations in schema["paths"].items()
        for method, op in operations.items()
        if "requestBody" in op
    ]
    assert len(with_body) >= 5  # cameras, keys, webhooks, handling, detect
    for path, method, op in with_body:
        too_large = op["responses"].get("413")
        assert too_large is not None, f"{method.upper()} {path} does not document 413"
        assert too_large["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Problem"}
    assert "detail" in schema["components"]["schemas"]["Problem"]["properties"]
