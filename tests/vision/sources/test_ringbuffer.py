"""The encoded-packet ring buffer: whole GOPs, always starting at a keyframe, windows by media or wall time."""

from __future__ import annotations

import pathlib
from fractions import Fraction

import av
import pytest

from vision.sources import EncodedPacket, PacketRingBuffer, SourceConfig, StreamParams, open_source

TB = Fraction(1, 90000)
PARAMS = StreamParams("h264", 640, 480, TB, 10.0, b"\x01avcC", "yuv420p")


def _packet(i: int, gop: int = 20, fps: int = 10, wall0: float = 1000.0) -> EncodedPacket:
    ticks = i * 90000 // fps
    return EncodedPacket(bytes([i % 256]), ticks, ticks, 90000 // fps, i % gop == 0, wall0 + i / fps, TB)


def _filled(seconds: float, n: int, start: int = 0) -> PacketRingBuffer:
    ring = PacketRingBuffer(seconds)
    ring.start_segment(PARAMS, 0.0)
    for i in range(start, n):
        ring.push(_packet(i))
    return ring


def test_starts_at_keyframe_and_evicts_whole_gops() -> None:
    ring = _filled(5.0, 100)  # 10 s of 10 fps, keyframe every 2 s
    held = ring.window(0, 1e9)
    assert held[0].is_keyframe
    assert held[-1].pts_s == pytest.approx(9.9)
    # at least 5 s kept, at most one GOP more; old GOPs gone whole
    assert 5.0 <= ring.span_s < 7.0
    assert held[0].pts_s == pytest.approx(4.0)
    assert len(ring) == len(held) == 60


def test_ignores_packets_until_the_first_keyframe() -> None:
    ring = _filled(5.0, 30, start=5)  # joins mid-GOP: packets 5..19 are undecodable
    held = ring.window(0, 1e9)
    assert held[0].is_keyframe and held[0].pts_s == pytest.approx(2.0)
    assert len(ring) == 10


@pytest.mark.parametrize(
    ("start", "end", "first", "last"),
    [
        (6.5, 8.0, 6.0, 8.0),  # from the keyframe at/before start
        (6.0, 6.0, 6.0, 6.0),  # exactly on a keyframe
        (7.95, 9.0, 6.0, 9.0),  # just before the keyframe at 8.0 → previous GOP
        (0.0, 5.0, 4.0, 5.0),  # before what is held → from the oldest keyframe
        (8.0, 99.0, 8.0, 9.9),  # past the end → up to the newest packet
    ],
)
def test_window_by_media_time(start: float, end: float, first: float, last: float) -> None:
    got = _filled(5.0, 100).window(start, end)
    assert got[0].is_keyframe
    assert (got[0].pts_s, got[-1].pts_s) == (pytest.approx(first), pytest.approx(last))
    assert [p.pts for p in got] == sorted(p.pts for p in got if p.pts is not None)


def test_window_outside_or_inverted_is_empty() -> None:
    ring = _filled(5.0, 100)
    assert ring.window(1.0, 2.0) == []  # entirely before what is held
    assert ring.window(8.0, 7.0) == []
    assert PacketRingBuffer(3.0).window(0, 10) == []


def test_window_by_wall_time() -> None:
    got = _filled(5.0, 100).window_wall(1006.5, 1007.0)
    assert got[0].is_keyframe and got[0].wall_time == pytest.approx(1006.0)
    assert got[-1].wall_time == pytest.approx(1007.0)


def test_codec_change_drops_old_packets_and_reconnect_records_discontinuity() -> None:
    ring = _filled(30.0, 40)
    ring.start_segment(PARAMS, 4.5)  # same parameters: a reconnect, packets kept
    assert ring.discontinuities == [4.5] and len(ring) == 40
    ring.start_segment(StreamParams("h264", 1280, 720, TB, 10.0, b"\x01other", "yuv420p"), 9.0)
    assert len(ring) == 0 and ring.params is not None and ring.params.width == 1280
    assert ring.discontinuities == []


def test_rejects_non_positive_seconds() -> None:
    with pytest.raises(ValueError, match="seconds"):
        PacketRingBuffer(0)


def test_source_fills_ring_with_decodable_gops(sample_clip: pathlib.Path) -> None:
    with open_source(sample_clip, SourceConfig(analysis_fps=1, ring_seconds=6)) as source:
        for frame in source:
            if frame.pts >= 40:
                break
    ring = source.ring
    assert ring is not None and ring.params is not None
    assert (ring.params.codec_name, ring.params.width, ring.params.height) == ("h264", 768, 576)
    assert 6.0 <= ring.span_s < 8.0
    window = ring.window(35.5, 37.0)
    assert window[0].is_keyframe and window[0].pts_s == pytest.approx(34.0)  # GOP 20 at 10 fps → keyframes every 2 s
    assert window[-1].pts_s == pytest.approx(37.0)
    # the window decodes on its own with the stream's extradata: a clip can be cut from it without re-encoding
    codec = av.CodecContext.create("h264", "r")
    codec.extradata = ring.params.extradata
    decoded = [f for p in window for f in codec.decode(av.Packet(p.data))] + list(codec.decode(None))
    assert len(decoded) == len(window) == 31
