"""Every route is protected: no key → 401, a role below the required one → 403 naming the role; keys API and CLI."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from fastapi.testclient import TestClient

from api.auth import RequireRole, Role
from api.deps import media_access
from api.routers.reports import report_access
from api.store.incidents import apply_event
from tests.api.conftest import auth, make_event, store_of

# Public on purpose: health for probes; the OpenAPI schema and its viewers (the schema is the open-source API, and
# Swagger UI must load it before a user can enter a key).
PUBLIC = {"/healthz", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", "/v1/evidence/public-key"}


def _required_role(route: APIRoute) -> Role | None:
    """The role a route requires: a `RequireRole` dependency, or `media_access` / `report_access` (a viewer key, or a
    signed link for the one incident or the one site-day; tests/security/ attacks the signed half)."""
    deps = route.dependant.dependencies
    found = {dep.call.role for dep in deps if isinstance(dep.call, RequireRole)}
    found |= {Role.viewer for dep in deps if dep.call in (media_access, report_access)}
    assert len(found) <= 1, f"{route.path}: more than one role requirement"
    return found.pop() if found else None


def _routes(app: FastAPI) -> list[tuple[str, str, Role | None]]:
    out = []
    for ctx in iter_route_contexts(app.routes):
        route = ctx.original_route
        methods = sorted(ctx.methods or [])
        role = _required_role(route) if isinstance(route, APIRoute) else None
        for method in methods:
            if method != "HEAD":
                out.append((method, str(ctx.path), role))
    return out


#: Required query parameters (a request without them is 422 before the key is looked at).
QUERIES = {"/v1/reports/daily": "?site=s1&date=2026-01-01"}


def _url(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path) + QUERIES.get(path, "")


def test_every_route_is_protected(app: FastAPI, client: TestClient, keys: dict[Role, str]) -> None:
    apply_event(store_of(app), make_event("1", 0))
    routes = _routes(app)
    assert len(routes) >= 20
    for method, path, role in routes:
        if path in PUBLIC:
            assert role is None
            assert client.request(method, _url(path)).status_code == 200, path
            continue
        assert role is not None, f"{method} {path} declares no role requirement"
        r = client.request(method, _url(path))
        assert r.status_code == 401, (method, path, r.status_code)
        assert r.headers["www-authenticate"] == "Bearer"
        r = client.request(method, _url(path), headers=auth("sw_not-a-key"))
        assert r.status_code == 401, (method, path)
        if role.rank > 0:
            below = list(Role)[role.rank - 1]
            r = client.request(method, _url(path), headers=auth(keys[below]))
            assert r.status_code == 403, (method, path)
            assert f"requires the {role.value} role" in r.json()["detail"]


@pytest.mark.parametrize(
    ("path", "role"),
    [
        ("/v1/incidents", Role.viewer),
        ("/v1/incidents/{incident_id}/ack", Role.operator),
        ("/v1/events", Role.viewer),
        ("/v1/webhooks", Role.admin),
        ("/v1/keys", Role.admin),
        ("/metrics", Role.viewer),
    ],
)
def test_role_ladder_of_key_routes(app: FastAPI, path: str, role: Role) -> None:
    assert any(p == path and r == role for _m, p, r in _routes(app))


def test_bearer_header_and_higher_roles_are_accepted(client: TestClient, keys: dict[Role, str]) -> None:
    for role in Role:
        r = client.get("/v1/incidents", headers={"Authorization": f"Bearer {keys[role]}"})
        assert r.status_code == 200, role


def test_keys_api_shows_the_key_once(client: TestClient, keys: dict[Role, str]) -> None:
    admin = auth(keys[Role.admin])
    created = client.post("/v1/keys", json={"role": "viewer", "name": "dashboard"}, headers=admin)
    assert created.status_code == 201
    body = created.json()
    assert body["key"].startswith("sw_") and body["prefix"] == body["key"][:8]
    listed = client.get("/v1/keys", headers=admin).json()
    assert len(listed) == 5 and all("key" not in k for k in listed)
    assert body["key"] not in json.dumps(listed)
    assert client.get("/v1/incidents", headers=auth(body["key"])).status_code == 200
    assert client.delete(f"/v1/keys/{body['id']}", headers=admin).status_code == 204
    assert client.get("/v1/incidents", headers=auth(body["key"])).status_code == 401
    assert client.delete(f"/v1/keys/{body['id']}", headers=admin).status_code == 404


def test_cli_creates_a_working_key(tmp_path: Path, repo_root: Path) -> None:
    env = {**os.environ, "SAFEWATCH_DATA_DIR": str(tmp_path / "d")}
    cmd = [sys.executable, "-m", "cli.main", "keys", "create", "--role", "operator", "--name", "ops"]
    out = subprocess.run(cmd, env=env, cwd=repo_root, capture_output=True, text=True, check=True)
    key = out.stdout.strip()
    assert key.startswith("sw_") and "shown only once" in out.stderr
    from api.app import create_app
    from api.settings import Settings

    with TestClient(create_app(Settings(data_dir=tmp_path / "d", webhook_dispatcher=False))) as client:
        assert client.post("/v1/incidents/x/ack", headers=auth(key)).status_code == 404
        assert client.get("/v1/keys", headers=auth(key)).status_code == 403
    bad = subprocess.run([*cmd[:-4], "--role", "root"], env=env, cwd=repo_root, capture_output=True, text=True)
    assert bad.returncode == 2 and "invalid choice" in bad.stderr


def test_keys_api_creates_scoped_keys(client: TestClient, keys: dict[Role, str]) -> None:
    admin = auth(keys[Role.admin])
    r = client.post(
        "/v1/keys", json={"role": "operator", "name": "north office", "sites": ["north", "east"]}, headers=admin
    )
    assert r.status_code == 201, r.text
    assert r.json()["sites"] == ["east", "north"]
    listed = {k["name"]: k["sites"] for k in client.get("/v1/keys", headers=admin).json()}
    assert listed["north office"] == ["east", "north"] and listed["admin-key"] is None
    # An empty list would read as "every site": refused, so a client cannot widen a key by sending nothing.
    r = client.post("/v1/keys", json={"role": "viewer", "name": "x", "sites": []}, headers=admin)
    assert r.status_code == 422


def test_scoped_admin_cannot_manage_keys(client: TestClient, keys: dict[Role, str]) -> None:
    admin = auth(keys[Role.admin])
    scoped = client.post("/v1/keys", json={"role": "admin", "name": "north admin", "sites": ["north"]}, headers=admin)
    h = auth(scoped.json()["key"])
    for method, path, body in [
        ("POST", "/v1/keys", {"role": "viewer", "name": "v", "sites": ["north"]}),
        ("GET", "/v1/keys", None),
        ("DELETE", f"/v1/keys/{scoped.json()['id']}", None),
    ]:
        r = client.request(method, path, json=body, headers=h)
        assert r.status_code == 403, (method, path)
        assert r.json()["detail"] == "this endpoint requires a key for all sites; key 'north admin' is scoped to north"


def test_last_admin_key_cannot_be_deleted(client: TestClient, keys: dict[Role, str]) -> None:
    admin = auth(keys[Role.admin])
    listed = {k["name"]: k["id"] for k in client.get("/v1/keys", headers=admin).json()}
    r = client.delete(f"/v1/keys/{listed['admin-key']}", headers=admin)  # itself, and the only admin key
    assert r.status_code == 409
    assert "last admin key for all sites" in r.json()["detail"]
    # A scoped admin key does not count: it cannot manage keys.
    client.post("/v1/keys", json={"role": "admin", "name": "north admin", "sites": ["north"]}, headers=admin)
    assert client.delete(f"/v1/keys/{listed['admin-key']}", headers=admin).status_code == 409
    second = client.post("/v1/keys", json={"role": "admin", "name": "second admin"}, headers=admin).json()
    assert client.delete(f"/v1/keys/{listed['admin-key']}", headers=admin).status_code == 204  # itself: allowed now
    assert client.get("/v1/keys", headers=admin).status_code == 401
    r = client.delete(f"/v1/keys/{second['id']}", headers=auth(second["key"]))
    assert r.status_code == 409
    assert client.get("/v1/keys", headers=auth(second["key"])).status_code == 200
