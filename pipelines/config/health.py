"""The `health:` block of a camera config: the built-in camera health rules every camera gets by default.

- `camera_offline`: the detect stream delivered no frame for `offline_after_s` (refused, timed out, hung, decoding
  errors: whatever the cause); the incident closes once frames flowed again for `offline_clear_s`. In distributed
  mode the API process also raises it for a camera no worker holds for `offline_after_s`.
- `camera_tamper`: the view is covered, defocused or moved compared with a reference learned while it was healthy,
  for `tamper_after_s`; it closes once the view has been back for `tamper_clear_s`.

Both are incidents like any rule's (store, SSE, webhooks, MQTT, stats); the incident's `labels` say why
(`no_frames` or `no_worker` for camera_offline, `covered`, `defocused` or `moved` for camera_tamper). Health rules
ignore the camera's `schedule` (a camera is watched around the clock) but not `enabled: false` on the camera.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from pipelines.events import Severity
from vision.health.tamper import TamperConfig

#: The rule types of the health block (not listed under `rules:`; see module docs).
CAMERA_OFFLINE = "camera_offline"
CAMERA_TAMPER = "camera_tamper"
HEALTH_RULE_TYPES: tuple[str, ...] = (CAMERA_OFFLINE, CAMERA_TAMPER)


def _seconds(default: float, description: str, title: str, *, ge: float = 0.0, le: float = 86400) -> Any:
    return Field(default=default, ge=ge, le=le, title=title, description=description)


class HealthConfig(BaseModel):
    """Camera health incidents (camera_offline, camera_tamper); on by default for every camera."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    enabled: bool = Field(default=True, title="Enabled", description="False turns both health rules off.")
    offline: bool = Field(
        default=True, title="Offline rule", description="Raise camera_offline when the stream delivers no frame."
    )
    offline_after_s: float = _seconds(
        60.0,
        "Seconds without a frame (or, distributed, without a worker holding the camera) before it is offline; 1-86400.",
        "Offline after (s)",
        ge=1.0,
    )
    offline_clear_s: float = _seconds(
        5.0, "Seconds frames must flow again before camera_offline closes; 0-3600.", "Offline clear (s)", le=3600
    )
    offline_severity: Severity = Field(
        default=Severity.warning, title="Offline severity", description="Severity of camera_offline incidents."
    )
    tamper: bool = Field(
        default=True,
        title="Tamper rule",
        description="Raise camera_tamper when the view is covered, defocused or moved.",
    )
    tamper_after_s: float = _seconds(
        20.0, "Seconds the view must look tampered with before an incident opens; 0-86400.", "Tamper after (s)"
    )
    tamper_clear_s: float = _seconds(
        5.0, "Seconds the view must be back before camera_tamper closes; 0-3600.", "Tamper clear (s)", le=3600
    )
    tamper_severity: Severity = Field(
        default=Severity.warning, title="Tamper severity", description="Severity of camera_tamper incidents."
    )
    tamper_thresholds: TamperConfig = Field(
        default_factory=TamperConfig,
        title="Tamper thresholds",
        description="How covered, defocused and moved are measured (vision/health/tamper.py): reference learning "
        "and adaptation times, contrast, sharpness and alignment thresholds.",
    )

    @property
    def offline_on(self) -> bool:
        return self.enabled and self.offline

    @property
    def tamper_on(self) -> bool:
        return self.enabled and self.tamper
