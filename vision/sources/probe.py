"""`probe`: watch a file or stream URL for a few seconds and report what it delivers (`safewatch probe`).

A camera URL is worth checking before it goes into a config: does it open, at what resolution and codec, at what
rate do frames really arrive, does it drop or reconnect. Files are read as fast as possible for N seconds of media
time; live URLs are watched for N seconds of wall time. The measured rate is frames decoded per second of *media*
time, so the burst a live stream sends right after opening does not inflate it.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

from vision.sources.config import SourceConfig
from vision.sources.errors import EndOfStream
from vision.sources.media import StreamInfo
from vision.sources.source import VideoSource
from vision.sources.state import SourceState, SourceStats, StateChange
from vision.types import Frame

#: States whose reason says what went wrong (the last one is the report's `error`).
_TROUBLE = frozenset({SourceState.RECONNECTING, SourceState.FAILED})


@dataclass(frozen=True, slots=True)
class ProbeReport:
    """What one watch of a source saw. Counters and transitions are read after the source was closed."""

    source: str  # the URI without credentials
    seconds: float  # how long it was watched (media seconds for files)
    info: StreamInfo | None  # None when the stream never opened
    fps: float | None  # measured: frames decoded per second of media time; None below two kept frames
    stats: SourceStats
    state: SourceState  # at the end of the watch, before closing
    states: list[StateChange]  # every transition, the final `stopped` (closed) included
    error: str | None  # the reason of the last reconnect or failure, None when there was none


def probe_config(seconds: float, *, analysis_fps: float, open_timeout_s: float, read_timeout_s: float) -> SourceConfig:
    """A `SourceConfig` for a watch of `seconds`: no packet ring, as a probe writes no clips, and reconnect delays
    capped at half the watch (0.5 to 5 s) so a dropped stream gets a second chance within it.

    Raises pydantic's ValidationError for a bad value.
    """
    return SourceConfig(
        analysis_fps=analysis_fps,
        open_timeout_s=open_timeout_s,
        read_timeout_s=read_timeout_s,
        backoff_max_s=max(0.5, min(5.0, seconds / 2)),
        ring_seconds=0,
    )


def probe(uri: str | os.PathLike[str], config: SourceConfig, seconds: float) -> ProbeReport:
    """Open `uri`, read kept frames for `seconds` (or to the end of a file), close it and report.

    A file that cannot be opened raises its SourceError; a live URL never raises: what went wrong is in the
    report's `state`, `states` and `error`.
    """
    source = VideoSource(uri, config)
    with source:
        measured = _watch(source, seconds, config.open_timeout_s)
        state = source.state
    states = source.states
    errors = [c.reason for c in states if c.reason and c.state in _TROUBLE]
    return ProbeReport(
        source=source.name,
        seconds=seconds,
        info=source.info,
        fps=measured,
        stats=source.stats,
        state=state,
        states=states,
        error=errors[-1] if errors else None,
    )


def _watch(source: VideoSource, seconds: float, open_timeout: float) -> float | None:
    """Read for `seconds`; return the measured rate: frames decoded per second of media time."""
    kept: list[Frame] = []
    marks: list[int] = []  # frames_decoded when each kept frame arrived
    if source.live:
        source.wait_ready(open_timeout)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            frame = source.read(timeout=max(0.0, min(0.5, deadline - time.monotonic())))
        except EndOfStream:
            break
        if frame is None:
            continue
        kept.append(frame)
        marks.append(source.stats.frames_decoded)
        if not source.live and frame.pts - kept[0].pts >= seconds:
            break
    if len(kept) < 2:
        return None
    span = kept[-1].pts - kept[0].pts  # media time: a live stream's initial burst does not inflate the rate
    return (marks[-1] - marks[0]) / span if span > 0 else None
