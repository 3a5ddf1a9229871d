"""Structural types of what the clip writer reads: encoded packets, stream parameters and a packet window source.

They mirror the packet ring buffer contract (`vision.sources.ringbuffer`: `EncodedPacket`, `StreamParams`,
`PacketRingBuffer`) as Protocols, so `vision.media` depends on the shape, not on the module, and anything with the
same attributes (the ring buffer, a list demuxed from a file in a test or a benchmark) can be clipped.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from typing import Protocol


class PacketLike(Protocol):
    """One encoded packet exactly as demuxed; `pts`/`dts`/`duration` in the stream's `time_base`."""

    @property
    def data(self) -> bytes: ...
    @property
    def pts(self) -> int | None: ...
    @property
    def dts(self) -> int | None: ...
    @property
    def duration(self) -> int | None: ...
    @property
    def is_keyframe(self) -> bool: ...
    @property
    def wall_time(self) -> float: ...
    @property
    def pts_s(self) -> float: ...


class StreamParamsLike(Protocol):
    """What a muxer needs to write the stream without re-encoding."""

    @property
    def codec_name(self) -> str: ...
    @property
    def width(self) -> int: ...
    @property
    def height(self) -> int: ...
    @property
    def time_base(self) -> Fraction: ...
    @property
    def fps(self) -> float | None: ...
    @property
    def extradata(self) -> bytes | None: ...
    @property
    def pix_fmt(self) -> str | None: ...


class PacketWindowSource(Protocol):
    """A thread-safe source of packet windows (the ring buffer)."""

    @property
    def params(self) -> StreamParamsLike | None: ...

    def window(self, start_s: float, end_s: float) -> Sequence[PacketLike]: ...

    def window_wall(self, start_wall: float, end_wall: float) -> Sequence[PacketLike]: ...
