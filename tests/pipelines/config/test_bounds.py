"""Every number a camera config can hold is finite and capped, so no config can disable an eviction or a timeout.

The schema walk fails for any new numeric field added without an upper bound; the `.inf`/`.nan`, 65-point polygon,
33-zone and 33-rule cases are in the table (cases/bad/).
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from pipelines.config.camera import MAX_POLYGON_POINTS, MAX_RULES, MAX_ZONES, CameraConfig


def _unbounded(node: Any, path: str = "#") -> list[str]:
    """JSON Schema locations of numbers without `maximum`/`exclusiveMaximum`."""
    found: list[str] = []
    if isinstance(node, dict):
        if node.get("type") in ("number", "integer") and not {"maximum", "exclusiveMaximum"} & node.keys():
            found.append(path)
        for key, value in node.items():
            found += _unbounded(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found += _unbounded(value, f"{path}/{i}")
    return found


def test_every_number_in_the_camera_schema_has_a_maximum() -> None:
    schema = CameraConfig.model_json_schema()
    assert _unbounded(schema) == []
    assert _unbounded({"a": {"type": "number", "minimum": 0}}) == ["#/a"]  # the walk finds an unbounded number


def test_size_caps_are_in_the_schema() -> None:
    schema = CameraConfig.model_json_schema()
    assert schema["properties"]["zones"]["maxItems"] == MAX_ZONES == 32
    assert schema["properties"]["rules"]["maxItems"] == MAX_RULES == 32
    assert schema["$defs"]["Zone"]["properties"]["polygon"]["maxItems"] == MAX_POLYGON_POINTS == 64


@pytest.mark.parametrize(
    ("section", "value"),
    [
        ({"evidence": {"clip": {"max_clip_s": float("inf")}}}, "max_clip_s"),
        ({"evidence": {"clip": {"wait_timeout_s": float("nan")}}}, "wait_timeout_s"),
        ({"tracker": {"track_buffer_s": float("inf")}}, "track_buffer_s"),
        ({"motion_gate": {"max_interval_s": float("inf")}}, "max_interval_s"),
        ({"zones": [{"name": "z", "polygon": [[0, 0], [1, 0], [float("nan"), 1]]}]}, "polygon"),
        ({"rules": [{"type": "smoke_fire", "min_confidence": float("nan")}]}, "min_confidence"),
    ],
)
def test_infinities_and_nan_are_refused_everywhere(section: dict[str, Any], value: str) -> None:
    base = {"id": "cam", "site": "s", "name": "n", "streams": {"detect": "rtsp://cam1.example/live"}}
    with pytest.raises(ValidationError) as info:
        CameraConfig.model_validate({**base, **section})
    errors = info.value.errors()
    assert value in ".".join(str(p) for p in errors[0]["loc"])
    assert any(e["type"] in ("finite_number", "less_than_equal") for e in errors), errors
