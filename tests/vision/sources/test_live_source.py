"""Live behaviour without an RTSP server: back-off against a dead port, drop-oldest under a slow consumer."""

from __future__ import annotations

import itertools
import logging
import os
import pathlib
import re
import socket
import time

import pytest

from vision.sources import EndOfStream, SourceConfig, SourceState, VideoSource, open_source

pytestmark = pytest.mark.timeout(60)


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _dead_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again: nothing listens there


def test_nothing_listening_backs_off_without_busy_loop(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="vision.sources.runner")
    url = f"rtsp://user:secret@127.0.0.1:{_dead_port()}/cam"
    cfg = SourceConfig(open_timeout_s=1, read_timeout_s=1, backoff_initial_s=0.1, backoff_max_s=0.8)
    source = open_source(url, cfg)
    try:
        assert source.read(timeout=3.0) is None  # no frame, no exception, no crash
        assert source.state == SourceState.RECONNECTING
        attempts = source.stats.connect_attempts
    finally:
        source.close()
    # delays 0.1, 0.2, 0.4, 0.8, 0.8 (±20 %) → about 6 attempts in 3 s; a busy loop would make thousands
    assert 3 <= attempts <= 10
    delays = [float(m) for m in re.findall(r"retrying in ([\d.]+)s", caplog.text)]
    assert delays[1] > delays[0] and delays[2] > delays[1]
    assert max(delays) <= 0.8
    assert "secret" not in caplog.text and "***@127.0.0.1" in caplog.text
    assert source.state == SourceState.STOPPED


def test_slow_consumer_drops_oldest_and_memory_stays_flat(sample_clip: pathlib.Path) -> None:
    cfg = SourceConfig(analysis_fps=None, realtime=True, queue_size=3, ring_seconds=0)
    delivered, queue_lengths, rss = [], [], []
    with open_source(sample_clip, cfg) as source:
        t0 = time.monotonic()
        while time.monotonic() - t0 < 3.0:
            frame = source.read(timeout=2.0)
            assert frame is not None
            delivered.append(frame.seq)
            queue_lengths.append(source.queued)
            rss.append(_rss_mb())
            time.sleep(0.3)  # a consumer at ~3 fps behind a 10 fps camera
        stats = source.stats
    assert stats.frames_dropped > 5
    assert stats.frames_kept >= len(delivered) + stats.frames_dropped
    assert max(queue_lengths) <= 3
    assert any(b - a > 1 for a, b in itertools.pairwise(delivered))  # seq gaps = dropped frames
    assert rss[-1] - rss[1] < 40  # bounded queue: no growth with the backlog


def test_realtime_file_is_paced_and_ends(sample_clip: pathlib.Path, tmp_path: pathlib.Path) -> None:
    short = tmp_path / "short.mp4"
    import av

    with av.open(str(sample_clip)) as src, av.open(str(short), "w") as dst:
        istream = src.streams.video[0]
        ostream = dst.add_stream_from_template(istream)
        for packet in src.demux(istream):
            if packet.dts is None:
                continue
            if packet.pts is not None and packet.pts * istream.time_base >= 2.0:  # 2 s = one GOP
                break
            packet.stream = ostream
            dst.mux(packet)
    source = VideoSource(short, SourceConfig(analysis_fps=5, realtime=True))
    t0 = time.monotonic()
    with source:
        frames = list(source)
    elapsed = time.monotonic() - t0
    assert [round(f.pts, 3) for f in frames] == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.2, 1.4, 1.6, 1.8]
    assert 1.5 < elapsed < 4.0  # paced at the clip's own speed, not as fast as possible
    assert source.state == SourceState.STOPPED
    with pytest.raises(EndOfStream):
        source.read(timeout=0.1)
