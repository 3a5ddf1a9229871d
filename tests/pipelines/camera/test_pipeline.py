"""`CameraPipeline.run`'s exit modes (finish, hand over, abandon) and the rule facts the pipeline reads from rules.

A scripted detector puts one person in the whole-frame zone on every frame, so an intrusion incident is open when
the run is stopped; what the sinks and the evidence hook see afterwards depends on how the run ends.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from pipelines.camera.pipeline import HANDOVER_FLUSH_S, WARMUP_S, CameraPipeline, Exit, ModelSlot, StopSignal
from pipelines.events import EventType, IncidentEvent
from pipelines.incidents.manager import Incident
from pipelines.rules.base import Violation
from pipelines.rules.factory import CameraRules
from tests.pipelines.rules.scenario import WHOLE, camera, dets, frame, person
from vision.motion import StaticSceneConfig
from vision.types import Detections, Frame

FPS = 5.0
STOP_AFTER = 30  # frames: 6 s, past the intrusion's 2 s confirmation


class _OnePerson:
    name = "scripted"

    def detect(self, image: npt.NDArray[np.uint8]) -> Detections:
        return dets(person(-1, 300.0, 300.0))


class _Sink:
    def __init__(self) -> None:
        self.events: list[IncidentEvent] = []

    def handle(self, event: IncidentEvent) -> None:
        self.events.append(event)


class _Evidence:
    """An evidence hook that attaches nothing and records when it is closed."""

    def __init__(self) -> None:
        self.closed_with: list[float | None] = []

    def on_frame(self, frame: Frame, violations: Sequence[Violation], live: Sequence[Incident]) -> None:
        pass

    def on_events(self, events: Sequence[IncidentEvent], frame: Frame) -> list[IncidentEvent]:
        return list(events)

    def drain(self) -> list[IncidentEvent]:
        return []

    def close(self, timeout: float | None = None) -> list[IncidentEvent]:
        self.closed_with.append(timeout)
        return []


def _pipeline(rules: list[dict[str, Any]] | None = None) -> tuple[CameraPipeline, _Sink, _Evidence]:
    cam = camera([{"name": "yard", "polygon": WHOLE}], rules or [{"type": "intrusion", "zones": ["yard"]}])
    sink, evidence = _Sink(), _Evidence()
    pipeline = CameraPipeline(cam, [ModelSlot(_OnePerson())], CameraRules(cam), sinks=[sink], evidence=evidence)
    return pipeline, sink, evidence


def _frames(n: int) -> list[Frame]:
    return [frame(round(i / FPS, 6)) for i in range(n)]


def _run_until_stopped(stop: threading.Event, request: Exit | None) -> tuple[CameraPipeline, _Sink, _Evidence]:
    """Run on a long source and stop after STOP_AFTER frames (`request` None: a plain `Event.set`)."""
    pipeline, sink, evidence = _pipeline()

    def on_frame(f: Frame) -> None:
        if pipeline.stats.frames == STOP_AFTER:
            if isinstance(stop, StopSignal) and request is not None:
                stop.request(request)
            else:
                stop.set()

    pipeline.run(_frames(10 * STOP_AFTER), stop, on_frame=on_frame)
    assert pipeline.stats.frames == STOP_AFTER
    assert [e.type for e in sink.events][:1] == [EventType.opened], "the incident opened while running"
    return pipeline, sink, evidence


def test_finish_closes_open_incidents_and_flushes_evidence() -> None:
    pipeline, sink, evidence = _run_until_stopped(StopSignal(), Exit.FINISH)
    assert [e.type for e in sink.events] == [EventType.opened, EventType.closed]
    assert evidence.closed_with == [None]
    assert pipeline.stats.exit is Exit.FINISH
    assert pipeline.incidents.live() == []


def test_a_plain_event_and_the_end_of_the_source_finish() -> None:
    pipeline, sink, _ = _run_until_stopped(threading.Event(), None)
    assert [e.type for e in sink.events] == [EventType.opened, EventType.closed]
    assert pipeline.stats.exit is Exit.FINISH

    pipeline, sink, _ = _pipeline()
    stats = pipeline.run(_frames(STOP_AFTER), StopSignal())
    assert stats.exit is Exit.FINISH and stats.frames == STOP_AFTER
    assert [e.type for e in sink.events] == [EventType.opened, EventType.closed]


def test_hand_over_keeps_incidents_open_and_flushes_evidence() -> None:
    pipeline, sink, evidence = _run_until_stopped(StopSignal(), Exit.HANDOVER)
    assert [e.type for e in sink.events] == [EventType.opened], "no closed: the next owner continues the incident"
    assert evidence.closed_with == [HANDOVER_FLUSH_S]
    assert pipeline.stats.exit is Exit.HANDOVER
    assert len(pipeline.incidents.live()) == 1


def test_abandon_publishes_nothing_more() -> None:
    pipeline, sink, evidence = _run_until_stopped(StopSignal(), Exit.ABANDON)
    assert [e.type for e in sink.events] == [EventType.opened]
    assert evidence.closed_with == []
    assert pipeline.stats.exit is Exit.ABANDON


def test_the_last_request_wins() -> None:
    stop = StopSignal()
    stop.request(Exit.HANDOVER)
    stop.request(Exit.ABANDON)
    assert stop.is_set() and stop.exit is Exit.ABANDON


@pytest.mark.parametrize(
    ("rules", "gate_on"),
    [
        ([{"type": "intrusion", "zones": ["yard"]}], True),
        ([{"type": "smoke_fire"}], False),
        ([{"type": "line_crossing", "line": [[0.5, 0.0], [0.5, 1.0]]}], False),
        ([{"type": "line_crossing", "line": [[0.5, 0.0], [0.5, 1.0]], "enabled": False}], True),
    ],
)
def test_rules_that_need_every_frame_turn_the_motion_gate_off(rules: list[dict[str, Any]], gate_on: bool) -> None:
    pipeline, _, _ = _pipeline(rules)
    assert pipeline.gate.config.enabled is gate_on


def test_warmup_and_static_scene_come_from_the_rules() -> None:
    pipeline, _, _ = _pipeline(
        [
            {"type": "intrusion", "zones": ["yard"], "name": "in"},
            {"type": "loitering", "zones": ["yard"], "dwell_seconds": 5, "name": "loiter"},
            {"type": "exit_blocked", "zones": ["yard"], "dwell_seconds": 10, "static_scene": True, "name": "exit"},
        ]
    )
    assert pipeline.static is not None
    assert pipeline.warmup_s() == pytest.approx(
        {"in": WARMUP_S, "loiter": WARMUP_S + 5, "exit": WARMUP_S + 10 + StaticSceneConfig().dwell_s}
    )
    no_static, _, _ = _pipeline([{"type": "exit_blocked", "zones": ["yard"], "static_scene": False}])
    assert no_static.static is None
