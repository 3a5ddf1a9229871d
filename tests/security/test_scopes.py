"""Site-scoped keys against the running service: a key for `north` sees, streams, counts and changes only `north`.

Another site's incident, media, camera or frame must look exactly like one that does not exist (same status, same
message), so a scoped key cannot even learn which ids exist elsewhere.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.security.conftest import ROOT, LiveService, StartService, camera_yaml, free_port

NORTH = ("north",)
WAIT_S = 120.0


def _incident(http: httpx.Client, site: str) -> str:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        items = http.get("/v1/incidents", params={"site": site}).json()["items"]
        if items:
            return str(items[-1]["id"])
        time.sleep(1.0)
    raise AssertionError(f"no incident at site {site} within {WAIT_S:.0f} s")


@pytest.fixture(scope="module")
def incidents(two_sites: LiveService) -> dict[str, str]:
    """One real incident per site (the cameras' intrusion zones cover the sample clip's walkers)."""
    with two_sites.client(two_sites.admin_key) as http:
        return {site: _incident(http, site) for site in ("north", "south")}


@pytest.fixture
def north(two_sites: LiveService) -> Iterator[httpx.Client]:
    """An operator key scoped to north (operator: it may also handle incidents and write cameras)."""
    with two_sites.client(two_sites.key("operator", NORTH)) as http:
        yield http


Streamed = list[tuple[int, dict[str, Any]]]  # (SSE id = store event number, IncidentEvent JSON)


def _sse_events(svc: LiveService, key: str, enough: Callable[[Streamed], bool]) -> Streamed:
    """Events of the stream from the beginning (`after=0`) until `enough(events)`, the stream pauses 5 s, or 20 s."""
    events: Streamed = []
    number = -1
    deadline = time.monotonic() + 20.0
    with svc.client(key) as http, http.stream("GET", "/v1/events", params={"after": 0}, timeout=5.0) as r:
        assert r.status_code == 200
        try:
            for line in r.iter_lines():
                if line.startswith("id:"):
                    number = int(line[3:])
                elif line.startswith("data:"):
                    events.append((number, json.loads(line[5:])))
                if enough(events) or time.monotonic() > deadline:
                    break
        except httpx.ReadTimeout:
            pass
    return events


def test_lists_stats_and_cameras_show_only_its_sites(
    two_sites: LiveService, incidents: dict[str, str], north: httpx.Client
) -> None:
    items = north.get("/v1/incidents", params={"limit": 500}).json()["items"]
    assert items and {i["site"] for i in items} == {"north"}
    assert north.get("/v1/incidents", params={"site": "south"}).json()["items"] == []
    stats = north.get("/v1/stats").json()
    assert set(stats["by_site"]) == {"north"} and set(stats["by_camera"]) == {"north-1"}
    csv = north.get("/v1/stats", params={"format": "csv"}).text
    assert "north-1" in csv and "south" not in csv
    cameras = north.get("/v1/cameras").json()
    assert [c["id"] for c in cameras["items"]] == ["north-1"] and cameras["problems"] == []
    with two_sites.client(two_sites.admin_key) as admin:
        assert {c["id"] for c in admin.get("/v1/cameras").json()["items"]} == {"north-1", "south-1"}
        assert set(admin.get("/v1/stats").json()["by_site"]) == {"north", "south"}


def test_event_stream_carries_only_its_sites(two_sites: LiveService, incidents: dict[str, str]) -> None:
    with two_sites.client(two_sites.admin_key) as admin:
        south = admin.get(f"/v1/incidents/{incidents['south']}").json()["events"]
    first_south = min(e["number"] for e in south)
    # Read past the south incident's first event: a leak would have shown by then.
    scoped = _sse_events(two_sites, two_sites.key("platform", NORTH), lambda ev: bool(ev) and ev[-1][0] > first_south)
    assert scoped and scoped[-1][0] > first_south
    assert {e["site"] for _n, e in scoped} == {"north"}
    unscoped = _sse_events(two_sites, two_sites.key("platform"), lambda ev: len({e["site"] for _n, e in ev}) > 1)
    assert {e["site"] for _n, e in unscoped} == {"north", "south"}


def test_other_sites_look_like_unknown_ids(
    two_sites: LiveService, incidents: dict[str, str], north: httpx.Client
) -> None:
    south = incidents["south"]
    for suffix in ("", "/snapshot.jpg", "/clip.mp4"):
        other = north.get(f"/v1/incidents/{south}{suffix}")
        unknown = north.get(f"/v1/incidents/no-such-incident{suffix}")
        assert other.status_code == unknown.status_code == 404, suffix
        assert other.json()["detail"] == f"incident {south!r} not found", suffix
    for suffix in ("", "/frame.jpg"):
        other = north.get(f"/v1/cameras/south-1{suffix}")
        assert (other.status_code, other.json()["detail"]) == (404, "camera 'south-1' not found"), suffix
    assert north.get(f"/v1/incidents/{incidents['north']}").status_code == 200
    assert north.get("/v1/cameras/north-1").status_code == 200


def test_writes_outside_its_sites_are_404(
    two_sites: LiveService, incidents: dict[str, str], north: httpx.Client
) -> None:
    for action in ("ack", "resolve", "false-positive"):
        r = north.post(f"/v1/incidents/{incidents['south']}/{action}", json={"note": "not mine"})
        assert r.status_code == 404, action
    south_file = two_sites.config_dir / "south-1.yaml"
    before = south_file.read_bytes()
    assert north.put("/v1/cameras/south-1", json=camera_yaml("south-1", "south")).status_code == 404
    assert north.put("/v1/cameras/south-1", json=camera_yaml("south-1", "north")).status_code == 404  # take it over
    assert north.delete("/v1/cameras/south-1").status_code == 404
    assert south_file.read_bytes() == before
    # A new camera in another site, and moving its own camera there: 404, nothing written.
    assert north.put("/v1/cameras/north-9", json=camera_yaml("north-9", "south")).status_code == 404
    assert not (two_sites.config_dir / "north-9.yaml").exists()
    north_file = two_sites.config_dir / "north-1.yaml"
    before = north_file.read_bytes()
    assert north.put("/v1/cameras/north-1", json=camera_yaml("north-1", "south")).status_code == 404
    assert north_file.read_bytes() == before
    with two_sites.client(two_sites.admin_key) as admin:
        assert admin.get(f"/v1/incidents/{incidents['south']}").json()["actions"] == []


def test_writes_inside_its_sites_work_and_are_attributed(
    two_sites: LiveService, incidents: dict[str, str], north: httpx.Client
) -> None:
    created = north.put("/v1/cameras/north-9", json=camera_yaml("north-9", "north", enabled=False))
    assert created.status_code == 201, created.text
    assert north.delete("/v1/cameras/north-9").status_code == 204
    r = north.post(f"/v1/incidents/{incidents['north']}/ack", json={"actor": "someone else", "note": "seen"})
    assert r.status_code == 200, r.text
    action = r.json()["actions"][-1]
    # The client says who it is; the audit trail also names the key that really acted.
    assert (action["actor"], action["key_name"]) == ("someone else", "operator-north")
    with two_sites.client(two_sites.admin_key) as admin:
        keys = {k["name"]: k for k in admin.get("/v1/keys").json()}
    assert action["key_id"] == keys["operator-north"]["id"] and keys["operator-north"]["sites"] == ["north"]


def test_workers_and_metrics(two_sites: LiveService) -> None:
    with two_sites.client(two_sites.key("viewer", NORTH)) as http:
        workers = http.get("/v1/workers").json()
        assert workers and {c for w in workers for c in w["cameras"]} == {"north-1"}
        # /metrics labels every camera of every site: a fleet view, for keys for all sites only.
        r = http.get("/metrics")
        assert r.status_code == 403 and "requires a key for all sites" in r.json()["detail"]
    with two_sites.client(two_sites.key("viewer")) as http:
        assert {c for w in http.get("/v1/workers").json() for c in w["cameras"]} == {"north-1", "south-1"}


def test_detect_with_another_sites_camera_is_404(two_sites: LiveService) -> None:
    """`camera_id` applies that camera's zones and rules: another site's camera must not exist for a scoped key."""
    image = (ROOT / "sample_media" / "person_multi_det.jpg").read_bytes()
    with two_sites.client(two_sites.key("platform", NORTH)) as http:
        other = http.post("/v1/detect", files={"file": ("p.jpg", image)}, data={"camera_id": "south-1"})
        assert (other.status_code, other.json().get("detail")) == (404, "camera 'south-1' not found")
        mine = http.post("/v1/detect", files={"file": ("p.jpg", image)}, data={"camera_id": "north-1"})
        assert mine.status_code == 200 and mine.json()["camera_id"] == "north-1"


def test_scoped_admin_cannot_create_keys(two_sites: LiveService) -> None:
    with two_sites.client(two_sites.key("admin", NORTH)) as http:
        for body in ({"role": "viewer", "name": "v", "sites": ["north"]}, {"role": "admin", "name": "root"}):
            r = http.post("/v1/keys", json=body)
            assert r.status_code == 403 and "requires a key for all sites" in r.json()["detail"]
        assert http.get("/v1/keys").status_code == 403


@pytest.fixture
def hooks_service(start_service: StartService) -> LiveService:
    """A service with one disabled camera whose webhooks may reach loopback (nothing listens on the port used)."""
    return start_service(
        [camera_yaml("idle-1", "north", enabled=False)], {"SAFEWATCH_WEBHOOK_ALLOW_HOSTS": "127.0.0.1"}
    )


def test_scoped_admin_manages_only_webhooks_within_its_sites(hooks_service: LiveService) -> None:
    url = f"http://127.0.0.1:{free_port()}/hook"
    svc = hooks_service

    def hook(sites: list[str]) -> dict[str, Any]:
        return {"url": url, "secret": "s3cret-s3cret", "filters": {"sites": sites}}

    with svc.client(svc.admin_key) as admin:
        south = admin.post("/v1/webhooks", json=hook(["south"]))
        everywhere = admin.post("/v1/webhooks", json=hook([]))
        assert south.status_code == everywhere.status_code == 201, south.text
    with svc.client(svc.key("admin", NORTH)) as http:
        for sites in ([], ["south"], ["north", "south"]):
            r = http.post("/v1/webhooks", json=hook(sites))
            assert r.status_code == 403, sites
            assert "needs filters.sites, within those sites" in r.json()["detail"]
        mine = http.post("/v1/webhooks", json=hook(["north"]))
        assert mine.status_code == 201, mine.text
        assert [w["id"] for w in http.get("/v1/webhooks").json()] == [mine.json()["id"]]
        for other in (south.json()["id"], everywhere.json()["id"]):
            assert http.get(f"/v1/webhooks/{other}/deliveries").status_code == 404
            assert http.post(f"/v1/webhooks/{other}/redrive").status_code == 404
            assert http.delete(f"/v1/webhooks/{other}").status_code == 404
        assert http.get(f"/v1/webhooks/{mine.json()['id']}/deliveries").status_code == 200
        assert http.delete(f"/v1/webhooks/{mine.json()['id']}").status_code == 204
    with svc.client(svc.admin_key) as admin:
        assert len(admin.get("/v1/webhooks").json()) == 2


def test_last_admin_key_survives(hooks_service: LiveService) -> None:
    svc = hooks_service
    with svc.client(svc.admin_key) as admin:
        me = next(k for k in admin.get("/v1/keys").json() if k["role"] == "admin")
        r = admin.delete(f"/v1/keys/{me['id']}")
        assert r.status_code == 409 and "last admin key for all sites" in r.json()["detail"]
        assert admin.get("/v1/keys").status_code == 200
