"""The console's clip player on a long incident: it lists the incident's clips, each button plays one.

Same browser harness as tests/api/test_ui.py (its `served` and `driver` fixtures): an incident with two real clips
(`clip-000.mp4`, `clip-001.mp4`, cut from the sample clip) is added to the served app's store and media root.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from api.auth import Role
from api.store.db import Store
from api.store.incidents import apply_event
from tests.api.conftest import make_event
from tests.api.test_ui import Served, _by_id, _open_with_key, _wait, driver, served  # noqa: F401  (fixtures)
from tests.vision.media.packets_util import demux
from vision.media.clip import select_clip_packets, write_clip

PLAYER = """
const v = document.getElementById("player-video");
return {open: document.getElementById("player").open, src: v.currentSrc || v.src,
        clips: [...document.querySelectorAll("#player-clips button")].map((b) => b.textContent)};
"""


def _seed_long_incident(tmp_path: Path, sqlite_url: str, sample_clip: Path) -> None:
    folder = tmp_path / "data" / "media" / "inc-long"  # the served app's media root (make_settings' data_dir)
    params, packets = demux(sample_clip)
    for i, (start, end) in enumerate([(0.0, 4.0), (4.0, 8.0)]):
        assert not write_clip(
            select_clip_packets(packets, start, end), params, folder / f"clip-{i:03d}.mp4"
        ).file.missing
    store = Store(sqlite_url, run_migrations=False)
    try:
        event = make_event("inc-long", 0, camera_id="demo-gate", site="demo-site", clip_url="inc-long/clip-000.mp4")
        apply_event(store, event)
    finally:
        store.dispose()


@pytest.mark.browser
@pytest.mark.timeout(60)
def test_clip_button_lists_every_clip_of_a_long_incident(
    driver: Any,  # noqa: F811
    served: Served,  # noqa: F811
    tmp_path: Path,
    sqlite_url: str,
    sample_clip: Path,
) -> None:
    _seed_long_incident(tmp_path, sqlite_url, sample_clip)
    from selenium.webdriver.common.by import By

    _open_with_key(driver, served, Role.viewer)
    button = "tr[data-incident='inc-long'] button[data-clip]"
    _wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, button), "the row's clip button")[0].click()
    state = _wait(driver, lambda d: (s := d.execute_script(PLAYER))["clips"] and s, "one button per clip")
    assert state["open"] and state["clips"] == ["视频 1/2", "视频 2/2"]
    assert "/v1/incidents/inc-long/clip.mp4?exp=" in state["src"]  # the signed link, streamed (no blob)
    driver.find_elements(By.CSS_SELECTOR, "#player-clips button")[1].click()
    _wait(driver, lambda d: "/v1/incidents/inc-long/clips/1.mp4?exp=" in d.execute_script(PLAYER)["src"], "clip 2")
    assert _by_id(driver, "error").text == ""
