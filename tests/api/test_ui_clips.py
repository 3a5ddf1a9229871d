"""The web UI's Clip button on a long incident: the first click lists its clips, each button opens one.

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

# The list re-renders while the page settles (a new row replaces the old one): read and click in one script, and
# click the Clip button of whichever row is current until its clips are listed.
EXPAND = """
const row = document.querySelector("tr[data-incident='inc-long']");
if (!row) return null;
const labels = [...row.querySelectorAll("button")].map((b) => b.textContent).filter((t) => t.startsWith("Clip"));
if (labels.length === 1 && !row.dataset.clicked) {
  row.dataset.clicked = "1";
  [...row.querySelectorAll("button")].find((b) => b.textContent === "Clip").click();
}
return labels;
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
    _open_with_key(driver, served, Role.viewer)
    _wait(driver, lambda d: d.execute_script(EXPAND) == ["Clip 1/2", "Clip 2/2"], "one button per clip")
    windows = len(driver.window_handles)
    second = "[...document.querySelectorAll(\"tr[data-incident='inc-long'] button\")].at(-1).click()"
    driver.execute_script(second)
    _wait(driver, lambda d: len(d.window_handles) == windows + 1, "the second clip opens")
    assert _by_id(driver, "error").text == ""
