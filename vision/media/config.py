"""Configuration of the evidence sinks (pydantic, `extra="forbid"`, every field documented)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class SnapshotConfig(BaseModel):
    """Snapshot JPEGs: an annotated copy and the unmodified original frame."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    jpeg_quality: int = Field(
        default=90, ge=1, le=100, title="JPEG quality", description="Quality of both JPEGs (1-100)."
    )
    max_side: int | None = Field(
        default=1920,
        ge=64,
        le=16384,
        title="Annotated max side",
        description="Longest side of the annotated JPEG in pixels, 64-16384 (downscaled when larger); null keeps "
        "full size.",
    )
    raw_max_side: int | None = Field(
        default=None,
        ge=64,
        le=16384,
        title="Original max side",
        description="Longest side of the original JPEG, 64-16384 pixels; null (default) keeps the frame's pixels at "
        "full size.",
    )
    font_path: Path | None = Field(
        default=None,
        title="Font file",
        description="TrueType/OpenType font with CJK glyphs; null finds Noto Sans CJK SC via fontconfig/known paths.",
    )
    zone_alpha: float = Field(
        default=0.25, ge=0.0, le=1.0, title="Zone fill opacity", description="Opacity of the zone polygon fill."
    )


class ClipConfig(BaseModel):
    """Evidence clips, remuxed from the encoded packet ring buffer (stream copy)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    pre_roll_s: float = Field(
        default=5.0, ge=0.0, le=300.0, title="Pre-roll", description="Seconds before the incident start (at most 300)."
    )
    post_roll_s: float = Field(
        default=5.0, ge=0.0, le=300.0, title="Post-roll", description="Seconds after the incident closed (at most 300)."
    )
    max_clip_s: float = Field(
        default=60.0,
        gt=0.0,
        le=600.0,
        title="Max clip length",
        description="Longest single clip in seconds (at most 600; longer incidents are split). The packet ring keeps "
        "max_clip_s + pre_roll_s + post_roll_s + 10 seconds, so this bound also bounds its memory.",
    )
    long_incident: Literal["split", "start_only"] = Field(
        default="split",
        title="Long incidents",
        description="split: one clip per max_clip_s window until the end; start_only: only the first window.",
    )
    wait_timeout_s: float = Field(
        default=30.0,
        gt=0.0,
        le=600.0,
        title="Post-roll wait timeout",
        description="Wall seconds (at most 600) to wait for packets past the window end before writing what is there "
        "(partial).",
    )
    poll_interval_s: float = Field(
        default=0.2,
        gt=0.0,
        le=5.0,
        title="Poll interval",
        description="How often the writer checks the buffer for packets.",
    )
    faststart: bool = Field(default=True, title="Fast start", description="Put the moov atom first (browser playback).")

    @model_validator(mode="after")
    def _window_fits(self) -> ClipConfig:
        if self.pre_roll_s >= self.max_clip_s:
            raise ValueError(f"pre_roll_s ({self.pre_roll_s}) must be shorter than max_clip_s ({self.max_clip_s})")
        return self


class RetentionConfig(BaseModel):
    """How long evidence is kept: by age and by total size, oldest incidents first."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    max_age_days: float | None = Field(
        default=30.0,
        gt=0.0,
        title="Maximum age",
        description="Delete incidents older than this many days; null = no limit.",
    )
    max_total_bytes: int | None = Field(
        default=None,
        gt=0,
        title="Maximum total size",
        description="Keep the media root under this many bytes; null = none.",
    )
