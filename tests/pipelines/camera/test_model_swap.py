"""The pipeline's hot-swap hook: new detectors land between two frames, requested from another thread; no frame is
skipped or analysed twice, and the camera's incidents, tracker and rate clocks go on."""

from __future__ import annotations

import threading

import numpy as np
import numpy.typing as npt

from pipelines.camera.pipeline import CameraPipeline, ModelSlot
from pipelines.events import EventType, IncidentEvent
from pipelines.rules.factory import CameraRules
from tests.pipelines.rules.scenario import WHOLE, camera, dets, frame, person
from vision.motion import MotionGateConfig
from vision.types import Detections, Frame

FPS = 5.0
N = 60
SWAP_AT = 20


class _Recording:
    """A detector that sees one person and records the frames it ran on (by the order of its calls)."""

    name = "people"

    def __init__(self) -> None:
        self.calls = 0

    def detect(self, image: npt.NDArray[np.uint8]) -> Detections:
        self.calls += 1
        return dets(person(-1, 300.0, 300.0))


class _Sink:
    def __init__(self) -> None:
        self.events: list[IncidentEvent] = []

    def handle(self, event: IncidentEvent) -> None:
        self.events.append(event)


def test_models_swap_between_frames_without_dropping_any() -> None:
    cam = camera([{"name": "yard", "polygon": WHOLE}], [{"type": "intrusion", "zones": ["yard"]}])
    old, new, sink = _Recording(), _Recording(), _Sink()
    first = ModelSlot(old, interval_s=0.0)
    pipeline = CameraPipeline(cam, [first], CameraRules(cam), sinks=[sink], gate=MotionGateConfig(enabled=False))
    frames = [frame(round(i / FPS, 6)) for i in range(N)]
    seen_by: list[str] = []

    def on_frame(f: Frame) -> None:
        seen_by.append("new" if new.calls else "old")
        if pipeline.stats.frames == SWAP_AT:  # another thread asks, as a worker's swap thread does
            slot = ModelSlot(new, interval_s=0.0)
            asker = threading.Thread(target=pipeline.at_frame_boundary, args=(lambda: pipeline.replace_models([slot]),))
            asker.start()
            asker.join()

    pipeline.run(frames, threading.Event(), on_frame=on_frame)
    assert pipeline.stats.frames == N
    assert (old.calls, new.calls) == (SWAP_AT, N - SWAP_AT)  # every frame analysed once, by one version
    assert seen_by == ["old"] * SWAP_AT + ["new"] * (N - SWAP_AT)
    assert pipeline.detect.slots[0].detector is new and pipeline.models[0].detector is new
    opened = [e for e in sink.events if e.type is EventType.opened]
    assert len(opened) == 1  # the incident that opened before the swap went on through it
    closed = [e for e in sink.events if e.type is EventType.closed]
    assert [e.id for e in closed] == [opened[0].id]  # closed once, at the end of the source
