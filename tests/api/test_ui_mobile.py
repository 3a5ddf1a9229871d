"""The mobile incident page in headless Chromium with a phone viewport: opened by a signed link, without a key.

Same browser harness as tests/api/test_ui.py (Debian's chromium through chromedriver), here with Chrome's mobile
emulation (390x844, a phone's user agent) against a real uvicorn server on 127.0.0.1. The app is wrapped in a small
ASGI recorder so the test sees what the browser asked the server for: the `<video>` must stream the clip with Range
requests and play it. A tampered and an expired link get the 403 page. A screenshot of the page goes to
`out/screenshots/mobile-incident.png` (git-ignored) and the test's tmp folder.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send

from api.app import create_app
from api.auth import Role
from api.media_links import LinkSigner, link_signer
from tests.api.conftest import add_keys, make_settings, store_of
from tests.api.media_seed import seed_incident
from tests.api.test_ui import (
    ACCEPT_LANGUAGES,
    CHROME_FLAGS,
    CHROMEDRIVER,
    CHROMIUM,
    _browser_missing,
    _free_port,
    _wait,
)

SCREENSHOTS = Path(__file__).resolve().parents[2] / "out" / "screenshots"
PHONE = {
    "deviceMetrics": {"width": 390, "height": 844, "pixelRatio": 2.0},
    "userAgent": "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0 Mobile Safari/537.36",
}


@dataclass
class Recorder:
    """ASGI middleware: (method, path, Range header) of every HTTP request the server received."""

    app: ASGIApp
    seen: list[tuple[str, str, str | None]] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            rng = headers.get(b"range")
            self.seen.append((scope["method"], scope["path"], rng.decode() if rng else None))
        await self.app(scope, receive, send)


@dataclass
class Phone:
    base: str
    signer: LinkSigner
    recorder: Recorder
    keys: dict[Role, str]


@pytest.fixture
def phone_server(tmp_path: Path, sqlite_url: str, sample_clip: Path) -> Iterator[Phone]:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    settings = make_settings(tmp_path, sqlite_url, webhook_dispatcher=False, public_base_url=base)
    app = create_app(settings)
    keys = add_keys(store_of(app))
    seed_incident(store_of(app), settings.media_dir, sample_clip, "inc-phone", zone="fire_lane", rule="exit_blocked")
    recorder = Recorder(app)
    server = uvicorn.Server(uvicorn.Config(recorder, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="mobile-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield Phone(base, link_signer(settings), recorder, keys)
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def phone(tmp_path: Path) -> Iterator[Any]:
    reason = _browser_missing()
    if reason:
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    flags = [f for f in CHROME_FLAGS if not f.startswith("--window-size")]
    for flag in [*flags, "--autoplay-policy=no-user-gesture-required", f"--user-data-dir={tmp_path / 'profile'}"]:
        options.add_argument(flag)
    options.add_experimental_option("mobileEmulation", PHONE)
    options.add_experimental_option("prefs", {"intl.accept_languages": ACCEPT_LANGUAGES})
    browser = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    browser.set_page_load_timeout(15)
    try:
        yield browser
    finally:
        browser.quit()


PLAY = """
const v = document.getElementById("clip");
v.muted = true;
v.play().catch((e) => (v.dataset.error = String(e)));
"""
NAV_STATUS = "return performance.getEntriesByType('navigation')[0].responseStatus"
STATE = """
const v = document.getElementById("clip");
return {t: v.currentTime, ready: v.readyState, w: v.videoWidth, err: v.error && v.error.code, perr: v.dataset.error,
        img: document.getElementById("snapshot").naturalWidth, width: document.documentElement.scrollWidth};
