"""The console (/ui) in headless Chromium: both languages with no untranslated key, the dashboard's ECharts drawn
from a store filled by a real replay, live updates through SSE, keyboard handling, bulk acknowledge, cursor
pagination, and the clip streamed into the player's <video> with Range requests.

Same harness as tests/api/test_ui.py (Debian's chromium through chromedriver, its `driver` fixture, zh-CN preferred)
against real uvicorn servers on 127.0.0.1. The dashboard's store is the vtest replay of tests/api/datasets/
field_store.py (the whole pipeline with the real ONNX detector; some incidents handled as operators would).
Screenshots go to the test's tmp folder and `out/screenshots/` (git-ignored).
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from starlette.types import ASGIApp

from api.app import create_app
from api.auth import Role
from api.store.incidents import apply_event
from tests.api.conftest import add_keys, auth, make_event, make_settings, store_of
from tests.api.datasets.field_store import SECOND_CAMERA, SECOND_SITE, FieldStore, fill_store
from tests.api.media_seed import seed_incident
from tests.api.test_ui import _by_id, _free_port, _wait, driver  # noqa: F401  (fixture)
from tests.api.test_ui_mobile import Recorder
from tests.pipelines.e2e import harness
from tests.pipelines.e2e.harness import ReplayResult

SCREENSHOTS = Path(__file__).resolve().parents[2] / "out" / "screenshots"
CHARTS = ["per-day", "backlog", "handling", "top-cameras", "top-zones", "fp-rule", "fp-camera"]
PAGE_SIZE = 20  # api/ui/incidents.js
IMPORT_I18N = """
const done = arguments[arguments.length - 1];
import("/ui/i18n.js").then((m) => done({
  en: Object.keys(m.MESSAGES.en), zh: Object.keys(m.MESSAGES["zh-CN"]), missing: [...m.missing], lang: m.lang(),
}));
"""
PAGE_KEYS = """
const keys = [];
for (const attr of ["i18n", "i18nPlaceholder", "i18nTitle", "i18nAria"]) {
  for (const node of document.querySelectorAll(`[data-${attr.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase())}]`)) {
    keys.push(node.dataset[attr]);
  }
}
return keys;
"""
CHART_SERIES = """
const out = {};
for (const name of arguments[0]) {
  const c = echarts.getInstanceByDom(document.getElementById("chart-" + name));
  const o = c && c.getOption();
  out[name] = o ? o.series.map((s) => ({name: s.name, data: s.data})) : null;
  if (o) out[name + ":x"] = (o.xAxis[0].type === "category" ? o.xAxis[0].data : o.yAxis[0].data);
}
return out;
"""


@contextmanager
def serve(app: ASGIApp, port: int) -> Iterator[str]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="console-test-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def _open(driver: Any, base: str, key: str) -> None:  # noqa: F811
    driver.get(f"{base}/ui/")
    _by_id(driver, "key").send_keys(key)
    _by_id(driver, "key-save").click()


def _shot(driver: Any, tmp_path: Path, name: str) -> Path:  # noqa: F811
    shot = tmp_path / name
    driver.save_screenshot(str(shot))
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, SCREENSHOTS / name)
    assert shot.stat().st_size > 20_000
    return shot


def _rows(driver: Any) -> list[str]:  # noqa: F811
    ids: list[str] = driver.execute_script(
        "return [...document.querySelectorAll('#inc-rows tr')].map((r) => r.dataset.incident)"
    )
    return ids


def _key(driver: Any, keys: str) -> None:  # noqa: F811
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(driver).send_keys(keys).perform()


# --------------------------------------------------------------------------------------- a store from a replay
@pytest.fixture(scope="module")
def field(tmp_path_factory: pytest.TempPathFactory) -> FieldStore:
    vtest: ReplayResult = harness.vtest_replay(tmp_path_factory.mktemp("vtest"))
    assert vtest.media_root is not None
    url = f"sqlite:///{(tmp_path_factory.mktemp('store') / 'store.db').as_posix()}"
    return fill_store(url, vtest, vtest.media_root)


@dataclass
class Console:
    base: str
    keys: dict[Role, str]
    recorder: Recorder
    app: Any


SCHEDULE = {"timezone": "Asia/Shanghai", "windows": [{"start": "00:00", "end": "24:00"}]}
NOW = datetime.now(UTC).replace(microsecond=0)
LISTED = 45  # incidents of the paging fixture besides the one with a clip


@pytest.fixture
def field_console(field: FieldStore, tmp_path: Path) -> Iterator[Console]:
    """The replayed store behind a served app, its two cameras configured (named, in Asia/Shanghai)."""
    config_dir = tmp_path / "cameras"
    config_dir.mkdir()
    camera = harness.merged_camera(harness.VTEST_CAMERAS)
    harness.write_camera(camera, config_dir / "a.yaml", name="南门 施工通道", schedule=SCHEDULE)
    second = {"id": SECOND_CAMERA, "site": SECOND_SITE, "name": "北门 仓库"}
    harness.write_camera(camera, config_dir / "b.yaml", schedule=SCHEDULE, **second)
    port = _free_port()
    settings = make_settings(
        tmp_path,
        field.url,
        config_dir=config_dir,
        media_root=field.media_root,
        webhook_dispatcher=False,
        public_base_url=f"http://127.0.0.1:{port}",
    )
    app = create_app(settings)
    keys = add_keys(store_of(app))
    recorder = Recorder(app)
    with serve(recorder, port) as base:
        yield Console(base, keys, recorder, app)


@pytest.fixture
def console(tmp_path: Path, sqlite_url: str, repo_root: Path, sample_clip: Path) -> Iterator[Console]:
    """demo-gate with one incident with a real snapshot and clip, and LISTED more (three pages)."""
    config_dir = tmp_path / "cameras"
    config_dir.mkdir()
    text = (repo_root / "camera_configs" / "demo-gate.yaml").read_text(encoding="utf-8")
    (config_dir / "demo-gate.yaml").write_text(text.replace("sample_media/vtest.mp4", str(sample_clip)), "utf-8")
    port = _free_port()
    settings = make_settings(
        tmp_path,
        sqlite_url,
        config_dir=config_dir,
        webhook_dispatcher=False,
        public_base_url=f"http://127.0.0.1:{port}",
    )
    app = create_app(settings)
    store = store_of(app)
    keys = add_keys(store)
    seed_incident(store, settings.media_dir, sample_clip, "inc-clip", zone="fire_lane", rule="exit_blocked")
    for i in range(LISTED):
        started = NOW - timedelta(minutes=i + 1)
        fields = {"camera_id": "demo-gate", "site": "demo-site", "rule": "intrusion", "zone": "footpath"}
        apply_event(store, make_event(f"inc-{i:02d}", 0, started_at=started, **fields))
    recorder = Recorder(app)
    with serve(recorder, port) as base:
        yield Console(base, keys, recorder, app)


def _i18n(driver: Any) -> dict[str, Any]:  # noqa: F811
    result: dict[str, Any] = driver.execute_async_script(IMPORT_I18N)
    return result


def _assert_translated(driver: Any, catalogue: set[str]) -> None:  # noqa: F811
    used = set(driver.execute_script(PAGE_KEYS))
    assert used and used <= catalogue, used - catalogue
    state = _i18n(driver)
    assert state["missing"] == [], state["missing"]
    text = driver.execute_script("return document.body.innerText")
    shown = [k for k in catalogue if "." in k and k in text]
    assert not shown, shown  # no raw key visible


# ------------------------------------------------------------------------------------------------------ tests
@pytest.mark.browser
@pytest.mark.timeout(120)
def test_both_languages_render_with_no_untranslated_key(driver: Any, console: Console, tmp_path: Path) -> None:  # noqa: F811
    _open(driver, console.base, console.keys[Role.operator])
    _wait(driver, lambda d: len(_rows(d)) == PAGE_SIZE, "first page")
    state = _i18n(driver)
    assert state["lang"] == "zh-CN"  # the browser prefers Chinese
    catalogue = set(state["en"])
    assert catalogue == set(state["zh"]), catalogue ^ set(state["zh"])
    assert _by_id(driver, "tab-incidents").text == "事件"
    row = driver.find_element("css selector", "tr[data-incident='inc-00']")
    assert "区域入侵" in row.text and "新事件" in row.text
    _assert_translated(driver, catalogue)
    _shot(driver, tmp_path, "console-languages-zh.png")
    for tab in ("tab-dashboard", "tab-zones", "tab-incidents"):
        _by_id(driver, tab).click()
        _assert_translated(driver, catalogue)

    _by_id(driver, "lang-toggle").click()
    assert _i18n(driver)["lang"] == "en" and _by_id(driver, "tab-incidents").text == "Incidents"
    row = driver.find_element("css selector", "tr[data-incident='inc-00']")
    assert "Intrusion" in row.text and "new" in row.text
    for tab in ("tab-dashboard", "tab-zones", "tab-incidents"):
        _by_id(driver, tab).click()
        _assert_translated(driver, catalogue)
    _shot(driver, tmp_path, "console-languages-en.png")
    driver.refresh()  # the choice sticks (localStorage)
    _wait(driver, lambda d: len(_rows(d)) == PAGE_SIZE, "first page again")
    assert _i18n(driver)["lang"] == "en" and _by_id(driver, "tab-incidents").text == "Incidents"


@pytest.mark.browser
@pytest.mark.timeout(400)
def test_dashboard_charts_render_from_a_replayed_store(
    driver: Any,  # noqa: F811
    field: FieldStore,
    field_console: Console,
    tmp_path: Path,
) -> None:
    stats = httpx.get(
        f"{field_console.base}/v1/stats",
        params=[("group_by", "day,rule"), ("tz", "Asia/Shanghai")],
        headers=auth(field_console.keys[Role.viewer]),
    ).json()
    assert stats["total"] == len(field.incidents) > 0
    _open(driver, field_console.base, field_console.keys[Role.viewer])
    _wait(driver, lambda d: len(_rows(d)) == len(field.incidents), "the replay's incidents listed")
    thumbs = "return [...document.querySelectorAll('#inc-rows img')].every((i) => i.complete && i.naturalWidth > 0)"
    _wait(driver, lambda d: d.execute_script(thumbs), "every snapshot shown", timeout=20)
    _shot(driver, tmp_path, "console-incidents-zh.png")
    _by_id(driver, "tab-dashboard").click()
    _wait(driver, lambda d: _by_id(d, "dashboard").get_attribute("data-ready") == "1", "charts drawn", timeout=20)
    series = driver.execute_script(CHART_SERIES, CHARTS)
    for name in CHARTS:
        assert series[name], name
        values = [v for s in series[name] for v in s["data"] if isinstance(v, int | float)]
        assert any(v > 0 for v in values), (name, series[name])
    # per day per rule: one stacked series per rule (names in zh-CN), the same counts as the API's
    per_day = {s["name"]: sum(s["data"]) for s in series["per-day"]}
    by_rule: dict[str, int] = {}
    for row in next(g for g in stats["groups"] if g["by"] == ["day", "rule"])["rows"]:
        by_rule[row["key"][1]] = by_rule.get(row["key"][1], 0) + row["count"]
    assert "区域入侵" in per_day and per_day["区域入侵"] == by_rule["intrusion"]
    assert sum(per_day.values()) == stats["total"]
    # the false positives marked by the operators: intrusion's rate is 2 of 2 judged
    fp = dict(zip(series["fp-rule:x"], series["fp-rule"][0]["data"], strict=True))
    assert fp["区域入侵"] == 100
    cameras = series["top-cameras:x"]
    assert {"南门 施工通道", "北门 仓库"} <= set(cameras)
    assert "Asia/Shanghai" in _by_id(driver, "dash-total").text
    driver.set_window_size(1280, 1500)  # the whole dashboard in one picture (the charts follow the window)
    _wait(driver, lambda d: d.execute_script("return innerHeight") > 1200, "taller window")
    time.sleep(0.5)
    _shot(driver, tmp_path, "console-dashboard-zh.png")


@pytest.mark.browser
@pytest.mark.timeout(120)
def test_handling_elsewhere_updates_the_list_through_sse(driver: Any, console: Console) -> None:  # noqa: F811
    _open(driver, console.base, console.keys[Role.platform])
    _wait(driver, lambda d: _by_id(d, "live").get_attribute("data-live") == "sse", "live stream")
    _wait(driver, lambda d: "inc-03" in _rows(d), "rows")
    driver.execute_script("window.stillThisPage = true")
    r = httpx.post(
        f"{console.base}/v1/incidents/inc-03/ack",
        json={"actor": "另一位值班员"},
        headers=auth(console.keys[Role.operator]),
    )
    assert r.status_code == 200
    selector = "tr[data-incident='inc-03'][data-handling='acknowledged']"
    row = _wait(driver, lambda d: d.find_elements("css selector", selector), "row updated by SSE", timeout=10)[0]
    assert "已确认" in row.text
    assert driver.execute_script("return window.stillThisPage") is True  # no reload
    # a new incident appears on the first page through the stream too
    store = store_of(console.app)
    apply_event(
        store,
        make_event(
            "inc-new", 0, camera_id="demo-gate", site="demo-site", rule="no_helmet", started_at=datetime.now(UTC)
        ),
    )
    _wait(driver, lambda d: _rows(d)[:1] == ["inc-new"], "new incident listed", timeout=10)
    assert driver.execute_script("return window.stillThisPage") is True
    seen = [p for _m, p, _r in console.recorder.seen if p == "/v1/events"]
    assert len(seen) == 1  # one stream, no reconnects


@pytest.mark.browser
@pytest.mark.timeout(120)
def test_keyboard_handling_bulk_ack_and_pagination(driver: Any, console: Console) -> None:  # noqa: F811
    _open(driver, console.base, console.keys[Role.operator])  # a site manager's key: the list is live too
    _wait(driver, lambda d: len(_rows(d)) == PAGE_SIZE, "first page")
    _wait(driver, lambda d: _by_id(d, "live").get_attribute("data-live") == "sse", "live stream")
    first = _rows(driver)
    assert first == [f"inc-{i:02d}" for i in range(PAGE_SIZE)]  # newest first
    _key(driver, "n")
    _wait(driver, lambda d: _rows(d) == [f"inc-{i:02d}" for i in range(PAGE_SIZE, 2 * PAGE_SIZE)], "second page")
    _key(driver, "n")
    _wait(driver, lambda d: _rows(d) == [*(f"inc-{i:02d}" for i in range(2 * PAGE_SIZE, LISTED)), "inc-clip"], "last")
    assert not _by_id(driver, "inc-next").is_enabled()
    _key(driver, "p")
    _key(driver, "p")
    _wait(driver, lambda d: _rows(d) == first, "back to the first page")

    focused = "return document.activeElement.dataset.incident"
    _key(driver, "jj")
    assert driver.execute_script(focused) == "inc-01"
    assert "focused" in driver.find_element("css selector", "tr[data-incident='inc-01']").get_attribute("class")
    _key(driver, "a")
    _wait(
        driver,
        lambda d: d.find_elements("css selector", "tr[data-incident='inc-01'][data-handling='acknowledged']"),
        "a acknowledges",
    )
    _key(driver, "jf")  # inc-02: false positive
    _key(driver, "jr")  # inc-03: resolved
    _key(driver, "jxjx")  # select inc-04 and inc-05
    _wait(driver, lambda d: _by_id(d, "bulk-ack").is_enabled(), "bulk button")
    driver.find_element("css selector", "tr[data-incident='inc-07'] input.sel").click()
    _by_id(driver, "bulk-ack").click()
    _wait(driver, lambda d: _by_id(d, "inc-msg").text == "已确认 3 条", "bulk result")
    h = auth(console.keys[Role.viewer])
    handling = {
        i: httpx.get(f"{console.base}/v1/incidents/{i}", headers=h).json()["handling"]
        for i in ("inc-01", "inc-02", "inc-03", "inc-04", "inc-05", "inc-06", "inc-07")
    }
    assert handling == {
        "inc-01": "acknowledged",
        "inc-02": "false_positive",
        "inc-03": "resolved",
        "inc-04": "acknowledged",
        "inc-05": "acknowledged",
        "inc-06": "new",
        "inc-07": "acknowledged",
    }
    acted = [(m, p) for m, p, _r in console.recorder.seen if m == "POST"]
    assert len(acted) == 6  # one handling call per incident


PLAYING = """
const v = document.getElementById("player-video");
return {open: document.getElementById("player").open, t: v.currentTime, w: v.videoWidth, src: v.currentSrc,
        err: v.error && v.error.code};
