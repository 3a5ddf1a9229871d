"""Every route × every role × a key for all sites or one scoped to `north`, against the running service.

`TABLE` holds one row per route of the OpenAPI document, method by method (the media routes' HEAD too; a new route
without a row fails `test_every_route_has_a_row`): the least role it needs, the status a key that may use it gets,
and what a key scoped to `north` gets for a `south` target (404: it must not learn that the thing exists) or for a
fleet-wide route (403).
Requests are built so that the answer does not depend on what ran before: handling goes to incidents that are already
resolved (409), camera writes carry a stale `If-Match` (412), deletions get a fresh key or webhook each time.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from api.store import outbox, reports
from api.store.db import Store
from tests.security.conftest import ROOT, LiveService, camera_yaml

ROLES = ("none", "viewer", "operator", "platform", "admin")
SCOPE = ("north",)
SITES = ("north", "south")
CAMERAS = {"north": "north-1", "south": "south-1"}
HOOK_URL = "http://127.0.0.1:9/hook"  # loopback discard port: nothing listens, nothing leaves the machine
SEED_TIMEOUT_S = 180.0


@dataclass(frozen=True)
class Row:
    role: str | None  # the least role; None: public
    ok: int  # status for a key that may use the route (a scoped key: on its own site)
    south: int | None = None  # status for a key scoped to north on the south target (None: same as `ok`)
    all_sites: bool = False  # fleet-wide: a scoped key gets 403


INCIDENT = "/v1/incidents/{incident_id}"
WEBHOOK = "/v1/webhooks/{webhook_id}"
SITE_MAP = "/v1/sites/{site}/map"
REPORT_SUBSCRIPTION = "/v1/reports/subscriptions/{subscription_id}"
TABLE: dict[tuple[str, str], Row] = {
    ("GET", "/healthz"): Row(None, 200),
    ("GET", "/metrics"): Row("viewer", 200, all_sites=True),
    ("GET", "/v1/cameras"): Row("viewer", 200),
    ("GET", "/v1/cameras/{camera_id}"): Row("viewer", 200, south=404),
    ("PUT", "/v1/cameras/{camera_id}"): Row("operator", 412, south=404),
    ("DELETE", "/v1/cameras/{camera_id}"): Row("operator", 412, south=404),
    ("GET", "/v1/cameras/{camera_id}/frame.jpg"): Row("operator", 200, south=404),
    ("HEAD", "/v1/cameras/{camera_id}/frame.jpg"): Row("operator", 200, south=404),
    ("POST", "/v1/detect"): Row("platform", 200),
    ("GET", "/v1/evidence/public-key"): Row(None, 200),  # public: verifying evidence needs it, and it is no secret
    ("GET", "/v1/evidence/checkpoints"): Row("viewer", 200, all_sites=True),  # heads name every site's incidents
    ("GET", "/v1/events"): Row("viewer", 200),
    ("GET", "/v1/incidents"): Row("viewer", 200),
    ("GET", INCIDENT): Row("viewer", 200, south=404),
    ("GET", INCIDENT + "/snapshot.jpg"): Row("viewer", 200, south=404),
    ("HEAD", INCIDENT + "/snapshot.jpg"): Row("viewer", 200, south=404),
    ("GET", INCIDENT + "/clip.mp4"): Row("viewer", 200, south=404),
    ("HEAD", INCIDENT + "/clip.mp4"): Row("viewer", 200, south=404),
    ("GET", INCIDENT + "/clips/{index}.mp4"): Row("viewer", 200, south=404),
    ("HEAD", INCIDENT + "/clips/{index}.mp4"): Row("viewer", 200, south=404),
    ("GET", INCIDENT + "/evidence.zip"): Row("operator", 200, south=404),  # the seeded incidents are closed
    ("POST", INCIDENT + "/ack"): Row("operator", 409, south=404),
    ("POST", INCIDENT + "/resolve"): Row("operator", 409, south=404),
    ("POST", INCIDENT + "/false-positive"): Row("operator", 409, south=404),
    ("POST", "/v1/keys"): Row("admin", 201, all_sites=True),
    ("GET", "/v1/keys"): Row("admin", 200, all_sites=True),
    ("DELETE", "/v1/keys/{key_id}"): Row("admin", 204, all_sites=True),
    ("GET", "/v1/stats"): Row("viewer", 200),
    ("POST", "/v1/webhooks"): Row("admin", 422),  # an invalid body: the scoped-admin rule is in test_scopes.py
    ("GET", "/v1/webhooks"): Row("admin", 200),
    ("DELETE", WEBHOOK): Row("admin", 204, south=404),
    ("PATCH", WEBHOOK): Row("admin", 200, south=404),
    ("GET", WEBHOOK + "/deliveries"): Row("admin", 200, south=404),
    ("POST", WEBHOOK + "/deliveries/{delivery_id}/redrive"): Row("admin", 404),  # no such dead letter
    ("POST", WEBHOOK + "/redrive"): Row("admin", 200, south=404),
    ("GET", "/v1/workers"): Row("viewer", 200),
    ("POST", "/v1/models"): Row("admin", 415, all_sites=True),  # no multipart body; uploads: tests/api/routers
    ("GET", "/v1/models"): Row("viewer", 200, all_sites=True),  # fleet-wide: which cameras run which version
    ("DELETE", "/v1/models/{name}"): Row("admin", 404, all_sites=True),  # no such pushed model
    ("GET", "/v1/sites"): Row("viewer", 200),
    ("GET", SITE_MAP): Row("viewer", 200, south=404),
    ("PUT", SITE_MAP): Row("operator", 200, south=404),  # no markers: the same map every time
    ("GET", SITE_MAP + "/image"): Row("viewer", 200, south=404),  # `seeded` stores a plan per site
    ("PUT", SITE_MAP + "/image"): Row("operator", 200, south=404),  # the site's camera's current picture
    ("GET", "/ui/i/{incident_id}"): Row("viewer", 200, south=404),  # the mobile incident page
    ("GET", "/v1/reports/daily"): Row("viewer", 200, south=404),  # ?site=<target>&date=…
    ("POST", "/v1/reports/subscriptions"): Row("admin", 422),  # an invalid body (short secret)
    ("GET", "/v1/reports/subscriptions"): Row("admin", 200),
    ("DELETE", REPORT_SUBSCRIPTION): Row("admin", 204, south=404),
}
# What a signed link (`?exp=…&sig=…` for the target incident, no key) opens: these; every other route answers it as
# it answers no key at all.
SIGNED = {INCIDENT + "/snapshot.jpg", INCIDENT + "/clip.mp4", INCIDENT + "/clips/{index}.mp4", "/ui/i/{incident_id}"}
# The daily report opens with a signed link too, but only with a report's signature: an incident's is refused (403).
REPORT_SIGNED = {"/v1/reports/daily"}
# Public and outside the OpenAPI document: its viewers and the web UI's static files.
PUBLIC_PAGES = ("/openapi.json", "/docs", "/redoc", "/ui/")


def expected(row: Row, role: str, scoped: bool, target: str) -> int:
    if row.role is None:
        return row.ok
    if role == "none":
        return 401
    if ROLES.index(role) < ROLES.index(row.role):
        return 403
    if scoped and row.all_sites:
        return 403
    if scoped and target == "south" and row.south is not None:
        return row.south
    return row.ok


@dataclass
class Seeded:
    svc: LiveService
    incidents: dict[str, str]  # site → a resolved incident with snapshot and clip
    store: Store  # the service's store: webhooks are added to it directly (the URL checks are not under test here)
    webhooks: dict[str, str] = field(default_factory=dict)

    def webhook(self, site: str, *, fresh: bool) -> str:
        """A subscription filtered to `site`: a new one when the request deletes it, else one kept per site."""
        if fresh or site not in self.webhooks:
            with self.store.session() as session:
                filters = {"sites": [site], "cameras": [], "rules": []}
                row = outbox.create_webhook(session, url=HOOK_URL, secret="matrix-secret", fmt="json", filters=filters)
                hook_id = row.id
            if fresh:
                return hook_id
            self.webhooks[site] = hook_id
        return self.webhooks[site]


def _wait_for_evidence(http: httpx.Client, site: str) -> str:
    """The oldest closed incident of `site` (its manifest is written: it can be exported) once its snapshot and first
    clip are on disk."""
    deadline = time.monotonic() + SEED_TIMEOUT_S
    while time.monotonic() < deadline:
        items = http.get("/v1/incidents", params={"site": site, "status": "closed"}).json()["items"]
        if items:
            incident = items[-1]["id"]
            media = [
                http.get(f"/v1/incidents/{incident}/{m}", headers={"Range": "bytes=0-0"}).status_code
                for m in ("snapshot.jpg", "clip.mp4")
            ]
            if media == [206, 206]:
                return str(incident)
        time.sleep(1.0)
    raise AssertionError(f"no incident with a snapshot and a clip at site {site} within {SEED_TIMEOUT_S:.0f} s")


@pytest.fixture(scope="module")
def seeded(two_sites: LiveService) -> Iterator[Seeded]:
    with two_sites.client(two_sites.admin_key) as http:
        incidents = {site: _wait_for_evidence(http, site) for site in SITES}
        for incident in incidents.values():
            assert http.post(f"/v1/incidents/{incident}/resolve", json={"note": "matrix"}).status_code == 200
        for site, camera in CAMERAS.items():  # a plan per site (GET …/map/image)
            r = http.put(f"/v1/sites/{site}/map/image", params={"from_camera": camera})
            assert r.status_code == 200, r.text
    store = Store(f"sqlite:///{(two_sites.data_dir / 'safewatch.db').as_posix()}", run_migrations=False)
    try:
        yield Seeded(two_sites, incidents, store)
    finally:
        store.dispose()


def _request(seeded: Seeded, method: str, path: str, target: str) -> dict[str, Any]:
    """The request for `path` aimed at `target`'s incident, camera or webhook (fresh ones where it deletes)."""
    svc = seeded.svc
    params = {
        "incident_id": seeded.incidents[target],
        "camera_id": CAMERAS[target],
        "webhook_id": seeded.webhook(target, fresh=method == "DELETE") if "{webhook_id}" in path else "",
        "delivery_id": "999999999",
        "index": "0",  # the first clip: every seeded incident has one
        "key_id": "",
        "name": "no-such-model",  # DELETE /v1/models/{name}
        "site": target,
    }
    if "{subscription_id}" in path:
        params["subscription_id"] = _report_subscription(seeded, target)
    if "{key_id}" in path:
        with svc.client(svc.admin_key) as http:
            params["key_id"] = http.post("/v1/keys", json={"role": "viewer", "name": "doomed"}).json()["id"]
    out: dict[str, Any] = {"method": method, "url": path.format(**params)}
    if path == "/v1/cameras/{camera_id}":
        out["headers"] = {"If-Match": '"stale"'}
        if method == "PUT":
            out["json"] = camera_yaml(CAMERAS[target], target)
    elif path == "/v1/detect":
        out["files"] = {"file": ("people.jpg", (ROOT / "sample_media" / "person_multi_det.jpg").read_bytes())}
    elif path == "/v1/keys" and method == "POST":
        out["json"] = {"role": "viewer", "name": "matrix"}
    elif path == WEBHOOK and method == "PATCH":
        out["json"] = {"language": "en"}
    elif path == SITE_MAP and method == "PUT":
        out["json"] = {"markers": []}
    elif path == SITE_MAP + "/image" and method == "PUT":
        out["params"] = {"from_camera": CAMERAS[target]}
    elif path == "/v1/reports/daily":
        out["url"] += f"?site={target}&date=2026-01-01"
    elif path == "/v1/reports/subscriptions" and method == "POST":
        out["json"] = {"site": target, "url": HOOK_URL, "secret": "short"}
    elif path == "/v1/webhooks" and method == "POST":
        out["json"] = {"url": HOOK_URL, "secret": "short", "filters": {"sites": ["north"]}}
    return out


