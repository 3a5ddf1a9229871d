"""Decoder threading: small streams (substreams) decode in one thread unless the config says otherwise."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from vision.sources import SourceConfig
from vision.sources.media import decoder_threads, open_input


def test_decoder_threads_policy() -> None:
    auto = SourceConfig()
    assert decoder_threads(auto, 640, 360) == 1
    assert decoder_threads(auto, 1280, 720) == 1
    assert decoder_threads(auto, 1920, 1080) == 0  # FFmpeg's own choice for a main stream
    assert decoder_threads(auto, 0, 0) == 0  # size not known at open: FFmpeg's choice
    assert decoder_threads(SourceConfig(threads=4), 640, 360) == 4  # an explicit count always wins


def test_open_input_sets_the_decoder_threads(sample_clip: Path, tmp_path: Path) -> None:
    container, stream = open_input(str(sample_clip), SourceConfig())  # 768x576
    try:
        assert stream.codec_context.thread_count == 1
        frame = next(container.decode(stream))
        assert frame.width == 768
    finally:
        container.close()
    big = tmp_path / "fhd.mp4"
    try:
        subprocess.run(
            ["ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=25:duration=0.4",
             "-c:v", "libx264", "-preset", "ultrafast", str(big)],
            check=True, timeout=60,
        )  # fmt: skip
    except FileNotFoundError:
        pytest.fail("ffmpeg (Debian package, installed by `make system-deps`) is missing")
    container, stream = open_input(str(big), SourceConfig())
    try:
        assert stream.codec_context.thread_count != 1
        assert next(container.decode(stream)).width == 1920
    finally:
        container.close()
