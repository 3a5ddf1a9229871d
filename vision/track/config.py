"""Configuration of the ByteTrack tracker (time-based, so it behaves the same at any analysis fps)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class TrackerConfig(BaseModel):
    """ByteTrack parameters. Durations are in seconds of media time, not frames, because analysis fps varies."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    track_thresh: float = Field(
        default=0.5,
        gt=0.0,
        le=1.0,
        title="High score threshold",
        description="Detections at or above this score are 'high'.",
    )
    low_thresh: float = Field(
        default=0.1, ge=0.0, le=1.0, title="Low score threshold", description="Detections below this score are ignored."
    )
    new_track_thresh: float | None = Field(
        default=None,
        gt=0.0,
        le=1.0,
        title="New track threshold",
        description="Minimum score to start a track from an unmatched detection; defaults to track_thresh.",
    )
    match_thresh: float = Field(
        default=0.2,
        gt=0.0,
        le=1.0,
        title="First-stage IoU",
        description="Minimum IoU between a predicted track box and a high-score detection to associate them.",
    )
    low_match_thresh: float = Field(
        default=0.5,
        gt=0.0,
        le=1.0,
        title="Second-stage IoU",
        description="Minimum IoU to associate a still-tracked track with a low-score detection.",
    )
    match_buffer: float = Field(
        default=0.3,
        ge=0.0,
        le=2.0,
        title="Box buffer for matching",
        description="Boxes are grown by this fraction of their size on each side before IoU (C-BIoU), which helps "
        "small or fast objects at low analysis fps; 0 = plain IoU.",
    )
    track_buffer_s: float = Field(
        default=3.0,
        ge=0.0,
        le=300.0,
        title="Lost track buffer (s)",
        description="How long a lost track may be re-found, in seconds (at most 300).",
    )
    min_hits: int = Field(
        default=2,
        ge=1,
        le=100,
        title="Hits to confirm",
        description="Consecutive matched frames (at most 100) before a track gets an id; earlier rows carry "
        "tracker_id -1.",
    )
    class_aware: bool = Field(
        default=True, title="Class-aware", description="Only associate detections with tracks of the same label."
    )
    max_dt_s: float = Field(
        default=5.0,
        gt=0.0,
        le=60.0,
        title="Maximum prediction step (s)",
        description="Kalman prediction is capped at this step (at most 60 s) so a long gap cannot fling a box across "
        "the frame.",
    )

    @model_validator(mode="after")
    def _check_order(self) -> TrackerConfig:
        if self.low_thresh >= self.track_thresh:
            raise ValueError(f"low_thresh ({self.low_thresh}) must be below track_thresh ({self.track_thresh})")
        return self

    @property
    def start_thresh(self) -> float:
        return self.track_thresh if self.new_track_thresh is None else self.new_track_thresh
