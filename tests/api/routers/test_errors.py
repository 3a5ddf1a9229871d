"""Every 4xx has a documented problem shape; a 405 lists every method of the path; dates are ISO 8601 only."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.auth import Role
from tests.api.conftest import auth


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/v1/incidents/x/ack"), ("POST", "/v1/keys"), ("POST", "/v1/webhooks"), ("PUT", "/v1/cameras/c1")],
)
@pytest.mark.parametrize("body", [b"{bad", b"\xff\xfe"])
def test_malformed_json_is_a_422_field_problem(
    client: TestClient, keys: dict[Role, str], method: str, path: str, body: bytes
) -> None:
    headers = {**auth(keys[Role.admin]), "Content-Type": "application/json"}
    r = client.request(method, path, content=body, headers=headers)
    assert r.status_code == 422
    [problem] = r.json()["detail"]
    assert problem["path"] == "body" and problem["message"]


def test_request_validation_uses_field_problems(client: TestClient, keys: dict[Role, str]) -> None:
    r = client.put("/v1/cameras/0.5", json={}, headers=auth(keys[Role.admin]))
    assert r.status_code == 422
    assert r.json() == {
        "detail": [{"path": "path.camera_id", "message": "String should match pattern '^[a-z0-9_-]+$'"}]
    }
    schema = client.get("/openapi.json").json()
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    ref = schema["paths"]["/v1/keys"]["post"]["responses"]["422"]["content"]["application/json"]["schema"]["$ref"]
    assert ref == "#/components/schemas/ValidationProblems"


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("OPTIONS", "/v1/cameras/c1", "GET, PUT, DELETE"),
        ("PATCH", "/v1/keys", "GET, POST"),
        ("OPTIONS", "/v1/webhooks", "GET, POST"),
        ("GET", "/v1/incidents/x/ack", "POST"),
    ],
)
def test_405_allows_every_method_of_the_path(
    client: TestClient, keys: dict[Role, str], method: str, path: str, allow: str
) -> None:
    r = client.request(method, path, headers=auth(keys[Role.admin]))
    assert r.status_code == 405
    assert r.headers["allow"] == allow
    assert r.json() == {"detail": "Method Not Allowed"}


@pytest.mark.parametrize("value", ["0", "1700000000", "0.5", "-3", "1e9"])
def test_since_until_refuse_numbers(client: TestClient, keys: dict[Role, str], value: str) -> None:
    for name in ("since", "until"):
        r = client.get(f"/v1/incidents?{name}={value}", headers=auth(keys[Role.viewer]))
        assert r.status_code == 422, (name, value)
        assert r.json()["detail"][0]["path"] == f"query.{name}"
    assert client.get("/v1/incidents?since=2025-03-01T08:00:00Z", headers=auth(keys[Role.viewer])).status_code == 200
