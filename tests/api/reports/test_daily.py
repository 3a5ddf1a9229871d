"""`GET /v1/reports/daily` over a store filled by a real replay (tests/api/reports/report_store.py): every incident
of the site's local day is a row with a thumbnail of its annotated snapshot, the charts' bars add up to the store's
counts, the page is printable and needs no script; the site's zone comes from its cameras (else UTC); a signed link
opens the one site and day without a key (tampered, for another site or day, or expired: 403); other sites are 404
to a scoped key; bad input is 422 with a reason. The page is opened once in headless Chromium; its screenshot goes
to `out/screenshots/daily-report.png` (git-ignored; docs/img/daily-report.png is a copy)."""

from __future__ import annotations

import base64
import io
import re
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from api.app import create_app
from api.links import signed_links
from api.media_links import link_signer
from api.reports.links import report_link
from api.settings import Settings
from api.store.keys import create_key
from tests.api.conftest import add_keys, auth, store_of
from tests.api.datasets.field_store import SECOND_SITE, FieldStore, fill_store
from tests.api.reports.report_store import SITE_ZONE, Day, first_site, report_settings, site_day
from tests.api.test_ui import CHROME_FLAGS, CHROMEDRIVER, CHROMIUM, _browser_missing
from tests.pipelines.e2e import harness
from tests.pipelines.e2e.harness import ReplayResult

pytestmark = pytest.mark.timeout(300)
ROW = re.compile(r'<tr data-incident="([^"]+)">(.*?)</tr>', re.S)
THUMB = re.compile(r'<img src="data:image/jpeg;base64,([^"]+)"')
SCREENSHOTS = Path(__file__).resolve().parents[3] / "out" / "screenshots"  # git-ignored, as test_ui_mobile
BAR = re.compile(r'<rect class="bar" data-(?:rule|key)="([^"]+)"(?: data-hour="(\d+)")? data-count="(\d+)"')


class World:
    def __init__(self, field: FieldStore, settings: Settings, client: TestClient, keys: dict[str, str]) -> None:
        self.field, self.settings, self.client, self.keys = field, settings, client, keys
        self.site = first_site(field)
        self.day = site_day(field, self.site, SITE_ZONE)
        self.second = site_day(field, SECOND_SITE, "UTC")

    def get(self, site: str, day: str, key: str | None = "viewer", **params: Any) -> Any:
        headers = auth(self.keys[key]) if key else {}
        return self.client.get("/v1/reports/daily", params={"site": site, "date": day, **params}, headers=headers)


@pytest.fixture(scope="module")
def vtest(tmp_path_factory: pytest.TempPathFactory) -> ReplayResult:
    return harness.vtest_replay(tmp_path_factory.mktemp("vtest"))


