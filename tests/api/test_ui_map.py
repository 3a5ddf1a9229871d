"""The site map page (/ui/map.html) in headless Chromium against a real uvicorn server on 127.0.0.1: upload a plan,
drag two cameras onto it, save, reload → the same positions; markers show the cameras' states and open incidents by
severity; a click opens the camera's incidents and live frame; a site-scoped key sees only its site. The page's
screenshot goes to `out/screenshots/site-map.png` (git-ignored; docs/img/site-map.png is a copy)."""

from __future__ import annotations

import io
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from PIL import Image, ImageDraw

from api.app import create_app
from api.auth import Role
from api.store.incidents import apply_event
from api.store.keys import create_key
from api.workers import WorkerInfo
from tests.api.conftest import T0, add_keys, auth, make_event, make_settings, store_of
from tests.api.routers.test_sites import camera_config, write_cameras
from tests.api.test_ui import CHROME_FLAGS, CHROMEDRIVER, CHROMIUM, _browser_missing, _by_id, _free_port, _wait

SITE = "1号工地"
PLAN_SIZE = (800, 500)
PLACES = {"gate-1": (0.30, 0.40), "gate-2": (0.72, 0.65)}
MOVED = ("gate-1", (0.22, 0.30))  # gate-1 dragged again once placed
TOLERANCE_PX = 2.0
UNTRANSLATED = re.compile(r"\b(?:map|tab|key|hint|f|lang|severity|rule)\.[a-z_.]+")  # a catalogue key shown as is
SCREENSHOTS = Path(__file__).resolve().parents[2] / "out" / "screenshots"  # git-ignored, as test_ui_mobile


@dataclass
class MapServer:
    base: str
    keys: dict[Role, str]
    south_viewer: str


def _plan_png(path: Path) -> Path:
    """A simple floor plan: outline, rooms, a gate."""
    img = Image.new("RGB", PLAN_SIZE, (246, 244, 238))
    draw = ImageDraw.Draw(img)
    draw.rectangle((20, 20, 780, 480), outline=(60, 60, 60), width=6)
    for box in [(20, 20, 300, 220), (300, 20, 560, 220), (560, 20, 780, 300), (20, 320, 420, 480)]:
        draw.rectangle(box, outline=(90, 90, 90), width=3)
    draw.rectangle((460, 360, 740, 450), fill=(214, 226, 236), outline=(90, 90, 90), width=2)
    draw.line((360, 480, 460, 480), fill=(246, 244, 238), width=8)  # the gate
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    path.write_bytes(buf.getvalue())
    return path


@pytest.fixture
def map_server(tmp_path: Path, sqlite_url: str, sample_clip: Path) -> Iterator[MapServer]:
    config_dir = tmp_path / "cameras"
    write_cameras(
        config_dir,
        [
            camera_config("gate-1", SITE, sample_clip),
            camera_config("gate-2", SITE, sample_clip),
            camera_config("yard-1", "south", sample_clip),
        ],
    )

    def workers() -> list[WorkerInfo]:  # gate-1 runs, gate-2 does not
        return [WorkerInfo(id="w1", host="h", cameras=["gate-1", "yard-1"], fps=2.0, lag_s=0.0, last_seen=T0)]

    port = _free_port()
    settings = make_settings(tmp_path, sqlite_url, config_dir=config_dir, webhook_dispatcher=False)
    app = create_app(settings, workers=workers)
    store = store_of(app)
    keys = add_keys(store)
    with store.session() as session:
        _row, south = create_key(session, role="viewer", name="south-viewer", sites=["south"])
    for i, severity in enumerate(["critical", "critical", "warning"]):
        apply_event(store, make_event(f"g1-{i}", camera_id="gate-1", site=SITE, severity=severity, rule="intrusion"))
    apply_event(store, make_event("g2-0", camera_id="gate-2", site=SITE))
    apply_event(store, make_event("g2-0", 1, camera_id="gate-2", site=SITE, type="closed"))
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="ui-map-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield MapServer(f"http://127.0.0.1:{port}", keys, south)
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[Any]:
    """test_ui's Chromium, preferring Chinese as a Chinese browser does (headless ignores --lang for
    navigator.languages, which the page reads)."""
    reason = _browser_missing()
    if reason:
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*CHROME_FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"]:
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"intl.accept_languages": "zh-CN,zh"})
    browser = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    browser.set_page_load_timeout(15)
    try:
        yield browser
    finally:
        browser.quit()


def _use_key(driver: Any, key: str) -> None:
    _by_id(driver, "key").send_keys(key)
    _by_id(driver, "key-save").click()


def _marker(driver: Any, camera: str, where: str = "#plan") -> Any:
    from selenium.webdriver.common.by import By

    found = driver.find_elements(By.CSS_SELECTOR, f"{where} .marker[data-camera='{camera}']")
    return found[0] if found else None


def _drop(driver: Any, source: Any, img: Any, at: tuple[float, float]) -> None:
    """Press on `source`, move to `at` (normalised) on the plan image, release."""
    from selenium.webdriver.common.action_chains import ActionChains

    w, h = img.size["width"], img.size["height"]
    offset = (round((at[0] - 0.5) * w), round((at[1] - 0.5) * h))
    chain = ActionChains(driver).move_to_element(source).click_and_hold().move_by_offset(5, 5)
    chain.move_to_element_with_offset(img, *offset).release().perform()


_POSITIONS = """
const img = document.getElementById('plan-img').getBoundingClientRect();
return [...document.querySelectorAll('#plan .marker')].map((m) => {
  const dot = m.querySelector('.dot').getBoundingClientRect();
  return [m.dataset.camera, (dot.left + dot.width / 2 - img.left) / img.width,
          (dot.top + dot.height / 2 - img.top) / img.height, img.width, img.height];
});
"""


