"""The camera config's `detect:` section: defaults, bounds, documentation, and what the stage gets from it."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from pipelines.config.camera import CameraConfig
from pipelines.config.detect import DetectConfig

CAMERA: dict[str, Any] = {"id": "c1", "site": "s", "name": "c1", "streams": {"detect": "rtsp://cam1.example/s"}}


def test_defaults_and_the_stationary_parameters() -> None:
    cfg = CameraConfig.model_validate(CAMERA).detect
    assert cfg == DetectConfig()
    assert cfg.mode == "regions"
    st = DetectConfig(stationary_after_s=4, stationary_interval_s=7, stationary=False).stationary_config()
    assert (st.after_s, st.interval_s, st.enabled) == (4, 7, False)


def test_a_camera_takes_regions_mode_with_its_parameters() -> None:
    cam = CameraConfig.model_validate(
        {**CAMERA, "detect": {"mode": "regions", "full_frame_interval_s": 5, "crop_input": 160, "max_cost": 0.5}}
    )
    assert (cam.detect.mode, cam.detect.full_frame_interval_s, cam.detect.crop_input) == ("regions", 5, 160)


@pytest.mark.parametrize(
    ("detect", "message"),
    [
        ({"mode": "tiles"}, "Input should be 'regions' or 'full'"),
        ({"crop_input": 200}, "multiple of 32"),
        ({"crop_input": 2048}, "less than or equal to 1280"),
        ({"max_cost": 1.5}, "less than or equal to 1"),
        ({"full_frame_interval_s": 0}, "greater than 0"),
        ({"full_frame_interval_s": ".inf"}, "finite number"),
        ({"stationary_interval_s": 4000}, "less than or equal to 3600"),
        ({"head_crop_px": 300}, "less than or equal to 224"),
        ({"regions": True}, "Extra inputs are not permitted"),
    ],
)
def test_bad_values_are_refused(detect: dict[str, Any], message: str) -> None:
    if detect.get("full_frame_interval_s") == ".inf":
        detect = {"full_frame_interval_s": float("inf")}
    with pytest.raises(ValidationError, match=message):
        CameraConfig.model_validate({**CAMERA, "detect": detect})


def test_every_field_is_documented_in_the_schema() -> None:
    schema = CameraConfig.model_json_schema()
    fields = schema["$defs"]["DetectConfig"]["properties"]
    assert set(fields) == set(DetectConfig.model_fields)
    for name, field in fields.items():
        assert field.get("title") and field.get("description"), name
    assert schema["properties"]["detect"]["description"]