"""


@pytest.mark.browser
@pytest.mark.timeout(90)
def test_signed_link_opens_the_mobile_page_and_streams_the_clip(
    phone: Any, phone_server: Phone, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    now = time.time()
    exp = phone_server.signer.expiry(now)
    link = f"{phone_server.base}/ui/i/inc-phone?exp={exp}&sig={phone_server.signer.signature('inc-phone', exp)}"
    phone.get(link)  # a phone browser: no key anywhere
    assert phone.execute_script(NAV_STATUS) == 200
    _wait(phone, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-translated"), "page translated")
    assert "消防通道占用" in phone.find_element(By.TAG_NAME, "h1").text  # the rule's name in the browser's language
    facts = phone.find_element(By.TAG_NAME, "dl").text
    assert "demo-gate" in facts and "fire_lane" in facts and "demo-site" in facts
    assert "摄像头" in facts and "Camera" not in facts and "新事件" in facts
    assert not phone.find_element(By.ID, "actions").is_displayed()  # a signed link alone handles nothing
    _wait(phone, lambda d: d.execute_script(STATE)["img"] == 768, "annotated snapshot loaded")
    phone.execute_script(PLAY)
    state = _wait(phone, lambda d: (s := d.execute_script(STATE))["t"] > 1.0 and s, "the clip plays", timeout=30)
    assert state["w"] == 768 and state["err"] is None and state["perr"] is None, state
    assert state["width"] <= 390  # no sideways scrolling on the phone
    clip_requests = [r for r in phone_server.recorder.seen if r[1] == "/v1/incidents/inc-phone/clip.mp4"]
    assert clip_requests and all(m == "GET" for m, _, _ in clip_requests)
    assert any(rng is not None and rng.startswith("bytes=") for _, _, rng in clip_requests), clip_requests
    phone.execute_script("document.getElementById('clip').pause()")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = tmp_path / "mobile-incident.png"
    phone.save_screenshot(str(shot))
    shutil.copy(shot, SCREENSHOTS / shot.name)
    assert shot.stat().st_size > 20_000

    tampered = link[:-2] + ("AA" if not link.endswith("AA") else "BB")
    expired_at = int(now) - 60
    expired = f"{phone_server.base}/ui/i/inc-phone?exp={expired_at}&sig="
    expired += phone_server.signer.signature("inc-phone", expired_at)
    for url, reason in [(tampered, "invalid link signature"), (expired, "this link has expired")]:
        phone.get(url)
        assert phone.execute_script(NAV_STATUS) == 403
        assert reason in phone.find_element(By.TAG_NAME, "body").text


@pytest.mark.browser
@pytest.mark.timeout(60)
def test_the_page_shows_handling_buttons_to_a_tab_with_the_ui_key(phone: Any, phone_server: Phone) -> None:
    from selenium.webdriver.common.by import By

    phone.get(f"{phone_server.base}/ui/")
    phone.execute_script("sessionStorage.setItem('safewatch.key', arguments[0])", phone_server.keys[Role.operator])
    exp = phone_server.signer.expiry(time.time())
    phone.get(f"{phone_server.base}/ui/i/inc-phone?exp={exp}&sig={phone_server.signer.signature('inc-phone', exp)}")
    actions = phone.find_element(By.ID, "actions")
    assert actions.is_displayed()
    actions.find_element(By.CSS_SELECTOR, "button[data-action='ack']").click()
    handling = phone.find_element(By.ID, "handling")
    _wait(phone, lambda d: handling.get_attribute("data-handling") == "acknowledged", "acknowledged")
    assert handling.text == "已确认"
    phone.find_element(By.ID, "lang-toggle").click()  # English, and the choice sticks for the console too
    assert handling.text == "acknowledged" and phone.find_element(By.CSS_SELECTOR, "dt").text == "Camera"
    actions.find_element(By.CSS_SELECTOR, "button[data-action='ack']").click()  # twice: the server's reason shows
    _wait(phone, lambda d: d.find_element(By.ID, "message").text.startswith("409:"), "409 shown")


@pytest.mark.browser
@pytest.mark.timeout(60)
def test_the_ui_links_each_incident_to_its_signed_page(phone: Any, phone_server: Phone) -> None:
    from selenium.webdriver.common.by import By

    phone.get(f"{phone_server.base}/ui/")
    phone.execute_script("sessionStorage.setItem('safewatch.key', arguments[0])", phone_server.keys[Role.operator])
    phone.refresh()
    selector = "tr[data-incident='inc-phone'] button[data-page]"
    button = _wait(phone, lambda d: d.find_elements(By.CSS_SELECTOR, selector), "the row's page button")[0]
    assert "/ui/i/inc-phone?exp=" in button.get_attribute("data-page")
    loaded = "return document.querySelector(\"tr[data-incident='inc-phone'] img\").naturalWidth"
    _wait(phone, lambda d: d.execute_script(loaded) == 768, "thumbnail from the signed link")
    windows = set(phone.window_handles)
    button.click()
    _wait(phone, lambda d: len(d.window_handles) == len(windows) + 1, "the page opens")
    phone.switch_to.window(next(iter(set(phone.window_handles) - windows)))
    _wait(phone, lambda d: d.find_elements(By.ID, "actions"), "page loaded")
    assert phone.find_element(By.ID, "actions").is_displayed()  # the UI tab's key came along
    snapshot = [r for r in phone_server.recorder.seen if r[1] == "/v1/incidents/inc-phone/snapshot.jpg"]
    assert snapshot  # the thumbnail and the page load the signed link itself, not a blob fetched with the key
