"""Shadow runs (pipelines/camera/shadow.py): the shadow pipeline beside production on the same frames, at its own
rate, its events marked; a slow candidate skips frames and never holds production up (lockstep waits instead); the
shadow ends the way production's run ends; which models a shadow run uses (assemble.resolve_shadow_models).

The detectors are scripted (one person in the whole-frame zone), as in test_pipeline.py: what is under test is the
branch around them. The model choice is tested against real model cards.
"""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from pipelines.camera.assemble import PipelineConfigError, resolve_models, resolve_shadow_models
from pipelines.camera.pipeline import CameraPipeline, Exit, ModelSlot, StopSignal
from pipelines.camera.shadow import ShadowBranch, ShadowTag
from pipelines.config.camera import CameraConfig, load_camera_config
from pipelines.events import EventType, IncidentEvent
from pipelines.rules.factory import CameraRules
from tests.pipelines.rules.scenario import WHOLE, camera, dets, frame, person
from vision.detect.registry import ModelRegistry
from vision.types import Detections, Frame

ROOT = Path(__file__).resolve().parents[3]
FPS = 5.0


class _OnePerson:
    name = "scripted"

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.calls = 0

    def detect(self, image: npt.NDArray[np.uint8]) -> Detections:
        self.calls += 1
        time.sleep(self.delay_s)
        return dets(person(-1, 300.0, 300.0))


class _Sink:
    def __init__(self) -> None:
        self.events: list[IncidentEvent] = []
        self._lock = threading.Lock()

    def handle(self, event: IncidentEvent) -> None:
        with self._lock:
            self.events.append(event)


def _camera() -> CameraConfig:
    return camera([{"name": "yard", "polygon": WHOLE}], [{"type": "intrusion", "zones": ["yard"]}])


def _pair(
    rate: float, *, delay_s: float = 0.0, lockstep: bool = False
) -> tuple[CameraPipeline, ShadowBranch, _Sink, _OnePerson]:
    """Production and its shadow (candidate "cand"), both publishing to one sink as a composition root wires them."""
    cam, sink = _camera(), _Sink()
    candidate = _OnePerson(delay_s)
    shadow_pipe = CameraPipeline(cam, [ModelSlot(candidate)], CameraRules(cam), sinks=[ShadowTag("cand", sink)])
    shadow = ShadowBranch(shadow_pipe, "cand", rate_fps=rate, lockstep=lockstep)
    production = CameraPipeline(cam, [ModelSlot(_OnePerson())], CameraRules(cam), sinks=[sink], shadow=shadow)
    return production, shadow, sink, candidate


def _frames(n: int) -> list[Frame]:
    return [frame(round(i / FPS, 6)) for i in range(n)]


def test_the_shadow_raises_its_own_incidents_at_its_own_rate_marked_as_shadow() -> None:
    production, shadow, sink, _ = _pair(rate=2.0, lockstep=True)
    stats = production.run(_frames(50))  # 10 s at 5 fps
    assert stats.exit is Exit.FINISH
    assert shadow.stats.offered == shadow.stats.processed == shadow.pipeline.stats.frames == 20  # 2 fps of 10 s
    ours = [e for e in sink.events if not e.shadow]
    theirs = [e for e in sink.events if e.shadow]
    assert [e.type for e in ours] == [EventType.opened, EventType.closed]
    assert [e.type for e in theirs] == [EventType.opened, EventType.closed]  # closed when production finished
    assert {e.candidate for e in theirs} == {"cand"} and all(e.candidate is None for e in ours)
    assert {e.id for e in theirs}.isdisjoint({e.id for e in ours})
    assert '"shadow"' not in ours[0].model_dump_json()  # production's JSON is as it was before shadow runs
    assert IncidentEvent.model_validate_json(theirs[0].model_dump_json()) == theirs[0]


def test_a_slow_shadow_skips_frames_and_never_holds_production_up() -> None:
    production, shadow, sink, _ = _pair(rate=FPS, delay_s=0.15)
    waits = []
    for f in _frames(40):
        t = time.perf_counter()
        production.process(f)  # offers the frame to the shadow
        waits.append(time.perf_counter() - t)
    production.end(Exit.FINISH, f)
    # the shadow needs 0.15 s per frame (6 s for these 40): production never waits for it (a loaded machine aside)
    assert sum(waits) < 2.0 and sorted(waits)[20] < 0.05, waits
    s = shadow.stats
    assert s.offered == 40 and s.dropped > 10 and s.processed == s.offered - s.dropped and s.errors == 0
    assert [e.type for e in sink.events if not e.shadow] == [EventType.opened, EventType.closed]


