"""FFmpeg protocol whitelists: every source is opened with its scheme's protocols only (`vision.sources.media`)."""

from __future__ import annotations

import pathlib
import shutil
import socket

import av
import av.error
import pytest

from vision.sources import SourceConfig, SourceError, SourceOpenError
from vision.sources.media import PROTOCOLS, ffmpeg_input, is_url, open_input

FAST = SourceConfig(open_timeout_s=3, read_timeout_s=3, analysis_fps=None)


@pytest.mark.parametrize(
    ("uri", "target", "whitelist"),
    [
        ("/srv/clips/a.mp4", "file:/srv/clips/a.mp4", "file"),
        ("concat:/a.mp4|/b.mp4", "file:concat:/a.mp4|/b.mp4", "file"),  # a name, not a protocol
        ("file:///srv/a.mp4", "file:///srv/a.mp4", "file"),
        ("rtsp://u:p@cam1.example/sub", "rtsp://u:p@cam1.example/sub", PROTOCOLS["rtsp"]),
        ("HTTPS://cam1.example/live.m3u8", "https://cam1.example/live.m3u8", "http,https,tcp,tls,crypto"),
        ("tcp://127.0.0.1:9?listen=1", "tcp://127.0.0.1:9?listen=1", "tcp"),
    ],
)
def test_ffmpeg_input_by_scheme(uri: str, target: str, whitelist: str) -> None:
    assert ffmpeg_input(uri) == (target, whitelist)


def test_network_whitelists_never_include_files() -> None:
    for scheme, whitelist in PROTOCOLS.items():
        assert ("file" in whitelist.split(",")) == (scheme == "file"), scheme
    assert not is_url("file:///srv/a.mp4") and is_url("rtmps://cam1.example/x") and not is_url("gopher://x/")
    with pytest.raises(SourceOpenError, match="unsupported URL scheme 'gopher'"):
        ffmpeg_input("gopher://x/")


def test_a_file_under_an_rtsp_whitelist_does_not_open(sample_clip: pathlib.Path) -> None:
    _target, rtsp_whitelist = ffmpeg_input("rtsp://cam1.example/sub")
    with pytest.raises(av.error.FFmpegError):
        av.open(str(sample_clip), container_options={"protocol_whitelist": rtsp_whitelist})
    with av.open(str(sample_clip), container_options={"protocol_whitelist": "file"}) as container:
        assert container.streams.video[0].codec_context.name == "h264"


def test_files_and_file_urls_open(sample_clip: pathlib.Path) -> None:
    for uri in (str(sample_clip), "file://" + str(sample_clip)):
        container, stream = open_input(uri, FAST)
        with container:
            assert (stream.codec_context.width, stream.codec_context.height) == (768, 576)


def test_concat_pseudo_protocol_is_a_missing_file_name(sample_clip: pathlib.Path, tmp_path: pathlib.Path) -> None:
    with pytest.raises(SourceOpenError, match="file not found"):
        open_input(f"concat:{sample_clip}|{sample_clip}", FAST)
    literal = tmp_path / f"concat:{sample_clip.name}"  # a file really named so opens as that file
    shutil.copy(sample_clip, literal)
    container, _stream = open_input(str(literal), FAST)
    container.close()


def test_a_local_playlist_cannot_make_ffmpeg_connect(tmp_path: pathlib.Path) -> None:
    """An HLS playlist on disk naming an http:// segment: opened as a file, FFmpeg may not reach the network.

    FFmpeg 8's own default whitelist for nested opens refuses this too; this keeps it so whatever FFmpeg build runs.
    """
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(0.5)
        port = listener.getsockname()[1]
        playlist = tmp_path / "camera.m3u8"
        playlist.write_text(
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:1\n#EXT-X-MEDIA-SEQUENCE:0\n"
            f"#EXTINF:1.0,\nhttp://127.0.0.1:{port}/segment0.ts\n#EXT-X-ENDLIST\n",
            encoding="utf-8",
        )
        with pytest.raises(SourceError):
            container, _stream = open_input(str(playlist), FAST)
            container.close()
        with pytest.raises(TimeoutError):
            listener.accept()[0].close()  # nobody connected
