"""Signed media links and the mobile incident page `/ui/i/{id}`, through the app (TestClient).

A signed link (`?exp=…&sig=…`) opens one incident's media and page without a key; tampered, expired, another
incident's or incomplete ones get 403; every other route ignores a signature; the list, the detail and the webhook
formats hand out signed links. The incident has real evidence: a snapshot (the sample clip's first frame) and a clip
cut from the sample clip by the project's clip writer.
"""

from __future__ import annotations

import json
import re
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import Role
from api.links import MediaLinks
from api.media_links import KEY_FILE, LinkRefused, LinkSigner, link_signer
from api.settings import Settings
from api.webhooks.formats import render
from pipelines.events import IncidentEvent
from tests.api.conftest import add_keys, auth, make_event, make_settings, store_of
from tests.api.media_seed import seed_incident

BASE = "http://safewatch.test"


@dataclass
class Seeded:
    http: TestClient
    keys: dict[Role, str]
    settings: Settings
    signer: LinkSigner


@pytest.fixture
def seeded(tmp_path: Path, sqlite_url: str, sample_clip: Path) -> Iterator[Seeded]:
    settings = make_settings(tmp_path, sqlite_url, webhook_dispatcher=False)
    app = create_app(settings)
    keys = add_keys(store_of(app))
    for incident in ("inc-m", "inc-other"):
        seed_incident(store_of(app), settings.media_dir, sample_clip, incident)
    with TestClient(app) as http:
        yield Seeded(http, keys, settings, link_signer(settings))


def _query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def test_signer_round_trip_and_refusals() -> None:
    signer = LinkSigner(b"k" * 32, 3600)
    exp = signer.expiry(1_000_000.0)
    assert 1_000_000 + 3600 <= exp < 1_000_000 + 3600 + 150 and exp % 150 == 0  # step: 1/24 of the lifetime
    sig = signer.signature("inc-1", exp)
    signer.check("inc-1", exp, sig, now=exp - 1)
    refused = [
        ("inc-2", exp, sig, exp - 1),  # another incident
        ("inc-1", exp + 1, sig, exp - 1),  # a longer expiry
        ("inc-1", exp, sig[:-1] + ("A" if sig[-1] != "A" else "B"), exp - 1),  # tampered
        ("inc-1", exp, sig, exp + 1),  # expired
        ("inc-1", None, sig, 0.0),
        ("inc-1", exp, "", 0.0),
    ]
    for incident, e, s, now in refused:
        with pytest.raises(LinkRefused, match=r"signature|expired|needs both"):
            signer.check(incident, e, s, now=now)
    assert LinkSigner(b"x" * 32, 3600).signature("inc-1", exp) != sig  # another key
    assert "k" * 32 not in repr(signer)


def test_a_random_key_is_kept_private_in_the_data_dir(tmp_path: Path, sqlite_url: str) -> None:
    settings = make_settings(tmp_path / "a", sqlite_url)
    first = link_signer(settings)
    path = settings.data_dir / KEY_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and len(path.read_text().strip()) == 64
    assert link_signer(make_settings(tmp_path / "a", sqlite_url)).key == first.key  # persistent
    assert link_signer(make_settings(tmp_path / "b", sqlite_url)).key != first.key
    configured = make_settings(tmp_path / "c", sqlite_url, link_key="0123456789abcdef" * 4)
    assert link_signer(configured).key == ("0123456789abcdef" * 4).encode()
    assert not (configured.data_dir / KEY_FILE).exists()
    with pytest.raises(ValueError, match="too short"):
        make_settings(tmp_path, sqlite_url, link_key="short")


def test_signed_links_open_media_and_page_without_a_key(seeded: Seeded) -> None:
    viewer = auth(seeded.keys[Role.viewer])
    detail = seeded.http.get("/v1/incidents/inc-m", headers=viewer).json()
    for url, kind in [(detail["snapshot_url"], "image/jpeg"), (detail["clip_url"], "video/mp4")]:
        assert url.startswith(BASE) and {"exp", "sig"} <= set(_query(url))
        r = seeded.http.get(url.removeprefix(BASE))
        assert r.status_code == 200 and r.headers["content-type"] == kind
    clip = detail["clip_url"].removeprefix(BASE)
    part = seeded.http.get(clip, headers={"Range": "bytes=0-99"})
    assert part.status_code == 206 and len(part.content) == 100
    assert seeded.http.head(clip).status_code == 200
    raw = seeded.http.get(detail["snapshot_url"].removeprefix(BASE) + "&raw=1")
    assert raw.status_code == 200 and raw.content != seeded.http.get(detail["snapshot_url"]).content
    listed = seeded.http.get("/v1/incidents", headers=viewer).json()["items"]
    assert all({"exp", "sig"} <= set(_query(i["snapshot_url"])) for i in listed)
    assert all({"exp", "sig"} <= set(_query(e["event"]["snapshot_url"])) for e in detail["events"])

    q = _query(detail["snapshot_url"])
    page = seeded.http.get(f"/ui/i/inc-m?exp={q['exp']}&sig={q['sig']}")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'none'" in page.headers["content-security-policy"]
    assert page.headers["referrer-policy"] == "no-referrer"
    assert f"/v1/incidents/inc-m/clip.mp4?exp={q['exp']}&amp;sig={q['sig']}" in page.text  # the page's own exp
    assert "preload=metadata" in page.text and 'data-keyed="0"' in page.text and "exit_blocked" in page.text


