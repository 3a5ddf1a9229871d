"""`CameraPipeline.run`'s exit modes (finish, hand over, abandon) and the rule facts the pipeline reads from rules.

A scripted detector puts one person in the whole-frame zone on every frame, so an intrusion incident is open when
the run is stopped; what the sinks and the evidence hook see afterwards depends on how the run ends.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from pipelines.camera.pipeline import HANDOVER_FLUSH_S, WARMUP_S, CameraPipeline, Exit, ModelSlot, StopSignal
from pipelines.events import EventType, IncidentEvent
from pipelines.incidents.manager import Incident, IncidentKey
from pipelines.rules.base import Violation
from pipelines.rules.factory import CameraRules
from pipelines.rules.health import HealthChecks
from tests.pipelines.rules.scenario import WHOLE, camera, dets, frame, person
from vision.motion import StaticSceneConfig
from vision.types import Detections, Frame, ImageArray

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

    def on_frame(
        self,
        frame: Frame,
        violations: Sequence[Violation],
        live: Sequence[Incident],
        images: Mapping[IncidentKey, ImageArray] | None = None,
    ) -> None:
        pass

    def on_idle(self, frame: Frame, violations: Sequence[Violation]) -> None:
        pass

    def on_events(self, events: Sequence[IncidentEvent], frame: Frame | None) -> list[IncidentEvent]:
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


# -- camera health: polls without a frame -----------------------------------------------------------------------------


def test_silent_source_opens_camera_offline_and_leaves_other_incidents_alone() -> None:
    """`idle` (a poll without a frame) moves only the health incidents: the open intrusion stays open through the
    outage, camera_offline opens after offline_after_s and closes once frames flowed for offline_clear_s."""
    health = {"offline_after_s": 3, "offline_clear_s": 1, "tamper": False}
    cam = camera([{"name": "yard", "polygon": WHOLE}], [{"type": "intrusion", "zones": ["yard"]}], health=health)
    sink = _Sink()
    checks = HealthChecks(cam.health)
    pipeline = CameraPipeline(cam, [ModelSlot(_OnePerson())], CameraRules(cam), sinks=[sink], health=checks)
    checks.start(0.0)
    for f in _frames(20):  # 4 s of frames, 5 a second: the intrusion opens
        pipeline.process(f)
    assert [(e.rule, e.type) for e in sink.events] == [("intrusion", EventType.opened)]
    base = time.monotonic()  # the last frame's arrival, as `process` saw it
    events = [e for k in range(1, 20) for e in pipeline.idle(base + k * 0.5)]  # 9.5 s of silence
    assert [(e.rule, e.type.value, e.labels) for e in events] == [("camera_offline", "opened", ["no_frames"])]
    assert events[0].offset_s == pytest.approx(3.8 + 3.0, abs=0.6)  # the last frame's pts + offline_after_s
    assert {i.violation.rule for i in pipeline.incidents.live()} == {"intrusion", "camera_offline"}
    sink.events.clear()
    for f in _frames(60)[40:]:  # frames again (pts 8-12 s): up after a second of them
        pipeline.process(f)
        time.sleep(0.06)
    assert [(e.rule, e.type.value) for e in sink.events] == [("camera_offline", "closed")]
    assert [i.violation.rule for i in pipeline.incidents.live()] == ["intrusion"]
