"""Replay mode: a file read as fast as the consumer goes, every analysis frame, deterministically."""

from __future__ import annotations

import itertools
import os
import pathlib

import numpy as np
import pytest

from vision.sources import CorruptMediaError, SourceConfig, SourceOpenError, SourceState, VideoSource, open_source


def _read(path: pathlib.Path, **cfg: object) -> tuple[list[tuple[int, float, int]], VideoSource]:
    source = VideoSource(path, SourceConfig(**cfg), camera_id="cam")  # type: ignore[arg-type]
    with source:
        rows = [(f.seq, f.pts, int(f.image[::16, ::16].sum())) for f in source]
    return rows, source


def test_fast_mode_keeps_every_analysis_frame_with_media_pts(sample_clip: pathlib.Path) -> None:
    rows, source = _read(sample_clip, analysis_fps=5)
    # 795 frames at 10 fps → every 2nd frame: pts 0.0, 0.2, ..., 79.4
    assert len(rows) == 398
    assert [seq for seq, _, _ in rows] == list(range(398))
    assert np.allclose([pts for _, pts, _ in rows], np.arange(398) * 0.2, atol=1e-6)
    stats = source.stats
    assert (stats.frames_decoded, stats.frames_kept, stats.frames_dropped) == (795, 398, 0)
    assert [c.state for c in source.states] == [SourceState.CONNECTING, SourceState.STREAMING, SourceState.STOPPED]


def test_fast_mode_is_deterministic(sample_clip: pathlib.Path) -> None:
    first, _ = _read(sample_clip, analysis_fps=2, ring_seconds=0)
    second, _ = _read(sample_clip, analysis_fps=2, ring_seconds=0)
    assert first == second
    assert len(first) == 159  # 0.0, 0.5, ..., 79.0


def test_frames_are_rgb_and_info_is_known_after_open(sample_clip: pathlib.Path) -> None:
    with open_source(sample_clip, SourceConfig(analysis_fps=None), camera_id="gate-3") as source:
        assert source.info is not None
        assert (source.info.width, source.info.height, source.info.codec, source.info.fps) == (768, 576, "h264", 10.0)
        frame = source.read()
    assert frame is not None
    assert frame.image.shape == (576, 768, 3) and frame.image.dtype == np.uint8
    assert frame.camera_id == "gate-3" and frame.pts == 0.0
    # RGB, not BGR: compare with PyAV's own bgr24 conversion of the same first frame
    import av

    with av.open(str(sample_clip)) as c:
        bgr = next(c.decode(video=0)).to_ndarray(format="bgr24")
    assert np.array_equal(frame.image, bgr[..., ::-1])


def test_every_frame_when_analysis_fps_is_none(sample_clip: pathlib.Path) -> None:
    with open_source(sample_clip, SourceConfig(analysis_fps=None, ring_seconds=0)) as source:
        pts = [f.pts for _, f in zip(range(30), source, strict=False)]
    assert np.allclose(pts, np.arange(30) * 0.1, atol=1e-6)


def test_fast_loop_continues_pts_monotonically(sample_clip: pathlib.Path) -> None:
    with open_source(sample_clip, SourceConfig(analysis_fps=1, loop=True, ring_seconds=0)) as source:
        pts = [f.pts for _, f in zip(range(85), source, strict=False)]
    assert all(b > a for a, b in itertools.pairwise(pts))
    assert pts[79] == pytest.approx(79.0) and pts[80] == pytest.approx(80.0)  # clip is 79.5 s; loop 2 starts at 79.5


@pytest.fixture
def truncated_clip(sample_clip: pathlib.Path, tmp_path: pathlib.Path) -> pathlib.Path:
    data = sample_clip.read_bytes()
    out = tmp_path / "truncated.mp4"
    out.write_bytes(data[: len(data) // 3])
    return out


@pytest.fixture
def moov_less_clip(sample_clip: pathlib.Path, tmp_path: pathlib.Path) -> pathlib.Path:
    """An MP4 cut off before its index: the header parses as MP4 but there is no moov box."""
    out = tmp_path / "cut-header.mp4"
    out.write_bytes(sample_clip.read_bytes()[:30])
    return out


@pytest.fixture
def random_file(tmp_path: pathlib.Path) -> pathlib.Path:
    out = tmp_path / "random.mp4"
    out.write_bytes(np.random.default_rng(7).integers(0, 256, 200_000, dtype=np.uint8).tobytes())
    return out


def test_truncated_mp4_is_a_clear_error_naming_the_file(truncated_clip: pathlib.Path) -> None:
    source = open_source(truncated_clip, SourceConfig(analysis_fps=5))
    frames = 0
    with pytest.raises(CorruptMediaError, match=r"truncated\.mp4: file ends early at \d+\.\ds") as info:
        for _ in source:
            frames += 1
    assert frames > 0  # what could be read was delivered before the error
    assert "Traceback" not in str(info.value)
    assert source.state == SourceState.FAILED


@pytest.mark.parametrize("fixture", ["random_file", "moov_less_clip"])
def test_unreadable_file_fails_at_open(fixture: str, request: pytest.FixtureRequest) -> None:
    path: pathlib.Path = request.getfixturevalue(fixture)
    with pytest.raises(CorruptMediaError, match=rf"{path.name}: not a readable video file"):
        open_source(path)


def test_missing_file(tmp_path: pathlib.Path) -> None:
    with pytest.raises(SourceOpenError, match=r"nope\.mp4: file not found"):
        open_source(tmp_path / "nope.mp4")


def test_directory_is_not_a_video(tmp_path: pathlib.Path) -> None:
    with pytest.raises(SourceOpenError, match=os.path.basename(tmp_path)):
        open_source(tmp_path)


@pytest.fixture(scope="module")
def bframe_clip(sample_clip: pathlib.Path, tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """4 s of the sample at 25 fps, re-encoded by ffmpeg with x264's B-frames (as many encoders send)."""
    import shutil
    import subprocess

    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg (Debian package) is not installed")
    out = tmp_path_factory.mktemp("bf") / "bframes.mp4"
    cmd = ["ffmpeg", "-loglevel", "error", "-y", "-i", str(sample_clip), "-t", "4", "-vf", "scale=384:288,fps=25"]
    cmd += ["-c:v", "libx264", "-preset", "veryfast", "-bf", "3", "-g", "50", "-an", str(out)]
    subprocess.run(cmd, check=True)
    return out


@pytest.mark.parametrize(("skip", "skips"), [("auto", True), ("off", False)])
def test_skip_nonref_decodes_less_and_keeps_the_analysis_rate(
    bframe_clip: pathlib.Path, skip: str, skips: bool
) -> None:
    cfg = SourceConfig(analysis_fps=5, skip_nonref=skip, ring_seconds=10)  # type: ignore[arg-type]
    with open_source(bframe_clip, cfg) as source:
        frames = list(source)
        stats = source.stats
        ring = source.ring
    assert stats.packets == 100
    assert (stats.frames_decoded < 90) is skips  # non-reference B-frames were not decoded
    assert 19 <= len(frames) <= 21  # 4 s at 5 fps, either way
    pts = [f.pts for f in frames]
    assert all(b > a for a, b in itertools.pairwise(pts))
    assert all(abs(p - round(p * 5) / 5) <= 0.12 for p in pts)  # within ~2 frames (80 ms) of the 0.2 s grid
    assert ring is not None and len(ring) == 100  # clips still get every packet
