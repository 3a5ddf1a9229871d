"""`probe`: one watch of the real sample clip (as a file and paced like a camera), a dead port and a missing file."""

from __future__ import annotations

import pathlib
import socket

import pytest
from pydantic import ValidationError

from vision.sources import SourceConfig, SourceOpenError, SourceState
from vision.sources.probe import probe, probe_config

pytestmark = pytest.mark.timeout(60)


def test_file_is_read_for_media_seconds(sample_clip: pathlib.Path) -> None:
    report = probe(sample_clip, probe_config(2.0, analysis_fps=5, open_timeout_s=5, read_timeout_s=5), 2.0)
    assert report.info is not None and (report.info.width, report.info.height, report.info.codec) == (768, 576, "h264")
    assert report.fps == pytest.approx(10.0)  # 10 fps clip: decoded frames per media second, not kept ones
    assert report.stats.frames_kept == 11 and report.stats.frames_dropped == 0 and report.error is None
    assert report.state == SourceState.STREAMING  # the state during the watch, not after closing
    assert [c.state for c in report.states] == [SourceState.CONNECTING, SourceState.STREAMING, SourceState.STOPPED]
    assert report.source == str(sample_clip) and report.seconds == 2.0


def test_paced_file_is_watched_like_a_camera(sample_clip: pathlib.Path) -> None:
    """`realtime` makes the file live: watched for wall seconds, the rate still measured in media time."""
    config = SourceConfig(analysis_fps=5, realtime=True, ring_seconds=0)
    report = probe(sample_clip, config, 1.5)
    assert report.stats.frames_kept >= 4 and report.fps == pytest.approx(10.0, rel=0.15)
    assert report.state == SourceState.STREAMING and report.error is None


def test_nothing_listening_reports_instead_of_raising() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])  # closed again: nothing listens there
    url = f"rtsp://user:secret@127.0.0.1:{port}/cam"
    report = probe(url, probe_config(1.0, analysis_fps=5, open_timeout_s=1, read_timeout_s=1), 1.0)
    assert report.info is None and report.fps is None and report.stats.frames_decoded == 0
    assert report.state == SourceState.RECONNECTING
    assert report.source == f"rtsp://***@127.0.0.1:{port}/cam" and "secret" not in str(report.error)
    assert report.error is not None and "cannot open" in report.error


def test_missing_file_raises(tmp_path: pathlib.Path) -> None:
    with pytest.raises(SourceOpenError, match="file not found"):
        probe(tmp_path / "none.mp4", probe_config(1.0, analysis_fps=5, open_timeout_s=1, read_timeout_s=1), 1.0)


@pytest.mark.parametrize(("seconds", "cap"), [(0.2, 0.5), (3.0, 1.5), (60.0, 5.0)])
def test_config_fits_reconnects_into_the_watch(seconds: float, cap: float) -> None:
    config = probe_config(seconds, analysis_fps=5, open_timeout_s=1, read_timeout_s=1)
    assert config.backoff_max_s == cap and config.ring_seconds == 0


def test_config_rejects_bad_values() -> None:
    with pytest.raises(ValidationError, match="less than or equal to 120"):
        probe_config(1.0, analysis_fps=500, open_timeout_s=1, read_timeout_s=1)
