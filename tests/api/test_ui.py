"""The web UI at /ui: served without a key; in headless Chromium, the incident list and the zone editor end to end.

The browser tests drive the Debian Chromium through chromedriver (selenium) against a real uvicorn server on
127.0.0.1 with a temporary config directory holding a copy of camera_configs/demo-gate.yaml.
"""

from __future__ import annotations

import importlib.util
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
import yaml
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import Role
from api.routers.frames import first_frame
from api.store.incidents import apply_event
from tests.api.conftest import add_keys, auth, make_event, make_settings, store_of
from tests.vision.detect.helpers import built_default_models_dir
from vision.media.snapshot import encode_jpeg

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROME_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1000",
    "--lang=zh-CN",
]
# The new zone, drawn by clicks (normalised x, y), then its first point dragged to DRAGGED_TO.
CLICKS = [(0.10, 0.20), (0.35, 0.22), (0.33, 0.45), (0.12, 0.40)]
DRAGGED_TO = (0.15, 0.25)
RTSP_URL = "rtsp://admin:s3cret@cam5.example:554/sub"
#: A Chinese site manager's browser: the console starts in zh-CN (headless Chromium ignores --lang for this).
ACCEPT_LANGUAGES = "zh-CN,zh,en"
TOLERANCE = 0.01  # a click lands on a whole CSS pixel: ~0.0015 of the ~700 px canvas


def test_ui_is_served_without_a_key(client: TestClient) -> None:
    r = client.get("/ui", follow_redirects=False)
    assert r.status_code in (301, 302, 307, 308) and r.headers["location"].endswith("/ui/")
    page = client.get("/ui/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'src="app.js"' in page.text and 'href="app.css"' in page.text
    modules = ["app.js", "api.js", "i18n.js", "incidents.js", "live.js", "dashboard.js", "zones.js"]
    for asset, kind in [
        *((m, "javascript") for m in modules),
        ("app.css", "text/css"),
        ("vendor/echarts.min.js", "javascript"),
    ]:
        r = client.get(f"/ui/{asset}")
        assert r.status_code == 200 and kind in r.headers["content-type"], asset
    assert "X-API-Key" in client.get("/ui/api.js").text  # the page's data calls send the typed-in key
    assert client.get("/ui/missing.js").status_code == 404
    assert client.get("/ui/%2e%2e/app.py").status_code == 404
    assert client.get("/v1/cameras").status_code == 401  # the API behind the page still needs a key


# ------------------------------------------------------------------------------------------------ browser tests


def _browser_missing() -> str | None:
    for path in (CHROMIUM, CHROMEDRIVER):
        if shutil.which(path) is None:
            return f"{path} not installed (apt-get install chromium chromium-driver)"
    if importlib.util.find_spec("selenium") is None:
        return "selenium not installed (pip install -e '.[dev]')"
    return None


@dataclass
class Served:
    base: str
    config_dir: Path
    keys: dict[Role, str]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _seed_incident(app: Any, media_dir: Path, sample_clip: Path) -> None:
    """An open incident on demo-gate with a real snapshot (the clip's first frame)."""
    image = first_frame(str(sample_clip))
    assert image is not None
    (media_dir / "inc-ui").mkdir(parents=True, exist_ok=True)
    (media_dir / "inc-ui" / "snapshot.jpg").write_bytes(encode_jpeg(image, 85))
    event = make_event("inc-ui", 0, camera_id="demo-gate", site="demo-site", snapshot_url="inc-ui/snapshot.jpg")
    apply_event(store_of(app), event)


@pytest.fixture
def served(tmp_path: Path, sqlite_url: str, repo_root: Path, sample_clip: Path) -> Iterator[Served]:
    config_dir = tmp_path / "cameras"
    config_dir.mkdir()
    text = (repo_root / "camera_configs" / "demo-gate.yaml").read_text(encoding="utf-8")
    (config_dir / "demo-gate.yaml").write_text(text.replace("sample_media/vtest.mp4", str(sample_clip)), "utf-8")
    rtsp = text.replace("id: demo-gate", "id: gate-rtsp").replace("sample_media/vtest.mp4", RTSP_URL)
    (config_dir / "gate-rtsp.yaml").write_text(rtsp, "utf-8")
    port = _free_port()
    settings = make_settings(
        tmp_path,
        sqlite_url,
        config_dir=config_dir,
        models_dir=built_default_models_dir(),
        webhook_dispatcher=False,
        public_base_url=f"http://127.0.0.1:{port}",
    )
    app = create_app(settings)
    keys = add_keys(store_of(app))
    _seed_incident(app, settings.media_dir, sample_clip)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="ui-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield Served(f"http://127.0.0.1:{port}", config_dir, keys)
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[Any]:
    reason = _browser_missing()
    if reason:
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*CHROME_FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"]:
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"intl.accept_languages": ACCEPT_LANGUAGES})  # navigator.languages
    browser = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    browser.set_page_load_timeout(15)
    try:
        yield browser
    finally:
        browser.quit()


