"""The health rules' time logic (pipelines/rules/health.py): when camera_offline goes down and up again, what the
health block turns on, and the incident timings and keys it gives the pipeline. (The tamper readings themselves are
tested on real footage in tests/vision/health/, the whole path in tests/pipelines/camera/test_health_e2e.py.)"""

from __future__ import annotations

from typing import Any

import pytest

from pipelines.config.health import CAMERA_OFFLINE, CAMERA_TAMPER, HealthConfig
from pipelines.events import Severity
from pipelines.rules.health import FLOW_GAP_S, NO_FRAMES, CameraOffline, HealthChecks
from tests.pipelines.rules.scenario import camera


def _offline(**kw: Any) -> CameraOffline:
    rule = CameraOffline(HealthConfig(offline_after_s=10, offline_clear_s=3, **kw))
    rule.start(0.0)
    return rule


def test_no_frame_since_the_start_is_offline_after_offline_after_s() -> None:
    rule = _offline()
    assert rule.idle(9.9) == []
    [v] = rule.idle(10.0)
    assert (v.rule_key, v.rule, v.zone, v.subject, v.labels) == ("health:camera_offline", CAMERA_OFFLINE, None, None,
                                                                  (NO_FRAMES,))  # fmt: skip


def test_down_until_frames_flow_for_offline_clear_s() -> None:
    rule = _offline()
    for t in range(5):
        assert rule.frame(float(t)) == []
    assert rule.idle(13.9) == [] and rule.idle(14.0) != []  # last frame at 4 s
    assert rule.frame(20.0) != []  # the first frame back: still down
    assert rule.idle(20.4) != []
    assert rule.frame(21.0) != [] and rule.frame(22.0) != []
    assert rule.frame(23.0) == []  # frames for 3 s: up
    assert not rule.down


def test_a_gap_while_recovering_restarts_the_clear_timer() -> None:
    rule = _offline()
    rule.idle(30.0)
    rule.frame(31.0)
    rule.frame(33.0)
    back = 33.0 + FLOW_GAP_S + 0.1
    rule.frame(back)  # too long a gap: flowing again from here
    assert [rule.frame(back + t) != [] for t in (1.0, 2.0, 2.9, 3.0)] == [True, True, True, False]


def test_frames_alone_never_bring_a_camera_down() -> None:
    """A file replayed slower than real time has long gaps between frames but never polls empty."""
    rule = _offline()
    assert all(rule.frame(t * 30.0) == [] for t in range(10))


@pytest.mark.parametrize(
    ("health", "keys"),
    [
        ({}, {"health:camera_offline", "health:camera_tamper"}),
        ({"enabled": False}, set()),
        ({"offline": False}, {"health:camera_tamper"}),
        ({"tamper": False}, {"health:camera_offline"}),
    ],
)
def test_health_block_turns_rules_on_and_off(health: dict[str, Any], keys: set[str]) -> None:
    checks = HealthChecks(camera([], [], health=health).health)
    assert checks.keys == keys
    assert (checks.offline is not None) == ("health:camera_offline" in keys)
    assert (checks.tamper is not None) == ("health:camera_tamper" in keys)


def test_timings_and_severity_defaults() -> None:
    checks = HealthChecks(HealthConfig(tamper_clear_s=7, tamper_severity=Severity.critical))
    offline, tamper = checks.timings["health:camera_offline"], checks.timings["health:camera_tamper"]
    assert (offline.rule, offline.min_seconds, offline.clear_seconds, offline.severity) == (
        CAMERA_OFFLINE, 0.0, 0.0, Severity.warning)  # fmt: skip
    assert (tamper.rule, tamper.clear_seconds, tamper.severity) == (CAMERA_TAMPER, 7.0, Severity.critical)
    assert checks.warmup_s() == {"health:camera_offline": 65.0, "health:camera_tamper": 30.0}
    assert frozenset({CAMERA_OFFLINE}) == HealthChecks.CLIPLESS
