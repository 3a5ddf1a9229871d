"""Source configuration (one pydantic model; every field documents itself)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class SourceConfig(BaseModel):
    """How to read one video source (file path or rtsp:// / http(s):// URL)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    analysis_fps: float | None = Field(
        default=5.0,
        gt=0,
        le=120,
        title="Analysis rate",
        description="Frames per second kept for analysis (by media time); null = every frame",
    )
    realtime: bool = Field(
        default=False,
        title="Pace files in real time",
        description="Files only: read at the clip's own speed, like a camera (frames may then be dropped)",
    )
    loop: bool = Field(default=False, title="Loop files", description="Files only: start again at the end, forever")
    open_timeout_s: float = Field(
        default=10.0, gt=0, title="Open timeout", description="Seconds to wait for a stream to open"
    )
    read_timeout_s: float = Field(
        default=5.0, gt=0, title="Read timeout", description="Seconds without data before a live stream counts as hung"
    )
    backoff_initial_s: float = Field(default=0.5, gt=0, title="First reconnect delay", description="Seconds")
    backoff_max_s: float = Field(
        default=30.0, gt=0, title="Reconnect delay cap", description="Seconds; delays double up to this (±20% jitter)"
    )
    max_reconnects: int | None = Field(
        default=None, ge=0, title="Reconnect limit", description="Failed opens in a row before giving up; null = never"
    )
    queue_size: int = Field(
        default=4,
        ge=1,
        le=1024,
        title="Frame queue",
        description="Live: kept frames buffered for the consumer; when full the oldest is dropped",
    )
    ring_seconds: float = Field(
        default=30.0,
        ge=0,
        title="Packet ring",
        description="Seconds of encoded packets kept for evidence clips; 0 = off",
    )
    decode: bool = Field(
        default=True, title="Decode", description="False: demux packets into the ring buffer only (a `record` stream)"
    )
    skip_nonref: Literal["auto", "on", "off"] = Field(
        default="auto",
        title="Skip non-reference frames",
        description="Do not decode frames no other frame depends on (non-reference B-frames) — auto: when the "
        "analysis rate is at most half the stream rate. Less decode work; a kept frame may then be a frame or two "
        "after the exact sample time. Streams without B-frames (most cameras) are unaffected. Packets for clips "
        "are kept either way.",
    )
    threads: int = Field(
        default=0,
        ge=0,
        le=64,
        title="Decoder threads",
        description="0 = automatic: one thread for streams up to 1280x720 (substreams), FFmpeg's choice above",
    )
    thread_type: Literal["AUTO", "FRAME", "SLICE", "NONE"] = Field(
        default="AUTO",
        title="Decoder threading",
        description="FFmpeg thread type (FRAME threading delays each frame by about `threads` frames)",
    )
    probe_s: float = Field(
        default=1.0, gt=0, title="Live probe", description="Live: seconds of stream FFmpeg may analyse when opening"
    )

    @model_validator(mode="after")
    def _backoff_order(self) -> SourceConfig:
        if self.backoff_max_s < self.backoff_initial_s:
            raise ValueError("backoff_max_s must be >= backoff_initial_s")
        return self
