"""`detect: {mode: regions}` on real footage gives the incidents whole frames give.

The end-to-end checks of test_camera_e2e.py (van → one exit_blocked; hand-labelled crossings → intrusion incidents
within ±1.5 s; quiet zone → none; the night clip → none; no_helmet on the bus clip) run here again, unchanged, on a
regions-mode replay, and the incident sets of a `full` and a `regions` replay of the sample clip are compared: no
missing and no extra incident.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.config.camera import CameraConfig, load_camera_config
from pipelines.config.detect import DetectMode
from pipelines.events import EventType, IncidentEvent
from tests.pipelines.camera import test_camera_e2e as base
from tests.pipelines.e2e import harness
from tests.pipelines.e2e.harness import ReplayResult


def _mode(camera: CameraConfig, mode: DetectMode) -> CameraConfig:
    return camera.model_copy(update={"detect": camera.detect.model_copy(update={"mode": mode})})


@pytest.fixture(scope="module")
def modes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ReplayResult]:
    """The merged vtest camera replayed in both modes (the default one is the session's cached replay)."""
    cached = harness.vtest_replay(tmp_path_factory.mktemp("vtest"))
    other: DetectMode = "full" if cached.camera.detect.mode == "regions" else "regions"
    return {cached.camera.detect.mode: cached, other: harness.replay(_mode(cached.camera, other))}


def _incidents(events: list[IncidentEvent], type_: EventType) -> list[tuple[str, str | None, float]]:
    return sorted((e.rule, e.zone, e.offset_s) for e in events if e.type is type_)


def test_regions_and_full_replays_raise_the_same_incidents(modes: dict[str, ReplayResult]) -> None:
    full, regions = modes["full"], modes["regions"]
    assert full.stats.frames == regions.stats.frames >= 390
    for type_ in (EventType.opened, EventType.closed):
        want, got = _incidents(full.events, type_), _incidents(regions.events, type_)
        assert [i for i in want if i not in got] == [], f"missing in regions mode ({type_.value})"
        assert [i for i in got if i not in want] == [], f"extra in regions mode ({type_.value})"


def test_van_blocks_the_exit_once_until_the_end(modes: dict[str, ReplayResult]) -> None:
    base.test_van_blocks_the_exit_once_until_the_end(modes["regions"])


def test_intrusion_incidents_match_the_hand_labelled_crossings(modes: dict[str, ReplayResult]) -> None:
    base.test_intrusion_incidents_match_the_hand_labelled_crossings(modes["regions"])


def test_quiet_zone_has_no_incident(modes: dict[str, ReplayResult]) -> None:
    base.test_quiet_zone_has_no_incident(modes["regions"])


def test_people_free_clip_gives_no_person_incident(negative_clip: Path) -> None:
    camera = load_camera_config(harness.E2E_DIR / "whole_frame_intrusion.yaml", check_files=False)
    result = harness.replay(_mode(camera, "regions"), source=str(negative_clip))
    assert result.stats.frames >= 35
    assert result.stats.inferences > 0
    assert result.events == []


def test_no_helmet_on_bare_headed_pedestrians(test_images: Path, tmp_path: Path) -> None:
    clip = base._still_clip(test_images / "bus.jpg", tmp_path / "bus.mp4")
    camera = load_camera_config(harness.E2E_DIR / "helmet_bus.yaml", check_files=False)
    result = harness.replay(_mode(camera, "regions"), source=str(clip))
    assert set(result.models) == {"coco-yolov3-tiny", "helmet"}
    opened = result.of(rule="no_helmet", type_=EventType.opened)
    assert opened, f"no no_helmet incident; events {result.events}"
    assert {e.zone for e in opened} == {"pavement"}, "the facade zone holds nobody"
    assert all(e.track_ids and "person" in e.labels for e in opened)
    assert all(e.confidence >= 0.5 for e in opened)
    assert len({tuple(e.track_ids) for e in opened}) == len(opened)