def test_bad_links_get_403_and_other_routes_ignore_signatures(seeded: Seeded) -> None:
    signer, now = seeded.signer, time.time()
    exp = signer.expiry(now)
    good = f"exp={exp}&sig={signer.signature('inc-m', exp)}"
    expired = f"exp={int(now) - 10}&sig={signer.signature('inc-m', int(now) - 10)}"
    bad = [
        f"exp={exp}&sig={signer.signature('inc-other', exp)}",  # another incident's signature
        f"exp={exp + 3600}&sig={signer.signature('inc-m', exp)}",  # a longer life
        f"exp={exp}&sig=" + "A" * 43,
        expired,
        f"exp={exp}",
        f"sig={signer.signature('inc-m', exp)}",
        "exp=soon&sig=x",
    ]
    routes = ["/ui/i/inc-m", "/v1/incidents/inc-m/snapshot.jpg", "/v1/incidents/inc-m/clip.mp4"]
    for route in [*routes, "/v1/incidents/inc-m/clips/0.mp4"]:
        for query in bad:
            want = 422 if query.startswith("exp=soon") else 403
            assert seeded.http.get(f"{route}?{query}").status_code == want, (route, query)
    # a key, when sent, decides alone: a stored link keeps working for a key holder after it expires, and a key
    # of another site gets 404 even beside a valid signature
    viewer = auth(seeded.keys[Role.viewer])
    assert seeded.http.get(f"{routes[1]}?{expired}", headers=viewer).status_code == 200
    assert seeded.http.get(f"{routes[1]}?{good}", headers=auth("sw_unknown")).status_code == 401
    far = seeded.http.post(
        "/v1/keys",
        json={"role": "viewer", "name": "far", "sites": ["elsewhere"]},
        headers=auth(seeded.keys[Role.admin]),
    ).json()["key"]
    assert seeded.http.get(f"{routes[1]}?{good}", headers=auth(far)).status_code == 404
    for route in routes:
        assert seeded.http.get(f"{route}?{good}").status_code == 200
        assert seeded.http.get(route.replace("inc-m", "inc-other") + f"?{good}").status_code == 403
        assert seeded.http.get(route).status_code == 401  # no key, no signature
    for route in ["/v1/incidents/inc-m", "/v1/incidents", "/v1/stats", "/v1/cameras", "/v1/events"]:
        assert seeded.http.get(f"{route}?{good}").status_code == 401, route
    for action in ("ack", "resolve", "false-positive"):
        assert seeded.http.post(f"/v1/incidents/inc-m/{action}?{good}").status_code == 401


def test_page_opened_with_a_key_signs_its_own_links(seeded: Seeded) -> None:
    page = seeded.http.get("/ui/i/inc-m", headers=auth(seeded.keys[Role.viewer]))
    assert page.status_code == 200 and 'data-keyed="1"' in page.text and "sig=" in page.text
    scoped = seeded.http.post(
        "/v1/keys",
        json={"role": "viewer", "name": "far", "sites": ["elsewhere"]},
        headers=auth(seeded.keys[Role.admin]),
    ).json()["key"]
    assert seeded.http.get("/ui/i/inc-m", headers=auth(scoped)).status_code == 404
    assert seeded.http.get("/ui/i/nope", headers=auth(seeded.keys[Role.viewer])).status_code == 404


def test_webhook_formats_carry_signed_links(seeded: Seeded) -> None:
    payload = make_event("inc-m", 0, snapshot_url="inc-m/snapshot.jpg", clip_url="inc-m/clip.mp4")
    links = MediaLinks(BASE, seeded.signer)
    body = json.loads(render("json", payload.model_dump(mode="json"), links))
    event = IncidentEvent.model_validate(body)  # still exactly the IncidentEvent contract
    assert event.snapshot_url and event.clip_url
    for url in (event.snapshot_url, event.clip_url):
        assert url.startswith(f"{BASE}/v1/incidents/inc-m/")
        assert seeded.http.get(url.removeprefix(BASE)).status_code == 200
    ding = json.loads(render("dingtalk", payload.model_dump(mode="json"), links))["markdown"]["text"]
    found = re.search(r"\]\((" + re.escape(BASE) + r"/ui/i/[^)]+)\)", ding)  # the incident page link
    assert found is not None, ding
    page = found.group(1)
    assert page.startswith(f"{BASE}/ui/i/inc-m?exp=") and seeded.http.get(page.removeprefix(BASE)).status_code == 200
    feishu = json.loads(render("feishu", payload.model_dump(mode="json"), links))
    hrefs = [p["href"] for p in feishu["content"]["post"]["zh_cn"]["content"][-1]]
    assert hrefs == [page, event.snapshot_url, event.clip_url]