def _wait(driver: Any, condition: Any, what: str, timeout: float = 10) -> Any:
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(condition, message=what)


def _by_id(driver: Any, element_id: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, element_id)


def _open_with_key(driver: Any, served: Served, role: Role) -> None:
    driver.get(f"{served.base}/ui/")
    _by_id(driver, "key").send_keys(served.keys[role])
    _by_id(driver, "key-save").click()


def _click_at(driver: Any, canvas: Any, points: list[tuple[float, float]], *, double_last: bool = False) -> None:
    """Click the canvas at normalised points (selenium offsets are from the element's centre, in CSS pixels)."""
    from selenium.webdriver.common.action_chains import ActionChains

    w, h = canvas.size["width"], canvas.size["height"]
    chain = ActionChains(driver)
    for i, (x, y) in enumerate(points):
        chain.move_to_element_with_offset(canvas, round((x - 0.5) * w), round((y - 0.5) * h))
        if double_last and i == len(points) - 1:
            chain.double_click()
        else:
            chain.click()
    chain.perform()


def _drag(driver: Any, canvas: Any, start: tuple[float, float], end: tuple[float, float]) -> None:
    from selenium.webdriver.common.action_chains import ActionChains

    w, h = canvas.size["width"], canvas.size["height"]
    chain = ActionChains(driver).move_to_element_with_offset(
        canvas, round((start[0] - 0.5) * w), round((start[1] - 0.5) * h)
    )
    chain.click_and_hold().move_by_offset(round((end[0] - start[0]) * w), round((end[1] - start[1]) * h)).release()
    chain.perform()


def _on_disk(served: Served, camera_id: str = "demo-gate") -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((served.config_dir / f"{camera_id}.yaml").read_text(encoding="utf-8"))
    return data


def _zones_on_disk(served: Served) -> list[dict[str, Any]]:
    zones: list[dict[str, Any]] = _on_disk(served)["zones"]
    return zones


@pytest.mark.browser
@pytest.mark.timeout(60)
def test_incident_list_shows_the_snapshot_and_acknowledges(driver: Any, served: Served, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    _open_with_key(driver, served, Role.operator)
    row = _wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "tr[data-incident='inc-ui']"), "incident row")[0]
    assert "演示 1号门 消防通道" in row.text and "消防通道占用" in row.text  # the rule's name in zh-CN
    assert row.get_attribute("data-rule") == "exit_blocked"
    # the rule filter offers the camera's rules and the built-in camera-health rules every camera runs
    options = "return [...document.querySelectorAll('#f-rule option')].map((o) => o.value)"
    listed = _wait(driver, lambda d: "exit_blocked" in d.execute_script(options), "rule filter options")
    rule_options = driver.execute_script(options) if listed else []
    assert {"camera_offline", "camera_tamper", "exit_blocked"} <= set(rule_options)
    loaded = "return arguments[0].querySelector('img').naturalWidth"
    _wait(driver, lambda d: d.execute_script(loaded, row) == 768, "snapshot thumbnail (blob URL)")
    _by_id(driver, "actor").send_keys("值班员 张三")
    _by_id(driver, "note").send_keys("已通知保安")
    row.find_element(By.CSS_SELECTOR, "button[data-action='ack']").click()
    selector = "tr[data-incident='inc-ui'][data-handling='acknowledged']"
    _wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, selector), "row shows acknowledged")
    detail = httpx.get(f"{served.base}/v1/incidents/inc-ui", headers=auth(served.keys[Role.viewer])).json()
    assert detail["handling"] == "acknowledged"
    assert [(a["actor"], a["note"]) for a in detail["actions"]] == [("值班员 张三", "已通知保安")]
    # acknowledging twice is not allowed: the server's reason is shown
    driver.find_element(By.CSS_SELECTOR, f"{selector} button[data-action='ack']").click()
    error = _wait(driver, lambda d: _by_id(d, "error").is_displayed() and _by_id(d, "error"), "error banner")
    assert error.text.startswith("409:")
    driver.save_screenshot(str(tmp_path / "incidents.png"))