def test_lockstep_hands_every_due_frame_to_the_shadow() -> None:
    production, shadow, _, _ = _pair(rate=FPS, delay_s=0.02, lockstep=True)
    production.run(_frames(40))
    assert shadow.stats.offered == shadow.stats.processed == shadow.pipeline.stats.frames == 40
    assert shadow.stats.dropped == 0


@pytest.mark.parametrize(("how", "shadow_closed"), [(Exit.HANDOVER, True), (Exit.ABANDON, False)])
def test_the_shadow_ends_with_production(how: Exit, shadow_closed: bool) -> None:
    """Hand-over: production's incident stays open for the next owner, the shadow (which keeps no state across
    owners) closes its own; abandon: neither publishes anything more."""
    production, shadow, sink, _ = _pair(rate=FPS, lockstep=True)
    stop = StopSignal()
    production.run(_frames(300), stop, on_frame=lambda f: stop.request(how) if f.pts >= 6 else None)
    closed = {e.shadow for e in sink.events if e.type is EventType.closed}
    assert closed == ({True} if shadow_closed else set())
    assert not shadow._thread or not shadow._thread.is_alive()
    shadow.offer(frame(100.0))  # after the end: ignored
    assert shadow.stats.offered == 31


def test_a_source_that_starts_over_starts_the_shadow_schedule_over() -> None:
    _, shadow, _, _ = _pair(rate=1.0)
    due = [shadow._due(t) for t in (0.0, 0.2, 0.4, 1.0, 1.2, 2.0, 0.0, 0.2, 1.0)]
    assert due == [True, False, False, True, False, True, True, False, True]


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The default card and file, the int8 variant's card (not built), and two candidate cards over the same file:
    `cand` (the same labels) and `cars` (cars only: it replaces the model that also gave the people)."""
    out = tmp_path_factory.mktemp("models")
    for name in ("coco-yolov3-tiny.yaml", "coco-yolov3-tiny.onnx", "coco-yolov3-tiny-int8.yaml"):
        shutil.copyfile(ROOT / "models" / name, out / name)
    card = (ROOT / "models" / "coco-yolov3-tiny.yaml").read_text(encoding="utf-8")
    card = card.replace("name: coco-yolov3-tiny\n", "name: cand\n", 1).replace("default: true", "default: false")
    (out / "cand.yaml").write_text(card, encoding="utf-8")
    cars = card.replace("name: cand\n", "name: cars\n", 1)
    for label in ("person", "bicycle", "bus", "truck"):
        cars = cars.replace(f"  {label}: {label}\n", "", 1)
    (out / "cars.yaml").write_text(cars.replace("  motorbike: motorcycle\n", "", 1), encoding="utf-8")
    return out


def test_the_candidate_replaces_the_production_model_that_serves_its_labels(models: Path) -> None:
    registry = ModelRegistry(models)
    cam = load_camera_config(ROOT / "camera_configs" / "demo-gate.yaml").model_copy(update={"shadow_models": ["cand"]})
    names = resolve_models(cam, registry)
    assert names == ["coco-yolov3-tiny"]
    assert resolve_shadow_models(cam, registry, names) == ["cand"]


@pytest.mark.parametrize(
    ("candidate", "message"),
    [
        ("nope", "shadow_models: model 'nope' has no model card"),
        ("coco-yolov3-tiny-int8", "build it with `safewatch models build coco-yolov3-tiny-int8`"),
        ("cars", "shadow run: rules.1 (intrusion): needs one of {person}"),
    ],
)
def test_a_candidate_that_cannot_run_is_a_config_error(models: Path, candidate: str, message: str) -> None:
    registry = ModelRegistry(models)
    cam = load_camera_config(ROOT / "camera_configs" / "demo-gate.yaml")
    cam = cam.model_copy(update={"shadow_models": [candidate]})
    with pytest.raises(PipelineConfigError, match="demo-gate") as err:
        resolve_shadow_models(cam, registry, resolve_models(cam, registry))
    assert message in str(err.value)
