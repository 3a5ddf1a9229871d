"""A ring buffer of encoded packets (the last N seconds, always starting at a keyframe) for evidence clips.

The source pushes every demuxed video packet; the clip writer asks for `window(start_s, end_s)` and remuxes the
packets without re-encoding. Packets are kept in whole GOPs so every window can start at a keyframe.
Written by hand: it is a deque of GOPs with a lock; no library offers GOP-aware eviction of PyAV packets.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction


@dataclass(frozen=True, slots=True)
class StreamParams:
    """What a muxer needs to write the stream without re-encoding."""

    codec_name: str
    width: int
    height: int
    time_base: Fraction
    fps: float | None
    extradata: bytes | None
    pix_fmt: str | None

    def same_codec(self, other: StreamParams) -> bool:
        """True when packets of both can go into one file (fps and time base may differ; they are rescaled)."""
        return (self.codec_name, self.width, self.height, self.extradata) == (
            other.codec_name,
            other.width,
            other.height,
            other.extradata,
        )


@dataclass(frozen=True, slots=True)
class EncodedPacket:
    """One demuxed packet. `pts`/`dts`/`duration` are in `StreamParams.time_base`, 0 = when the source opened."""

    data: bytes
    pts: int | None
    dts: int | None
    duration: int | None
    is_keyframe: bool
    wall_time: float
    time_base: Fraction = Fraction(1, 90000)

    @property
    def pts_s(self) -> float:
        """Media seconds since the source opened (falls back to dts when pts is unknown)."""
        ts = self.pts if self.pts is not None else self.dts
        return float(ts * self.time_base) if ts is not None else 0.0


class PacketRingBuffer:
    """Thread-safe: the capture thread pushes, clip writers read copies.

    Holds at least `seconds` of media (when available) and at most one GOP more. A packet that is not a keyframe
    is ignored until the first keyframe arrives, so the buffer always starts at a keyframe. `start_segment` marks a
    reconnect or loop (a discontinuity); when the codec parameters change the old packets are dropped, so a window
    never mixes parameter sets.
    """

    def __init__(self, seconds: float) -> None:
        if seconds <= 0:
            raise ValueError(f"ring buffer seconds must be > 0, got {seconds}")
        self.seconds = float(seconds)
        self.params: StreamParams | None = None
        self._gops: deque[list[EncodedPacket]] = deque()
        self._discontinuities: list[float] = []
        self._lock = threading.Lock()
        self._await_key = True

    def start_segment(self, params: StreamParams, at_s: float) -> None:
        """A new stream segment begins at media time `at_s` (open, reconnect, loop)."""
        with self._lock:
            if self.params is not None and not self.params.same_codec(params):
                self._gops.clear()
                self._discontinuities.clear()
            self.params = params
            self._await_key = True
            if self._gops:
                self._discontinuities.append(at_s)

    def push(self, packet: EncodedPacket) -> None:
        with self._lock:
            if packet.is_keyframe:
                self._await_key = False
                self._gops.append([packet])
            elif self._await_key:
                return
            else:
                self._gops[-1].append(packet)
            horizon = packet.pts_s - self.seconds
            while len(self._gops) >= 2 and self._gops[1][0].pts_s <= horizon:
                self._gops.popleft()
            if self._discontinuities and self._gops and self._discontinuities[0] <= self._gops[0][0].pts_s:
                self._discontinuities = [d for d in self._discontinuities if d > self._gops[0][0].pts_s]

    def window(self, start_s: float, end_s: float) -> list[EncodedPacket]:
        """Packets from the last keyframe at or before `start_s` through the last packet with pts_s <= `end_s`."""
        return self._window(start_s, end_s, lambda p: p.pts_s)

    def window_wall(self, start_wall: float, end_wall: float) -> list[EncodedPacket]:
        """Like `window`, by the Unix time each packet was read."""
        return self._window(start_wall, end_wall, lambda p: p.wall_time)

    def _window(self, start: float, end: float, key: Callable[[EncodedPacket], float]) -> list[EncodedPacket]:
        with self._lock:
            gops = list(self._gops)
        if not gops or end < start:
            return []
        first = 0
        for i, gop in enumerate(gops):
            if key(gop[0]) <= start:
                first = i
            else:
                break
        out = [p for gop in gops[first:] for p in gop]
        last = max((i for i, p in enumerate(out) if key(p) <= end), default=-1)
        return out[: last + 1]

    @property
    def discontinuities(self) -> list[float]:
        """Media times (pts_s) where a new segment (reconnect, loop) starts inside the buffer."""
        with self._lock:
            return list(self._discontinuities)

    def __len__(self) -> int:
        with self._lock:
            return sum(len(g) for g in self._gops)

    @property
    def span_s(self) -> float:
        """Media seconds currently held (first keyframe to newest packet)."""
        with self._lock:
            if not self._gops:
                return 0.0
            return max(0.0, self._gops[-1][-1].pts_s - self._gops[0][0].pts_s)
