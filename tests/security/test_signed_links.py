"""Issue 15, item 2: signed media links (`?exp=…&sig=…`) against a running `safewatch run`.

A signed link opens exactly one incident's media and mobile page without a key; a tampered signature, another
incident's signature, an expired link (signed with the real key: the test sets `SAFEWATCH_LINK_KEY`), an incomplete
one or one moved to a longer life get 403; a signature on any other route opens nothing (401 without a key). The link
key never reaches the log, and a configured key leaves no key file behind.
"""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from api.media_links import KEY_FILE, LinkSigner
from tests.security.conftest import StartService, camera_yaml

pytestmark = pytest.mark.timeout(300)
LINK_KEY = "f0e1d2c3b4a5968778695a4b3c2d1e0f" * 2  # 64 hex digits
MEDIA = ("snapshot.jpg", "clip.mp4", "clips/0.mp4")


def _incident_with_media(http: httpx.Client, site: str, timeout: float = 180.0) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for item in http.get("/v1/incidents", params={"site": site}).json()["items"]:
            if item["snapshot_url"] and item["clip_url"]:
                clip = urlsplit(item["clip_url"])
                if http.get(f"{clip.path}?{clip.query}", headers={"Range": "bytes=0-0"}).status_code == 206:
                    return {"id": item["id"], "snapshot": item["snapshot_url"], "clip": item["clip_url"]}
        time.sleep(1.0)
    raise AssertionError(f"no incident with a snapshot and a clip at {site} within {timeout:.0f} s")


def test_signed_links_open_one_incident_and_nothing_else(start_service: StartService) -> None:
    svc = start_service(
        [camera_yaml("north-1", "north"), camera_yaml("south-1", "south")],
        env={"SAFEWATCH_LINK_KEY": LINK_KEY, "SAFEWATCH_LINK_TTL_S": "3600"},
    )
    with svc.client(svc.key("viewer", ("north",))) as viewer:
        north = _incident_with_media(viewer, "north")
    with svc.client(svc.admin_key) as admin:
        south = _incident_with_media(admin, "south")
    signer = LinkSigner(LINK_KEY.encode(), 3600)
    now = time.time()
    query = {k: v[0] for k, v in parse_qs(urlsplit(north["snapshot"]).query).items()}
    exp = int(query["exp"])
    assert now + 3600 <= exp <= now + 3600 + 150 + 5 and query["sig"] == signer.signature(north["id"], exp)

    def get(path: str, q: str, method: str = "GET") -> int:
        with svc.client() as anonymous:
            return anonymous.request(method, f"{path}?{q}" if q else path).status_code

    good = f"exp={exp}&sig={query['sig']}"
    routes = [f"/v1/incidents/{north['id']}/{m}" for m in MEDIA] + [f"/ui/i/{north['id']}"]
    for route in routes:
        assert get(route, good) == 200, route
        assert get(route, "") == 401, route
    assert get(routes[0], good, "HEAD") == 200 and get(routes[1], good, "HEAD") == 200

    flipped = query["sig"][:-1] + ("A" if query["sig"][-1] != "A" else "B")
    expired_at = int(now) - 1
    attacks = {
        "tampered": f"exp={exp}&sig={flipped}",
        "other incident's": f"exp={exp}&sig={signer.signature(south['id'], exp)}",
        "longer life": f"exp={exp + 86400}&sig={query['sig']}",
        "expired": f"exp={expired_at}&sig={signer.signature(north['id'], expired_at)}",
        "another key": f"exp={exp}&sig={LinkSigner(b'k' * 32, 3600).signature(north['id'], exp)}",
        "no sig": f"exp={exp}",
        "no exp": f"sig={query['sig']}",
        "empty sig": f"exp={exp}&sig=",
    }
    for name, attack in attacks.items():
        for route in routes:
            assert get(route, attack) == 403, (name, route)
    for media in MEDIA:  # north's signature on south's incident
        assert get(f"/v1/incidents/{south['id']}/{media}", good) == 403

    # a signature opens no other route, not even the same incident's detail or its handling
    others = [
        ("GET", f"/v1/incidents/{north['id']}"),
        ("GET", "/v1/incidents"),
        ("GET", "/v1/stats"),
        ("GET", "/v1/cameras"),
        ("GET", "/v1/cameras/north-1/frame.jpg"),
        ("GET", "/v1/workers"),
        ("GET", "/v1/webhooks"),
        ("GET", "/v1/keys"),
        ("GET", "/metrics"),
        ("POST", f"/v1/incidents/{north['id']}/ack"),
        ("POST", f"/v1/incidents/{north['id']}/resolve"),
        ("POST", f"/v1/incidents/{north['id']}/false-positive"),
    ]
    for method, path in others:
        assert get(path, good, method) == 401, (method, path)

    svc.stop()
    assert LINK_KEY not in svc.log() and query["sig"] not in svc.log()
    assert not (svc.data_dir / KEY_FILE).exists()