def _report_subscription(seeded: Seeded, site: str) -> str:
    """A fresh daily digest subscription of `site` (each DELETE gets its own)."""
    with seeded.store.session() as session:
        row = reports.create_subscription(
            session,
            site=site,
            url=HOOK_URL,
            secret="matrix-secret",
            fmt="dingtalk",
            local_time="08:00",
            timezone="UTC",
            language="zh",
            last_sent_date=None,
        )
        return row.id


def _status(http: httpx.Client, request: dict[str, Any]) -> int:
    if request["url"] == "/v1/events":  # a stream: the status line is all we wait for
        with http.stream(request["method"], request["url"], timeout=10.0) as r:
            return r.status_code
    return http.request(**request).status_code


def _keys(svc: LiveService) -> list[tuple[str, bool, str | None]]:
    out: list[tuple[str, bool, str | None]] = [("none", False, None)]
    for role in ROLES[1:]:
        out += [(role, False, svc.key(role)), (role, True, svc.key(role, SCOPE))]
    return out


def test_every_route_has_a_row(seeded: Seeded) -> None:
    with seeded.svc.client() as http:
        spec = http.get("/openapi.json").json()
    routes = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    assert routes == set(TABLE), f"add a row for {sorted(routes - set(TABLE))}; drop {sorted(set(TABLE) - routes)}"


