"""Against a real RTSP server (gst-rtsp-server): frames, kill + restart, freeze (hang), record-only streams."""

from __future__ import annotations

import itertools
import pathlib
import time
from collections.abc import Iterator

import av
import av.bitstream
import pytest

from tests.fixtures.rtsp import RtspServer
from vision.sources import SourceConfig, SourceState, VideoSource, open_source
from vision.types import Frame

pytestmark = [pytest.mark.rtsp, pytest.mark.timeout(60)]

FAST = SourceConfig(
    analysis_fps=5, open_timeout_s=2, read_timeout_s=1, backoff_initial_s=0.2, backoff_max_s=1, ring_seconds=10
)


def _frames(source: VideoSource, n: int, within_s: float = 10.0) -> list[Frame]:
    out: list[Frame] = []
    deadline = time.monotonic() + within_s
    while len(out) < n and time.monotonic() < deadline:
        frame = source.read(timeout=0.5)
        if frame is not None:
            out.append(frame)
    assert len(out) == n, f"only {len(out)} of {n} frames within {within_s}s; state {source.state}"
    return out


def _wait_state(source: VideoSource, state: SourceState, within_s: float) -> float:
    t0 = time.monotonic()
    while source.state != state:
        assert time.monotonic() - t0 < within_s, f"still {source.state} after {within_s}s, wanted {state}"
        source.read(timeout=0.05)  # keep consuming, as a pipeline would
    return time.monotonic() - t0


def test_frames_arrive_from_rtsp(rtsp_server: RtspServer) -> None:
    with open_source(rtsp_server.url("cam1"), FAST, camera_id="cam1") as source:
        frames = _frames(source, 8)
        assert source.info is not None
        assert (source.info.codec, source.info.width, source.info.height) == ("h264", 768, 576)
        assert source.state == SourceState.STREAMING
        ring = source.ring
        assert ring is not None and len(ring) > 0 and ring.window(0, 1e9)[0].is_keyframe
    pts = [f.pts for f in frames]
    assert all(b > a for a, b in itertools.pairwise(pts))
    assert pts[-1] - pts[0] == pytest.approx(1.4, abs=0.15)  # 5 fps by media time
    assert frames[0].image.shape == (576, 768, 3)


def test_reconnects_after_server_killed_and_restarted(rtsp_server: RtspServer) -> None:
    with open_source(rtsp_server.url("cam2"), FAST) as source:
        before = _frames(source, 3)
        rtsp_server.kill()
        _wait_state(source, SourceState.RECONNECTING, within_s=5)
        rtsp_server.restart()
        after = _frames(source, 3, within_s=15)
        stats = source.stats
    assert stats.reconnects == 1
    assert after[0].pts > before[-1].pts  # media time never goes backwards across a reconnect
    assert [c.state for c in source.states][:4] == [
        SourceState.CONNECTING,
        SourceState.STREAMING,
        SourceState.RECONNECTING,
        SourceState.STREAMING,
    ]


def test_hung_server_is_detected_then_recovers(rtsp_server: RtspServer) -> None:
    with open_source(rtsp_server.url("cam3"), FAST) as source:
        _frames(source, 3)
        rtsp_server.freeze()
        detected_after = _wait_state(source, SourceState.RECONNECTING, within_s=10)
        rtsp_server.thaw()
        after = _frames(source, 3, within_s=15)
        reasons = [c.reason for c in source.states if c.state == SourceState.RECONNECTING]
    assert detected_after <= 2 * FAST.read_timeout_s + 1.0  # ~2x the read timeout
    assert "timed out" in reasons[0]
    assert source.stats.reconnects >= 1 and after[-1].pts > after[0].pts


def test_record_stream_fills_ring_without_decoding(rtsp_server: RtspServer) -> None:
    record = SourceConfig(decode=False, ring_seconds=5, open_timeout_s=2, read_timeout_s=1)
    with open_source(rtsp_server.url("record"), record) as source:
        assert source.wait_ready(5)
        assert source.read(timeout=1.5) is None  # packets only: nothing to analyse
        stats = source.stats
        ring = source.ring
        assert ring is not None and ring.params is not None
        assert ring.params.extradata  # SPS/PPS for a stream-copy muxer
        packets = ring.window(0, 1e9)
    assert stats.packets >= 10 and stats.frames_decoded == 0
    assert packets[0].is_keyframe and packets[0].pts_s == pytest.approx(0.0, abs=0.11)


@pytest.fixture
def one_gop_server(rtsp_stream_file: pathlib.Path, tmp_path: pathlib.Path) -> Iterator[RtspServer]:
    """A server looping only the first 2 s (one GOP) of the clip, to see the loop quickly."""
    short = tmp_path / "one-gop.h264"
    data = rtsp_stream_file.read_bytes()
    with av.open(str(rtsp_stream_file), format="h264") as c:
        cut = [p.pos for p in c.demux(video=0) if p.is_keyframe and p.pos is not None][1]
    short.write_bytes(data[:cut])
    server = RtspServer(short, mounts=("loop",)).start()
    yield server
    server.stop()


def test_server_loops_like_a_camera_that_never_ends(one_gop_server: RtspServer) -> None:
    with open_source(one_gop_server.url("loop"), FAST.model_copy(update={"analysis_fps": 2})) as source:
        frames = _frames(source, 8, within_s=12)  # 4 s of stream from a 2 s file
        assert source.stats.reconnects == 0 and source.stats.decode_errors == 0
    pts = [f.pts for f in frames]
    assert all(b > a for a, b in itertools.pairwise(pts))
    assert pts[-1] >= 3.4