def _shown_positions(driver: Any) -> dict[str, tuple[float, float, float, float]]:
    return {c: (x, y, w, h) for c, x, y, w, h in driver.execute_script(_POSITIONS)}


def _close(got: tuple[float, float], want: tuple[float, float], size: tuple[float, float]) -> bool:
    return abs(got[0] - want[0]) * size[0] <= TOLERANCE_PX and abs(got[1] - want[1]) * size[1] <= TOLERANCE_PX


@pytest.mark.browser
@pytest.mark.timeout(90)
def test_site_map_places_saves_and_reloads_markers(driver: Any, map_server: MapServer, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    driver.get(f"{map_server.base}/ui/map.html")
    _use_key(driver, map_server.keys[Role.operator])
    _wait(driver, lambda d: _marker(d, "gate-1", "#tray") is not None, "cameras in the tray")
    assert _by_id(driver, "site").get_attribute("value") == SITE
    languages = driver.execute_script("return navigator.languages")
    assert languages[0].startswith("zh"), languages  # the page defaults to Chinese
    assert "平面图" in _by_id(driver, "plan-empty").text

    _by_id(driver, "plan-file").send_keys(str(_plan_png(tmp_path / "plan.png")))
    _wait(driver, lambda d: _by_id(d, "plan").get_attribute("data-ready") == SITE, "plan shown")
    img = _by_id(driver, "plan-img")
    _wait(driver, lambda d: d.execute_script("return arguments[0].naturalWidth", img) == PLAN_SIZE[0], "plan decoded")
    for camera, at in PLACES.items():
        _drop(driver, _marker(driver, camera, "#tray"), img, at)
        _wait(driver, lambda d, c=camera: _marker(d, c) is not None, f"{camera} placed")
    _drop(driver, _marker(driver, MOVED[0]).find_element(By.CSS_SELECTOR, ".dot"), img, MOVED[1])
    wanted = {**PLACES, MOVED[0]: MOVED[1]}
    _by_id(driver, "save").click()
    _wait(driver, lambda d: _by_id(d, "status").text == "已保存", "saved")

    stored = httpx.get(f"{map_server.base}/v1/sites/{SITE}/map", headers=auth(map_server.keys[Role.viewer])).json()
    size = (img.size["width"], img.size["height"])
    assert {m["camera_id"] for m in stored["markers"]} == set(wanted)
    for m in stored["markers"]:
        assert _close((m["x"], m["y"]), wanted[m["camera_id"]], size), (m, size)

    driver.refresh()
    _wait(driver, lambda d: _by_id(d, "plan").get_attribute("data-ready") == SITE, "plan after reload")
    _wait(driver, lambda d: len(_shown_positions(d)) == 2, "markers after reload")
    shown = _shown_positions(driver)
    for camera, (x, y, w, h) in shown.items():
        assert _close((x, y), wanted[camera], (w, h)), (camera, x, y, wanted[camera])

    # states and severity counts from the workers and the store
    gate1, gate2 = _marker(driver, "gate-1"), _marker(driver, "gate-2")
    assert (gate1.get_attribute("data-state"), gate2.get_attribute("data-state")) == ("streaming", "offline")
    counts = {c.get_attribute("class"): c.text for c in gate1.find_elements(By.CSS_SELECTOR, ".count")}
    assert counts == {"count critical": "2", "count warning": "1"}
    assert gate2.find_elements(By.CSS_SELECTOR, ".count") == []  # its only incident is closed

    # a click opens the camera's open incidents and its live frame (operator key)
    gate1.find_element(By.CSS_SELECTOR, ".dot").click()
    links = _wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#panel-incidents a"), "panel incidents")
    assert len(links) == 3 and all("/ui/i/g1-" in a.get_attribute("href") for a in links)
    frame = _by_id(driver, "panel-frame")
    _wait(driver, lambda d: d.execute_script("return arguments[0].naturalWidth", frame) > 0, "live frame")
    assert not UNTRANSLATED.findall(driver.find_element(By.TAG_NAME, "body").text)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SCREENSHOTS / "site-map.png"))

    # a key scoped to south sees only south
    _use_key(driver, map_server.south_viewer)
    _wait(driver, lambda d: _by_id(d, "site").get_attribute("value") == "south", "south site")
    options = driver.execute_script("return [...document.querySelectorAll('#site option')].map((o) => o.value)")
    assert options == ["south"]
    assert _marker(driver, "gate-1", "#tray") is None and _marker(driver, "yard-1", "#tray") is not None


@pytest.mark.browser
@pytest.mark.timeout(60)
def test_english_and_a_viewer_key_cannot_save(driver: Any, map_server: MapServer) -> None:
    from selenium.webdriver.common.by import By

    driver.get(f"{map_server.base}/ui/")
    _by_id(driver, "nav-map").click()  # the console's nav link
    _wait(driver, lambda d: d.current_url.endswith("/ui/map.html"), "map page")
    _by_id(driver, "lang").click()  # the toggle sticks (localStorage)
    driver.refresh()
    _use_key(driver, map_server.keys[Role.viewer])
    _wait(driver, lambda d: _marker(d, "gate-1", "#tray") is not None, "cameras in the tray")
    assert _by_id(driver, "save").text == "Save positions" and "no plan" in _by_id(driver, "plan-empty").text
    assert not UNTRANSLATED.findall(driver.find_element(By.TAG_NAME, "body").text)
    driver.execute_script(
        "document.getElementById('plan-camera').value = 'gate-1';document.getElementById('plan-camera-use').click();"
    )
    error = _wait(driver, lambda d: _by_id(d, "error").is_displayed() and _by_id(d, "error"), "error banner")
    assert error.text.startswith("403:") and "operator" in error.text
