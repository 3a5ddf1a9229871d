"""Reading one opened segment: timestamps → media seconds, packets → ring buffer, decode, sample at the analysis rate.

Decoding every packet is cheap and unavoidable (H.264 frames reference each other); converting a frame to an RGB
ndarray is not, so this module yields the kept `av.VideoFrame`s and leaves conversion to whoever consumes them.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
import av.container
import av.error
import av.video.stream

from vision.sources.errors import CorruptMediaError
from vision.sources.media import describe, expected_frames, map_error
from vision.sources.ringbuffer import EncodedPacket, PacketRingBuffer
from vision.sources.state import StatusTracker

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class KeptFrame:
    """A decoded frame selected for analysis, not yet converted to RGB."""

    frame: av.VideoFrame
    seq: int
    pts: float
    wall_time: float


class FrameSampler:
    """Keeps frames at `fps` by media time: a frame is kept when its pts reaches the next due time."""

    def __init__(self, fps: float | None) -> None:
        self._period = 1.0 / fps if fps else 0.0
        self._due: float | None = None
        self.kept = 0

    def keep(self, pts_s: float) -> bool:
        if self._due is not None and pts_s < self._due - 1e-3:
            return False
        if self._due is None or pts_s >= self._due + self._period:
            self._due = pts_s + self._period  # first frame, or a gap: re-synchronise on this frame
        else:
            self._due += self._period
        self.kept += 1
        return True


class Timeline:
    """Maps each segment's raw timestamps to seconds since the source opened, never going backwards."""

    def __init__(self) -> None:
        self.time_base = Fraction(1, 90000)
        self.offset_s = 0.0
        self.end_s = 0.0  # media time just after the latest packet
        self._origin: int | None = None
        self._last_raw: int | None = None

    def start_segment(self, time_base: Fraction, at_s: float, start_time: int | None) -> None:
        self.time_base = time_base
        self.offset_s = at_s
        self._origin = start_time
        self._last_raw = None

    def raw(self, ts: int | None, duration: int | None) -> int | None:
        """A packet's timestamp, filling a missing one from the previous packet's."""
        if ts is None and self._last_raw is not None:
            ts = self._last_raw + (duration or 0)
        if ts is not None:
            if self._origin is None:
                self._origin = ts
            self._last_raw = ts
        return ts

    def ticks(self, ts: int | None) -> int | None:
        """`ts` relative to the source's first packet, in the current time base."""
        if ts is None or self._origin is None:
            return None
        return round(self.offset_s / self.time_base) + ts - self._origin

    def seconds(self, ts: int | None) -> float:
        if ts is None or self._origin is None:
            return self.offset_s
        return self.offset_s + float((ts - self._origin) * self.time_base)

    def advance(self, pts_s: float, duration_s: float) -> None:
        self.end_s = max(self.end_s, pts_s + duration_s)


@dataclass
class SegmentReader:
    """Reads one opened container until it ends, is stopped, or fails."""

    uri: str
    container: av.container.InputContainer
    stream: av.video.stream.VideoStream
    timeline: Timeline
    sampler: FrameSampler
    tracker: StatusTracker
    ring: PacketRingBuffer | None
    decode: bool
    stop: threading.Event
    pace: Callable[[float], None] | None = None
    packets: int = 0

    def frames(self) -> Iterator[KeptFrame]:
        """Kept frames of this segment; returns at end of stream; raises SourceError on read failure."""
        tb = self.timeline.time_base
        rate = self.stream.average_rate or self.stream.guessed_rate
        frame_s = 1.0 / float(rate) if rate else 0.0
        try:
            for packet in self.container.demux(self.stream):
                if self.stop.is_set():
                    return
                if packet.size == 0:  # end of stream: flush the decoder
                    if self.decode:
                        yield from self._decode(None)
                    break
                raw = self.timeline.raw(packet.pts, packet.duration)
                pts_s = self.timeline.seconds(raw)
                dur_s = float(packet.duration * tb) if packet.duration else frame_s
                self.timeline.advance(pts_s, dur_s)
                if self.pace is not None:
                    self.pace(pts_s)
                self.packets += 1
                self.tracker.count("packets")
                if self.ring is not None:
                    self._push(packet, raw, tb)
                if self.decode:
                    yield from self._decode(packet)
        except av.error.FFmpegError as exc:
            raise map_error(self.uri, exc, opening=False) from exc
        self._check_complete()

    def _push(self, packet: av.Packet[Any], raw: int | None, tb: Fraction) -> None:
        assert self.ring is not None
        dts = self.timeline.ticks(packet.dts) if packet.dts is not None else None
        self.ring.push(
            EncodedPacket(
                data=bytes(packet),
                pts=self.timeline.ticks(raw),
                dts=dts,
                duration=packet.duration,
                is_keyframe=bool(packet.is_keyframe),
                wall_time=time.time(),
                time_base=tb,
            )
        )

    def _decode(self, packet: av.Packet[Any] | None) -> Iterator[KeptFrame]:
        try:
            decoded = self.stream.codec_context.decode(packet)
        except av.error.InvalidDataError as exc:
            self.tracker.count("decode_errors")
            log.debug("%s: decode error: %s", describe(self.uri), exc)
            return
        for frame in decoded:
            self.tracker.count("frames_decoded")
            ts = frame.pts if frame.pts is not None else frame.dts
            pts_s = self.timeline.seconds(ts) if ts is not None else self.timeline.end_s
            if self.sampler.keep(pts_s):
                self.tracker.count("frames_kept")
                yield KeptFrame(frame, self.sampler.kept - 1, pts_s, time.time())

    def _check_complete(self) -> None:
        """Files declare their frame count; reading fewer packets means the file was cut short."""
        expected = expected_frames(self.stream)
        if expected and self.packets < expected and not self.stop.is_set():
            at = self.timeline.end_s - self.timeline.offset_s
            raise CorruptMediaError(
                f"{describe(self.uri)}: file ends early at {at:.1f}s ({self.packets} of {expected} frames): truncated?"
            )


def pacer(stop: threading.Event, origin: list[float]) -> Callable[[float], None]:
    """Real-time pacing: sleep until wall time reaches the packet's media time (origin[0] = wall time of pts 0)."""

    def pace(pts_s: float) -> None:
        if not origin:
            origin.append(time.monotonic() - pts_s)
        delay = origin[0] + pts_s - time.monotonic()
        if delay > 0 and not math.isinf(delay):
            stop.wait(delay)

    return pace