@pytest.mark.browser
@pytest.mark.timeout(60)
def test_zone_editor_draws_saves_and_shows_validation_errors(driver: Any, served: Served, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    _open_with_key(driver, served, Role.operator)
    _by_id(driver, "tab-zones").click()
    _wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#zone-camera option")) == 3, "camera list")
    Select(_by_id(driver, "zone-camera")).select_by_value("demo-gate")
    canvas = _by_id(driver, "canvas")
    _wait(driver, lambda d: canvas.get_attribute("data-ready") == "demo-gate", "camera frame loaded")
    assert [li.get_attribute("data-zone") for li in driver.find_elements(By.CSS_SELECTOR, "#zone-list li")] == [
        "fire_lane",
        "footpath",
    ]
    assert canvas.size["height"] / canvas.size["width"] == pytest.approx(576 / 768, abs=0.01)  # the frame's aspect

    _by_id(driver, "zone-new").click()
    _click_at(driver, canvas, CLICKS, double_last=True)  # double-click on the last point closes the polygon
    items = driver.find_elements(By.CSS_SELECTOR, "#zone-list li")
    assert len(items) == 3
    _drag(driver, canvas, CLICKS[0], DRAGGED_TO)
    new = driver.find_elements(By.CSS_SELECTOR, "#zone-list li")[2]
    Select(new.find_element(By.CSS_SELECTOR, "select.zone-kind")).select_by_value("forbidden")
    name = new.find_element(By.CSS_SELECTOR, "input.zone-name")
    name.send_keys(Keys.CONTROL, "a")
    name.send_keys("施工区_A")
    _by_id(driver, "zone-save").click()
    _wait(driver, lambda d: "已保存" in _by_id(d, "zone-status").text, "saved")

    zones = _zones_on_disk(served)
    assert [z["name"] for z in zones] == ["fire_lane", "footpath", "施工区_A"]
    assert zones[2]["kind"] == "forbidden"
    expected = [DRAGGED_TO, *CLICKS[1:]]
    assert len(zones[2]["polygon"]) == 4
    for got, want in zip(zones[2]["polygon"], expected, strict=True):
        assert got == pytest.approx(list(want), abs=TOLERANCE)
    assert zones[0]["polygon"] == [[0.83, 0.06], [0.95, 0.06], [0.95, 0.19], [0.83, 0.19]]  # untouched

    # a 2-point zone: the server's 422 (field path + message) shows next to the form; the file is unchanged
    _by_id(driver, "zone-new").click()
    _click_at(driver, canvas, [(0.6, 0.8), (0.8, 0.85)])
    _by_id(driver, "zone-finish").click()
    _by_id(driver, "zone-save").click()
    problems = _wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#zone-errors li"), "422 problems")
    text = " | ".join(p.text for p in problems)
    assert "zones.3.polygon" in text and "at least 3" in text, text
    assert "未保存（422）" in _by_id(driver, "zone-status").text
    assert len(_zones_on_disk(served)) == 3
    shot = tmp_path / "zone-editor.png"
    driver.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000


@pytest.mark.browser
@pytest.mark.timeout(60)
def test_a_viewer_key_cannot_save_and_sees_why(driver: Any, served: Served) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    before = (served.config_dir / "demo-gate.yaml").read_bytes()
    _open_with_key(driver, served, Role.viewer)
    _by_id(driver, "tab-zones").click()
    _wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#zone-camera option")) == 3, "camera list")
    Select(_by_id(driver, "zone-camera")).select_by_value("demo-gate")
    _wait(driver, lambda d: _by_id(d, "canvas").get_attribute("data-ready") == "demo-gate", "camera loaded")
    _by_id(driver, "zone-save").click()
    error = _wait(driver, lambda d: _by_id(d, "error").is_displayed() and _by_id(d, "error"), "error banner")
    assert error.text.startswith("403:") and "requires the operator role" in error.text
    assert (served.config_dir / "demo-gate.yaml").read_bytes() == before


@pytest.mark.browser
@pytest.mark.timeout(60)
def test_renaming_a_zone_keeps_rules_and_stream_credentials(driver: Any, served: Served) -> None:
    """A stream camera (no picture here): rename a zone; its rule follows, the redacted URL keeps the password."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select

    _open_with_key(driver, served, Role.operator)
    _by_id(driver, "tab-zones").click()
    _wait(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#zone-camera option")) == 3, "camera list")
    Select(_by_id(driver, "zone-camera")).select_by_value("gate-rtsp")
    _wait(driver, lambda d: _by_id(d, "canvas").get_attribute("data-ready") == "gate-rtsp", "camera loaded")
    assert "not running" in _by_id(driver, "zone-status").text  # frame.jpg 404 (the server's reason): still works
    name = driver.find_element(By.CSS_SELECTOR, "#zone-list li[data-zone='footpath'] input.zone-name")
    name.send_keys(Keys.CONTROL, "a")
    name.send_keys("人行道")
    _by_id(driver, "zone-save").click()
    _wait(driver, lambda d: "已保存" in _by_id(d, "zone-status").text, "saved")
    data = _on_disk(served, "gate-rtsp")
    assert data["streams"]["detect"] == RTSP_URL
    assert [z["name"] for z in data["zones"]] == ["fire_lane", "人行道"]
    assert [r["zones"] for r in data["rules"]] == [["fire_lane"], ["人行道"]]
