"""The `detect:` section of a camera config: whole frames, or motion regions with stationary objects.

`regions` (the default on CPU) runs the detector on model-sized windows around what moved and around the tracked
objects, a whole frame every `full_frame_interval_s` and whenever the windows would cost more than `max_cost` of a
whole-frame inference; objects that stopped moving are carried without re-detection and re-verified every
`stationary_interval_s` or when motion touches them (`pipelines/camera/detect_stage.py`). `full` runs every model on
the whole frame (GPUs, where a whole frame costs about as much as a crop). Models that serve a rule which reads the
whole frame (`smoke_fire`) always run on whole frames.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from vision.track.stationary import StationaryConfig

DetectMode = Literal["regions", "full"]


class DetectConfig(BaseModel):
    """Where on a frame the detector runs."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    mode: DetectMode = Field(
        default="regions",
        title="Mode",
        description="regions: detect on windows around motion and tracked objects (CPU); full: whole frames (GPU).",
    )
    full_frame_interval_s: float = Field(
        default=3.0,
        gt=0,
        le=3600,
        title="Whole frame every (s)",
        description="regions mode still runs a whole-frame inference at least this often (at most every 3600 s); "
        "each camera at its own phase of the interval (from its id), so a worker's cameras spread them out.",
    )
    crop_input: int = Field(
        default=224,
        ge=64,
        le=1280,
        multiple_of=32,
        title="Crop input (px)",
        description="Square model input of one window, a multiple of 32 (64-1280); the window covers what this many "
        "model pixels cover at the whole-frame scale.",
    )
    max_cost: float = Field(
        default=0.6,
        gt=0,
        le=1,
        title="Maximum window cost",
        description="When the windows of a frame would cost more than this fraction of a whole-frame inference "
        "(they cover most of the frame), the whole frame runs instead (0-1).",
    )
    pad: float = Field(
        default=0.25, ge=0, le=2, title="Region padding", description="Each region grows by this much of its size."
    )
    min_pad_px: float = Field(
        default=12.0, ge=0, le=256, title="Minimum padding (px)", description="…and by at least this many pixels."
    )
    motion_threshold: float = Field(
        default=20.0,
        gt=0,
        le=255,
        title="Motion threshold",
        description="Gray-level change between analysed frames that counts as motion (on a 160 px wide copy).",
    )
    stationary: bool = Field(
        default=True,
        title="Stationary objects",
        description="Carry objects that stopped moving without re-detecting them on every frame.",
    )
    stationary_after_s: float = Field(
        default=3.0,
        gt=0,
        le=600,
        title="Stationary after (s)",
        description="Seconds a tracked box must stay put (IoU with its own box) to become stationary (at most 600).",
    )
    stationary_interval_s: float = Field(
        default=5.0,
        gt=0,
        le=3600,
        title="Re-verify stationary every (s)",
        description="A stationary object is re-detected at least this often (at most every 3600 s), and at once "
        "when motion touches it; it is dropped when the detector no longer finds it.",
    )

    head_crop_px: int = Field(
        default=128,
        ge=0,
        le=224,
        title="Head crop size (px)",
        description="no_helmet on CPU runs the helmet model on people's upper-body crops at the scale of a whole-"
        "frame pass; a crop smaller than this many model pixels (a distant person, a head of 10-15 px) is enlarged "
        "to it, at most 3x (0: never; at most 224).",
    )

    def stationary_config(self) -> StationaryConfig:
        return StationaryConfig(
            enabled=self.stationary, after_s=self.stationary_after_s, interval_s=self.stationary_interval_s
        )
