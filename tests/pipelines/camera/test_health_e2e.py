"""Camera tamper end to end on real footage, through build_runtime → CameraPipeline → incidents → evidence, with no
detector (a camera without rules: the health rules are on by default).

The tamper clip is the sample footage with four episodes (covered, defocused, moved by a shift, moved by a rotation;
tests/fixtures/tamper_clips.py, made by ffmpeg at test time): one camera_tamper incident per episode with its reason,
a reference | current snapshot and a clip. The unaltered clip and the night clip raise nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PIL import Image

from pipelines.config.camera import CameraConfig
from pipelines.events import EventType
from tests.fixtures.tamper_clips import EPISODES
from tests.pipelines.e2e import harness

#: Short times for a 79.5 s clip (defaults: learn 10 s, tamper after 20 s, clear after 5 s).
FAST = {"tamper_after_s": 3, "tamper_clear_s": 2, "tamper_thresholds": {"learn_s": 4}}


def _camera(source: Path, health: dict[str, Any] | None = None) -> CameraConfig:
    return CameraConfig.model_validate(
        {"id": "tamper-cam", "site": "s", "name": "tamper", "streams": {"detect": str(source)}, "health": health or {}}
    )


def test_one_incident_per_tamper_episode_with_its_reason_and_evidence(
    tamper_episodes_clip: Path, tmp_path: Path
) -> None:
    result = harness.replay(_camera(tamper_episodes_clip, FAST), media_root=tmp_path / "media")
    assert {e.rule for e in result.events} == {"camera_tamper"}
    opened = result.of(type_=EventType.opened)
    closed = {e.id: e for e in result.of(type_=EventType.closed)}
    assert len(opened) == len(EPISODES) and set(closed) == {e.id for e in opened}
    for event, (start, end, reason) in zip(sorted(opened, key=lambda e: e.offset_s), EPISODES, strict=True):
        assert event.labels == [reason]
        assert event.severity == "warning"
        assert start + 3.0 <= event.offset_s <= start + 5.0, (reason, event.offset_s)
        assert end <= closed[event.id].offset_s <= end + 5.0, (reason, closed[event.id].offset_s)
        folder = tmp_path / "media" / Path(event.snapshot_url or "").parent
        snapshot = Image.open(folder / "snapshot.jpg")
        assert snapshot.size == (2 * 768 + 8, 576), "reference and current view side by side"
        clip = closed[event.id].clip_url
        assert clip is not None and (tmp_path / "media" / clip).stat().st_size > 10_000
        manifest = json.loads((folder / "manifest.json").read_text())
        assert manifest["rule"] == "camera_tamper" and manifest["clips"]


def test_unaltered_clip_raises_nothing_even_with_short_times(sample_clip: Path) -> None:
    result = harness.replay(_camera(sample_clip, FAST))
    assert result.stats.frames >= 390
    assert result.events == []


def test_night_clip_raises_nothing_with_the_defaults(night_loop_clip: Path) -> None:
    result = harness.replay(_camera(night_loop_clip))
    assert result.stats.frames >= 370  # 76 s at 5 fps
    assert result.events == []
