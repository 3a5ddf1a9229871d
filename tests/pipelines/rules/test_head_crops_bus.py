"""no_helmet with the real helmet model on person crops vs on whole frames: the same incidents on the e2e bus clip.

The pipelines are wired as `pipelines.camera.assemble.build_runtime` wires them (same models, rates, tracker, motion
gate); the crop one leaves the helmet model out of the frame's detectors and gives it to the rules
(`factory.head_model`), as the composition root does in crop mode.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.camera.assemble import resolve_models, source_config
from pipelines.camera.pipeline import CameraPipeline, ModelSlot
from pipelines.config.camera import CameraConfig, load_camera_config
from pipelines.events import EventType, IncidentEvent
from pipelines.rules.factory import CameraRules, head_model
from pipelines.rules.no_helmet import NoHelmet
from tests.pipelines.camera.test_camera_e2e import _still_clip
from tests.pipelines.e2e.harness import E2E_DIR, registry
from vision.sources import VideoSource
from vision.types import Frame

pytestmark = pytest.mark.export  # the optional helmet model


def _replay(camera: CameraConfig, frames: list[Frame], crops: bool) -> tuple[list[IncidentEvent], CameraPipeline]:
    reg = registry()
    names = resolve_models(camera, reg)
    heads = head_model(camera, names, reg) if crops else None
    assert not crops or heads is not None
    frame_models = [n for n in names if heads is None or n != heads.name]
    slots = [ModelSlot(reg.detector(n), 1.0 / camera.model_fps.get(n, camera.analysis_fps)) for n in frame_models]
    events: list[IncidentEvent] = []

    class Collect:
        def handle(self, event: IncidentEvent) -> None:
            events.append(event)

    rules = CameraRules(camera, heads=heads)
    pipeline = CameraPipeline(camera, slots, rules, sinks=[Collect()], tracker=camera.tracker, gate=camera.motion_gate)
    for frame in frames:
        pipeline.process(frame)
    pipeline.finish(frames[-1])
    return events, pipeline


def test_crops_give_the_same_no_helmet_incidents_on_the_bus_clip(test_images: Path, tmp_path: Path) -> None:
    if not registry().is_built("helmet"):
        pytest.skip("the optional helmet model is not built (`make models-optional`)")
    camera = load_camera_config(E2E_DIR / "helmet_bus.yaml", check_files=False)
    clip = _still_clip(test_images / "bus.jpg", tmp_path / "bus.mp4")
    with VideoSource(str(clip), source_config(camera, realtime=False, loop=False), camera_id=camera.id) as source:
        frames = list(source)
    full, _ = _replay(camera, frames, crops=False)
    cropped, pipeline = _replay(camera, frames, crops=True)

    def keys(events: list[IncidentEvent]) -> list[tuple[str, str | None, tuple[int, ...], str, float]]:
        return sorted((e.rule, e.zone, tuple(e.track_ids), e.type.value, round(e.offset_s, 1)) for e in events)

    assert keys(cropped) == keys(full)
    opened = [e for e in cropped if e.type is EventType.opened]
    assert len(opened) == 2 and {e.zone for e in opened} == {"pavement"}
    assert all(e.confidence >= 0.5 and "person" in e.labels for e in opened)
    (rule,) = pipeline.rules.rules
    assert isinstance(rule, NoHelmet) and rule.crops is not None
    assert rule.crops.runs <= 2 and rule.crops.crops <= 6, "people are not re-checked on every analysed frame"


def test_the_camera_sets_how_small_crops_are_enlarged() -> None:
    camera = load_camera_config(E2E_DIR / "helmet_bus.yaml", check_files=False)
    reg = registry()
    for px in (0, 96, 128):
        cam = camera.model_copy(update={"detect": camera.detect.model_copy(update={"head_crop_px": px})})
        heads = head_model(cam, resolve_models(cam, reg), reg)
        assert heads is not None and heads.detector.sizing.min_crop == px  # type: ignore[attr-defined]