"""


@pytest.mark.browser
@pytest.mark.timeout(120)
def test_the_player_streams_the_clip_with_range_requests(driver: Any, console: Console, tmp_path: Path) -> None:  # noqa: F811
    from selenium.webdriver.support.ui import Select

    _open(driver, console.base, console.keys[Role.viewer])
    rule_option = "#f-rule option[value='exit_blocked']"
    _wait(driver, lambda d: d.find_elements("css selector", rule_option), "the rule filter lists the camera's rules")
    Select(_by_id(driver, "f-rule")).select_by_value("exit_blocked")
    _wait(driver, lambda d: _rows(d) == ["inc-clip"], "filtered to the incident with a clip")
    driver.find_element("css selector", "tr[data-incident='inc-clip'] button[data-clip]").click()
    driver.execute_script("const v = document.getElementById('player-video'); v.muted = true; v.play()")
    state = _wait(driver, lambda d: (s := d.execute_script(PLAYING))["t"] > 1.0 and s, "the clip plays", timeout=30)
    assert state["open"] and state["w"] == 768 and state["err"] is None, state
    assert state["src"].startswith(console.base) and "exp=" in state["src"] and "sig=" in state["src"]  # no blob:
    clip = [r for r in console.recorder.seen if r[1] == "/v1/incidents/inc-clip/clip.mp4"]
    assert clip and any(rng is not None and rng.startswith("bytes=") for _m, _p, rng in clip), clip
    driver.execute_script("document.getElementById('player-video').pause()")
    _shot(driver, tmp_path, "console-player-zh.png")
    _key(driver, "\ue00c")  # Escape closes the player and stops the clip
    _wait(driver, lambda d: not d.execute_script(PLAYING)["open"], "player closed")