@pytest.fixture(scope="module")
def world(vtest: ReplayResult, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    assert vtest.media_root is not None
    workdir = tmp_path_factory.mktemp("report")
    field = fill_store(f"sqlite:///{(workdir / 'store.db').as_posix()}", vtest, vtest.media_root)
    settings = report_settings(field, workdir)
    app = create_app(settings)
    keys = {role.value: key for role, key in add_keys(store_of(app)).items()}
    with store_of(app).session() as session:
        keys["second"] = create_key(session, role="viewer", name="second site", sites=[SECOND_SITE])[1]
    with TestClient(app) as client:
        yield World(field, settings, client, keys)


def _figure(html: str, key: str) -> str:
    return html.split(f'<figure id="chart-{key}"', 1)[1].split("</figure>", 1)[0]


def _bars(html: str, key: str) -> Counter[str]:
    return Counter({name: int(count) for name, _hour, count in BAR.findall(_figure(html, key))})


def _card(html: str, key: str) -> str:
    return html.split(f'id="card-{key}">', 1)[1].split("</div>", 1)[0]


def _check_page(html: str, day: Day, world: World) -> None:
    rows = dict(ROW.findall(html))
    assert set(rows) == {i.id for i in day.incidents}
    for incident in day.incidents:
        match = THUMB.search(rows[incident.id])
        assert match is not None, f"no thumbnail for {incident.id}"
        thumb = Image.open(io.BytesIO(base64.b64decode(match.group(1))))
        assert thumb.format == "JPEG" and max(thumb.size) <= 240
        annotated = Image.open(incident.annotated).convert("RGB").resize(thumb.size)
        diff = np.abs(np.asarray(thumb.convert("RGB"), float) - np.asarray(annotated, float)).mean()
        assert diff < 12, f"the thumbnail of {incident.id} is not its annotated snapshot ({diff:.1f})"
    assert _bars(html, "per_rule") == day.rules
    assert _bars(html, "handling") == day.handling
    hours = Counter[int]()
    for _rule, hour, count in BAR.findall(_figure(html, "per_hour")):
        hours[int(hour)] += int(count)
    assert hours == day.hours
    assert f"<b>{len(day.incidents)}</b>" in _card(html, "total")
    assert f"<b>{day.handling['new'] + day.handling['acknowledged']}</b>" in _card(html, "backlog")
    assert "@media print" in html and "@page" in html and "break-inside:avoid" in html
    assert "<script" not in html and not re.search(r'(src|href)="(?!data:)', html)  # nothing to fetch


def test_the_report_lists_every_incident_with_a_thumbnail_and_counts_right(world: World) -> None:
    r = world.get(world.site, world.day.day.isoformat())
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "script-src" not in r.headers["content-security-policy"]
    html = r.text
    _check_page(html, world.day, world)
    assert '<html lang="zh-CN">' in html and "安全日报" in html and "区域入侵" in html
    assert f"时区 {SITE_ZONE}（取自站点摄像头的排程时区）" in html
    assert "东门 East gate" in _figure(html, "top_cameras")
    handled = world.day.handling
    assert f"共 {handled['false_positive']} 起" in _card(html, "resolve_median")
    assert f"共 {handled['acknowledged']} 起" in _card(html, "ack_median")


def test_the_second_site_in_utc_and_in_english(world: World) -> None:
    r = world.get(SECOND_SITE, world.second.day.isoformat(), lang="en")
    assert r.status_code == 200
    _check_page(r.text, world.second, world)
    assert '<html lang="en">' in r.text and "Daily safety report" in r.text and "安全日报" not in r.text
    assert "Time zone UTC（no camera of the site sets one: UTC）" in r.text
    other_day = world.get(SECOND_SITE, "2001-01-01").text
    assert "当日无事件" in other_day and ROW.search(other_day) is None


def test_a_signed_link_opens_one_site_and_day_without_a_key(world: World) -> None:
    signer = link_signer(world.settings)
    day = world.day.day
    link = report_link(world.settings.base_url, signer, world.site, day)
    query = urlsplit(link).query
    keyed = world.get(world.site, day.isoformat())
    opened = world.client.get(f"/v1/reports/daily?{query}")
    assert opened.status_code == 200 and opened.text == keyed.text
    params = dict(p.split("=", 1) for p in query.split("&"))
    tampered = params["sig"][:-2] + ("AA" if params["sig"][-2:] != "AA" else "BB")
    expired = urlsplit(report_link("", signer, world.site, day, now=time.time() - 2 * signer.ttl_s)).query
    refused = {
        "tampered": f"/v1/reports/daily?{query.replace(params['sig'], tampered)}",
        "other day": f"/v1/reports/daily?{query.replace(day.isoformat(), '2001-01-01')}",
        "other site": f"/v1/reports/daily?{query.replace('site=' + params['site'], 'site=' + SECOND_SITE)}",
        "expired": f"/v1/reports/daily?{expired}",
        "no sig": f"/v1/reports/daily?{query.split('&sig=')[0]}",
    }
    for what, url in refused.items():
        assert world.client.get(url).status_code == 403, what
    incident = world.day.incidents[0].id  # an incident's media signature does not open a report
    media_query = signed_links(world.settings).snapshot(incident).split("?", 1)[1]
    r = world.get(world.site, day.isoformat(), key=None, **dict(p.split("=", 1) for p in media_query.split("&")))
    assert r.status_code == 403


def test_scope_unknown_sites_and_bad_input(world: World) -> None:
    day = world.day.day.isoformat()
    assert world.get(world.site, day, key="second").status_code == 404  # another site: as if it did not exist
    assert world.get(SECOND_SITE, world.second.day.isoformat(), key="second").status_code == 200
    assert world.get("nowhere", day).status_code == 404
    assert world.get(world.site, day, key=None).status_code == 401
    for bad_day, reason in [("2026-02-30", "not a calendar date"), ("yesterday", "YYYY-MM-DD")]:
        r = world.get(world.site, bad_day)
        assert r.status_code == 422 and reason in r.json()["detail"], r.text
    assert world.get("", day).status_code == 422
    assert world.get("x" * 129, day).status_code == 422
    assert world.get(world.site, day, lang="fr").status_code == 422


@pytest.mark.browser
def test_the_report_renders_in_chromium(world: World, tmp_path: Path) -> None:
    reason = _browser_missing()
    if reason:
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    page = tmp_path / "daily-report.html"
    page.write_text(world.get(world.site, world.day.day.isoformat()).text, encoding="utf-8")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*CHROME_FLAGS, "--hide-scrollbars", f"--user-data-dir={tmp_path / 'profile'}"]:
        options.add_argument(flag)
    browser = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    try:
        browser.get(page.as_uri())
        bars = browser.execute_script(
            "return [...document.querySelectorAll('svg.chart rect.bar')].map(r => r.getBoundingClientRect().height)"
        )
        images = browser.execute_script("return [...document.images].map(i => i.complete && i.naturalWidth)")
        height = browser.execute_script("return document.body.scrollHeight")
        browser.set_window_size(1200, min(int(height) + 160, 4000))  # the whole page (window chrome included)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(SCREENSHOTS / "daily-report.png"))
    finally:
        browser.quit()
    assert bars and all(h > 0 for h in bars)
    assert len(images) == len(world.day.incidents) and all(w > 0 for w in images)