@pytest.mark.parametrize(("method", "path"), sorted(TABLE), ids=[f"{m} {p}" for m, p in sorted(TABLE)])
def test_route_status(seeded: Seeded, method: str, path: str) -> None:
    row = TABLE[(method, path)]
    got, want = {}, {}
    for role, scoped, key in _keys(seeded.svc):
        for target in SITES:
            with seeded.svc.client(key) as http:
                got[(role, scoped, target)] = _status(http, _request(seeded, method, path, target))
            want[(role, scoped, target)] = expected(row, role, scoped, target)
    assert got == want


def _signature(seeded: Seeded, target: str) -> str:
    """`exp=…&sig=…` of `target`'s incident, as the API hands it out."""
    with seeded.svc.client(seeded.svc.admin_key) as http:
        url = http.get(f"/v1/incidents/{seeded.incidents[target]}").json()["snapshot_url"]
    return str(url).split("?", 1)[1]


def test_a_signed_link_opens_only_its_incidents_media(seeded: Seeded) -> None:
    got, want = {}, {}
    signatures = {site: _signature(seeded, site) for site in SITES}
    for method, path in sorted(TABLE):
        for target in SITES:
            request = _request(seeded, method, path, target)
            request["url"] += ("&" if "?" in request["url"] else "?") + signatures[target]
            with seeded.svc.client() as http:
                got[(method, path, target)] = _status(http, request)
            want[(method, path, target)] = (
                200
                if path in SIGNED
                else 403
                if path in REPORT_SIGNED
                else expected(TABLE[(method, path)], "none", False, target)
            )
    assert got == want


def test_public_pages(seeded: Seeded) -> None:
    for role, _scoped, key in _keys(seeded.svc):
        with seeded.svc.client(key) as http:
            for page in PUBLIC_PAGES:
                assert http.get(page).status_code == 200, (role, page)
