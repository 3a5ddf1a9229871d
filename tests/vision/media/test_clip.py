"""Clips by stream copy from real H.264 packets (sample_media/vtest.mp4: 10 fps, keyframe every 2 s)."""

from __future__ import annotations

import json
import struct
import subprocess
from pathlib import Path
from typing import Any

import av
import pytest

from tests.vision.media.packets_util import demux
from vision.media.clip import select_clip_packets, write_clip

FFPROBE = "/usr/bin/ffprobe"


@pytest.fixture(scope="module")
def vtest(sample_clip: Path) -> tuple[Any, list[Any]]:
    return demux(sample_clip)


def _ffprobe(path: Path) -> dict[str, Any]:
    out = subprocess.run(
        [FFPROBE, "-v", "error", "-count_frames", "-show_streams", "-show_format", "-of", "json", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stderr == "", f"ffprobe reported errors: {out.stderr}"
    data: dict[str, Any] = json.loads(out.stdout)
    return data


def _top_level_atoms(path: Path) -> list[str]:
    atoms = []
    with path.open("rb") as fh:
        while header := fh.read(8):
            size, kind = struct.unpack(">I4s", header)
            if size == 1:
                size = struct.unpack(">Q", fh.read(8))[0] - 8
            atoms.append(kind.decode("latin-1"))
            fh.seek(size - 8, 1)
    return atoms


def test_clip_window_is_stream_copied_and_browser_ready(vtest: tuple[Any, list[Any]], tmp_path: Path) -> None:
    params, packets = vtest
    start, end, pre, post = 10.0, 14.0, 3.0, 2.0
    chosen = select_clip_packets(packets, start - pre, end + post)
    assert chosen[0].is_keyframe and chosen[0].pts_s <= start - pre
    result = write_clip(chosen, params, tmp_path / "clip-000.mp4")
    assert not result.file.missing and result.file.sha256 is not None
    assert result.packets == len(chosen)

    probe = _ffprobe(result.file.path)
    (stream,) = probe["streams"]
    assert (stream["codec_name"], stream["profile"], stream["width"], stream["height"]) == ("h264", "High", 768, 576)
    assert int(stream["nb_read_frames"]) == len(chosen)
    assert float(stream["start_time"]) == 0.0
    duration = float(probe["format"]["duration"])
    assert pre + (end - start) + post <= duration <= pre + (end - start) + post + 2.0 + 0.1  # within one GOP
    atoms = _top_level_atoms(result.file.path)
    assert atoms.index("moov") < atoms.index("mdat"), atoms

    with av.open(str(result.file.path)) as clip:
        out_stream = clip.streams.video[0]
        assert out_stream.codec_context.extradata == params.extradata
        out_packets = [p for p in clip.demux(out_stream) if p.size]
        assert [bytes(p) for p in out_packets] == [p.data for p in chosen]  # identical bytes: no re-encode
        assert out_packets[0].is_keyframe and out_packets[0].pts == 0
        clip.seek(0)
        first = next(clip.decode(video=0))
        assert (first.width, first.height) == (768, 576) and first.key_frame


def test_annexb_packets_without_extradata_are_muxed(sample_clip: Path, tmp_path: Path) -> None:
    """RTSP-like input: Annex-B packets, SPS/PPS in-band, no extradata → a valid MP4 with avcC recovered."""
    params, packets = demux(sample_clip, annexb=True)
    assert params.extradata is None
    chosen = select_clip_packets(packets, 4.5, 8.0)
    result = write_clip(chosen, params, tmp_path / "rtsp.mp4")
    assert not result.file.missing, result.file.reason
    (stream,) = _ffprobe(result.file.path)["streams"]
    assert (stream["codec_name"], stream["profile"], stream["width"]) == ("h264", "High", 768)
    assert int(stream["nb_read_frames"]) == len(chosen)
    assert float(stream["start_time"]) == 0.0


@pytest.mark.parametrize(
    ("start", "end", "first_pts", "last_pts"),
    [
        (7.0, 16.0, 6.0, 16.0),  # keyframe before the start
        (6.0, 6.5, 6.0, 6.5),  # start exactly on a keyframe
        (0.0, 0.3, 0.0, 0.3),  # the very beginning
        (-5.0, 1.0, 0.0, 1.0),  # pre-roll before the source opened: from the first keyframe
        (78.0, 999.0, 78.0, 79.4),  # past the end: what there is
    ],
)
def test_select_clip_packets_starts_at_keyframe(
    vtest: tuple[Any, list[Any]], start: float, end: float, first_pts: float, last_pts: float
) -> None:
    _, packets = vtest
    chosen = select_clip_packets(packets, start, end)
    assert chosen[0].is_keyframe
    assert chosen[0].pts_s == pytest.approx(first_pts)
    assert chosen[-1].pts_s == pytest.approx(last_pts)


@pytest.mark.parametrize(
    ("slice_", "reason"),
    [(slice(0, 0), "no packets in the clip window"), (slice(1, 10), "no keyframe in the clip window")],
)
def test_write_clip_without_keyframe_reports_missing(
    vtest: tuple[Any, list[Any]], tmp_path: Path, slice_: slice, reason: str
) -> None:
    params, packets = vtest
    result = write_clip(packets[slice_], params, tmp_path / "x.mp4")
    assert result.file.missing and result.file.reason == reason
    assert not (tmp_path / "x.mp4").exists()
