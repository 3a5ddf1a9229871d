"""factory: rule keys, timings, schedules, label needs, coverage errors and model selection."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from pipelines.config.rules import RULE_TYPES
from pipelines.events import Severity
from pipelines.rules.base import RuleTiming
from pipelines.rules.factory import (
    CameraRules,
    build_rules,
    check_label_coverage,
    model_labels,
    required_labels,
    rule_keys,
    rule_timings,
    select_models,
)
from tests.pipelines.rules.scenario import LEFT_HALF, T0, camera, dets, person, run
from vision.detect.registry import ModelRegistry

ZONES = [{"name": "a", "polygon": LEFT_HALF}]
COCO = {"coco": {"person", "bicycle", "motorcycle", "car", "bus", "truck"}}
HELMET = {"helmet": {"helmet", "no_helmet"}}

ALL_RULES: list[dict[str, Any]] = [
    {"type": "no_helmet"},
    {"type": "exit_blocked", "zones": ["a"]},
    {"type": "ebike_indoor", "zones": ["a"]},
    {"type": "smoke_fire"},
    {"type": "intrusion", "zones": ["a"]},
    {"type": "loitering", "zones": ["a"]},
    {"type": "line_crossing", "line": [[0, 0], [1, 1]]},
]


def test_every_rule_type_builds_with_its_protocol_attributes() -> None:
    rules = build_rules(camera(ZONES, ALL_RULES))
    assert [r.type for r in rules] == list(RULE_TYPES)
    assert [r.key for r in rules] == [f"{i}:{t}" for i, t in enumerate(RULE_TYPES)]
    assert all(r.required_labels and isinstance(r.required_labels, frozenset) for r in rules)


def test_rule_keys_are_stable() -> None:
    cam = camera(
        ZONES,
        [
            {"type": "intrusion", "zones": ["a"]},
            {"type": "intrusion", "zones": ["a"], "name": "gate watch"},
            {"type": "intrusion", "zones": ["a"], "enabled": False},
            {"type": "loitering", "zones": ["a"], "name": "twice"},
            {"type": "loitering", "zones": ["a"], "name": "twice"},
        ],
    )
    assert [key for _, _, key in rule_keys(cam)] == ["0:intrusion", "gate watch", "3:loitering", "4:loitering"]
    assert [r.key for r in build_rules(cam)] == ["0:intrusion", "gate watch", "3:loitering", "4:loitering"]


def test_timings_come_from_the_params() -> None:
    cam = camera(
        ZONES,
        [
            {"type": "intrusion", "zones": ["a"], "min_seconds": 1.5, "clear_seconds": 4, "cooldown_seconds": 7},
            {"type": "exit_blocked", "zones": ["a"]},
            {"type": "smoke_fire", "enabled": False},
        ],
    )
    assert rule_timings(cam) == {
        "0:intrusion": RuleTiming("intrusion", 1.5, 4.0, 7.0, Severity.warning),
        "1:exit_blocked": RuleTiming("exit_blocked", 0.0, 30.0, 60.0, Severity.critical),
    }


def test_schedule_stops_rules_and_resets_their_state() -> None:
    windows = [{"start": "09:00", "end": "09:01"}, {"start": "09:02", "end": "10:00"}]
    cam = camera(
        ZONES,
        [
            {"type": "intrusion", "zones": ["a"], "clear_seconds": 2, "cooldown_seconds": 0},
            {"type": "loitering", "zones": ["a"], "dwell_seconds": 50, "clear_seconds": 2},
        ],
        schedule={"timezone": "UTC", "windows": windows},
    )
    rules = CameraRules(cam)
    assert rules.is_active(T0) and not rules.is_active(T0 + timedelta(seconds=90))
    out = run(cam, lambda t: dets(person(1, 100, 300)), 200, fps=2)
    got = [(e.rule, e.type.value, e.offset_s) for e in out.events]
    assert got == [
        ("intrusion", "opened", 1.0),
        ("loitering", "opened", 50.0),
        ("intrusion", "closed", 61.5),  # nothing is reported from 60 s (inactive): closed after clear_seconds
        ("loitering", "closed", 61.5),
        ("intrusion", "opened", 121.0),  # active again at 120 s
        ("loitering", "opened", 170.0),  # the dwell restarted: the inactive minute did not count
    ]
    assert not any(vs for t, vs in out.violations if 60 <= t < 120)


def test_required_labels() -> None:
    cam = camera(ZONES, [{"type": "no_helmet"}, {"type": "intrusion", "zones": ["a"], "labels": ["person", "car"]}])
    assert required_labels(cam) == {"person", "car", "helmet", "no_helmet"}
    assert required_labels(camera(ZONES, [{"type": "smoke_fire", "enabled": False}])) == set()


@pytest.mark.parametrize(
    ("rules", "extra", "provided", "buildable", "problems"),
    [
        ([{"type": "intrusion", "zones": ["a"]}], {}, COCO, None, []),
        (
            [{"type": "intrusion", "zones": ["a"]}, {"type": "no_helmet"}],
            {},
            COCO,
            HELMET,
            [
                "rules.1 (no_helmet): needs one of {no_helmet} (bare heads) but no model provides it; build the helmet "
                "model with `safewatch models build helmet`"
            ],
        ),
        ([{"type": "no_helmet"}], {}, {**COCO, **HELMET}, None, []),
        (
            [{"type": "smoke_fire"}],
            {},
            COCO,
            HELMET,
            [
                "rules.0 (smoke_fire): needs one of {fire, smoke} (objects) but no model provides it; no model card "
                "provides it: import a model with `safewatch models import`, or change the rule's labels"
            ],
        ),
        # exit_blocked with the static-scene model works without any obstacle detector; without it, it needs one
        ([{"type": "exit_blocked", "zones": ["a"]}], {}, HELMET, None, []),
        (
            [{"type": "exit_blocked", "zones": ["a"], "static_scene": False}],
            {},
            HELMET,
            None,
            [
                "rules.0 (exit_blocked): needs one of {bicycle, bus, car, e_bike, motorcycle, truck} (obstacles) "
                "but no model provides it; no model card provides it: import a model with `safewatch models import`, "
                "or change the rule's labels"
            ],
        ),
        # disabled rules need nothing
        ([{"type": "smoke_fire", "enabled": False}], {}, COCO, None, []),
        # the camera's models: override
        (
            [{"type": "no_helmet"}],
            {"models": ["coco"]},
            {**COCO, **HELMET},
            None,
            [
                "rules.0 (no_helmet): needs one of {no_helmet} (bare heads) but no model provides it; add 'helmet' to "
                "the camera's models: list"
            ],
        ),
        (
            [{"type": "intrusion", "zones": ["a"]}],
            {"models": ["coco", "helmet"]},
            COCO,
            HELMET,
            [
                "models: model 'helmet' is not available (available: coco); "
                "build it with `safewatch models build helmet`"
            ],
        ),
        # no_helmet reporting people without any evidence needs people
        (
            [{"type": "no_helmet", "missing_evidence": "violation"}],
            {},
            HELMET,
            None,
            [
                "rules.0 (no_helmet): needs one of {person} (people) but no model provides it; no model card provides "
                "it: import a model with `safewatch models import`, or change the rule's labels"
            ],
        ),
    ],
)
def test_label_coverage(
    rules: list[dict[str, Any]],
    extra: dict[str, Any],
    provided: dict[str, set[str]],
    buildable: dict[str, set[str]] | None,
    problems: list[str],
) -> None:
    assert check_label_coverage(camera(ZONES, rules, **extra), provided, buildable=buildable) == problems


FIRE = {"firenet": {"smoke", "fire"}}
BIG = {"big": {"person", "car", "truck", "helmet", "no_helmet"}}


@pytest.mark.parametrize(
    ("rules", "extra", "provided", "expected"),
    [
        ([{"type": "intrusion", "zones": ["a"]}], {}, {**HELMET, **COCO}, ["coco"]),
        ([{"type": "no_helmet"}], {}, {**COCO, **HELMET}, ["coco", "helmet"]),  # people (optional) and bare heads
        (
            [{"type": "no_helmet"}, {"type": "smoke_fire"}],
            {},
            {**COCO, **HELMET, **FIRE},
            ["coco", "helmet", "firenet"],
        ),
        ([{"type": "no_helmet"}, {"type": "intrusion", "zones": ["a"]}], {}, {**COCO, **HELMET, **BIG}, ["big"]),
        # an unmet need does not stop the others from being covered
        ([{"type": "smoke_fire"}, {"type": "intrusion", "zones": ["a"]}], {}, {**COCO, **HELMET}, ["coco"]),
        ([], {}, {**COCO}, []),
        ([{"type": "intrusion", "zones": ["a"]}], {"models": ["helmet", "coco"]}, COCO, ["helmet", "coco"]),
    ],
)
def test_select_models(
    rules: list[dict[str, Any]], extra: dict[str, Any], provided: dict[str, set[str]], expected: list[str]
) -> None:
    assert select_models(camera(ZONES, rules, **extra), provided) == expected


def test_model_labels_from_the_registry(repo_root: Path, tmp_path: Path) -> None:
    for name in ("coco-yolov3-tiny.yaml", "helmet.yaml"):
        shutil.copy(repo_root / "models" / name, tmp_path / name)
    (tmp_path / "coco-yolov3-tiny.onnx").write_bytes(b"")  # "built" = the file exists
    registry = ModelRegistry(tmp_path)
    assert model_labels(registry) == {"coco-yolov3-tiny": {"person", "bicycle", "motorcycle", "car", "bus", "truck"}}
    assert model_labels(registry, built=False) == {"helmet": {"helmet", "no_helmet"}}
    assert list(model_labels(registry, built=None)) == ["coco-yolov3-tiny", "helmet"]  # default model first
    cam = camera(ZONES, [{"type": "no_helmet"}])
    (problem,) = check_label_coverage(cam, model_labels(registry), buildable=model_labels(registry, built=False))
    assert problem.endswith("build the helmet model with `safewatch models build helmet`")
