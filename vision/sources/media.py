"""Opening a container with PyAV: options for live URLs, decoder threading, and errors mapped to SourceError.

Every source is opened with an FFmpeg protocol whitelist chosen by its scheme (`PROTOCOLS`): a file path may use
the `file` protocol only, an `rtsp://` URL RTSP's transports only, and so on. What a stream refers to is opened under
the same whitelist (an HLS playlist's segments, an RTSP server's redirect, the `concat:`/`subfile:` pseudo-protocols
a file name could spell), so a camera URL cannot reach a local file, and a local file cannot reach the network.
File paths are handed to FFmpeg as `file:<path>`, so a name is always a name, never a protocol.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
import av.container
import av.error
import av.video.stream

from vision.redact import redact_url
from vision.sources.config import SourceConfig
from vision.sources.errors import CorruptMediaError, SourceError, SourceOpenError, SourceTimeoutError
from vision.sources.ringbuffer import StreamParams

log = logging.getLogger(__name__)

#: URL scheme → the FFmpeg protocols it may use (`protocol_whitelist`): its own and the transports under it.
PROTOCOLS: dict[str, str] = {
    "file": "file",
    "rtsp": "rtsp,rtsps,rtp,srtp,tcp,udp,tls",
    "rtsps": "rtsp,rtsps,rtp,srtp,tcp,udp,tls",
    "http": "http,https,tcp,tls,crypto",  # crypto: AES-128 HLS segments
    "https": "http,https,tcp,tls,crypto",
    "rtmp": "rtmp,rtmps,tcp,tls",
    "rtmps": "rtmp,rtmps,tcp,tls",
    "srt": "srt",
    "udp": "udp",
    "rtp": "rtp,udp",
    "tcp": "tcp",
}
_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*)://")


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """The video stream as opened: available from `VideoSource.info` once the source is open."""

    width: int
    height: int
    codec: str
    fps: float | None
    time_base: Fraction
    pix_fmt: str | None


def scheme_of(uri: str) -> str | None:
    """The lower-case scheme of a `scheme://…` URL, None for a file path."""
    match = _SCHEME.match(uri)
    return match.group("scheme").lower() if match else None


def is_url(uri: str) -> bool:
    """A network stream of a known scheme (not a file path, not a `file://` URL)."""
    scheme = scheme_of(uri)
    return scheme is not None and scheme != "file" and scheme in PROTOCOLS


def ffmpeg_input(uri: str) -> tuple[str, str]:
    """What to hand FFmpeg for `uri` (the scheme in lower case, as FFmpeg's protocol names are), and the protocol
    whitelist to open it with. Raises SourceOpenError for a scheme no source may use."""
    scheme = scheme_of(uri)
    if scheme is None:
        return "file:" + uri, PROTOCOLS["file"]
    whitelist = PROTOCOLS.get(scheme)
    if whitelist is None:
        raise SourceOpenError(f"{describe(uri)}: unsupported URL scheme '{scheme}'")
    return scheme + uri[len(scheme) :], whitelist


def _local_path(uri: str) -> str:
    """The file a path or `file://` URL names (FFmpeg's file protocol strips `file:` and keeps the rest)."""
    return uri[len("file:") :] if scheme_of(uri) == "file" else uri


def describe(uri: str) -> str:
    """The source's name for logs and errors: URLs without credentials."""
    return redact_url(uri)


def open_input(uri: str, cfg: SourceConfig) -> tuple[av.container.InputContainer, av.video.stream.VideoStream]:
    """Open `uri` and its first video stream, with the decoder configured; raise a SourceError naming the source.

    FFmpeg may use only the protocols of `uri`'s scheme (module docs).
    """
    target, whitelist = ffmpeg_input(uri)
    url = is_url(uri)
    if not url and not os.path.exists(_local_path(uri)):
        raise SourceOpenError(f"{describe(uri)}: file not found")
    options: dict[str, str] = {}
    if uri.lower().startswith(("rtsp://", "rtsps://")):
        options["rtsp_transport"] = "tcp"
    if url:
        options["analyzeduration"] = str(int(cfg.probe_s * 1_000_000))
    try:
        container = av.open(
            target,
            options=options,
            container_options={"protocol_whitelist": whitelist},
            timeout=(cfg.open_timeout_s, cfg.read_timeout_s),
        )
    except Exception as exc:
        raise map_error(uri, exc, opening=True) from exc
    try:
        stream = container.streams.video[0]
    except IndexError:
        container.close()
        raise CorruptMediaError(f"{describe(uri)}: no video stream") from None
    ctx = stream.codec_context
    ctx.thread_type = cfg.thread_type
    ctx.thread_count = decoder_threads(cfg, ctx.width, ctx.height)
    if skips_nonref(cfg, stream):
        ctx.skip_frame = "NONREF"
    return container, stream


#: Streams up to this many pixels decode in one thread when `threads` is 0 (auto).
SINGLE_THREAD_MAX_PIXELS = 1280 * 720


def decoder_threads(cfg: SourceConfig, width: int, height: int) -> int:
    """The decoder's thread count: `cfg.threads` when set; for 0 (auto) one thread for a stream of at most 1280x720
    (a substream decodes in a fraction of a millisecond a frame, and FFmpeg's frame threads only add thread wake-ups,
    ~5-7% of a quiet camera's CPU over RTSP in bench/results/capacity.md, and a frame of delay each), else FFmpeg's
    own choice (0). A stream whose size is not known yet (0x0) gets FFmpeg's choice."""
    if cfg.threads or not width or not height:
        return cfg.threads
    return 1 if width * height <= SINGLE_THREAD_MAX_PIXELS else 0


def skips_nonref(cfg: SourceConfig, stream: av.video.stream.VideoStream) -> bool:
    """Skip decoding non-reference frames when at most every other frame is analysed (`skip_nonref`)."""
    if not cfg.decode or cfg.skip_nonref == "off":
        return False
    if cfg.skip_nonref == "on":
        return True
    rate = stream.average_rate or stream.guessed_rate
    return cfg.analysis_fps is not None and rate is not None and float(rate) >= 2 * cfg.analysis_fps


def map_error(uri: str, exc: BaseException, *, opening: bool) -> SourceError:
    """Translate a PyAV/OS error into the hierarchy, with a one-line message naming the source."""
    name = describe(uri)
    what = "cannot open" if opening else "read failed"
    reason = describe(getattr(exc, "strerror", None) or str(exc) or type(exc).__name__)
    if isinstance(exc, SourceError):
        return exc
    if isinstance(exc, av.error.ExitError | av.error.TimeoutError | TimeoutError):
        return SourceTimeoutError(f"{name}: {what}: timed out (no data within the configured timeout)")
    if isinstance(exc, av.error.InvalidDataError) and not is_url(uri):
        return CorruptMediaError(f"{name}: not a readable video file (corrupt or truncated: {reason})")
    if isinstance(exc, av.error.FileNotFoundError) and not is_url(uri):
        return SourceOpenError(f"{name}: file not found")
    return SourceOpenError(f"{name}: {what}: {reason}")


def stream_info(stream: av.video.stream.VideoStream) -> StreamInfo:
    ctx = stream.codec_context
    rate = stream.average_rate or stream.guessed_rate
    return StreamInfo(
        width=int(ctx.width),
        height=int(ctx.height),
        codec=str(ctx.name),
        fps=float(rate) if rate else None,
        time_base=_time_base(stream),
        pix_fmt=ctx.pix_fmt,
    )


def stream_params(stream: av.video.stream.VideoStream) -> StreamParams:
    info = stream_info(stream)
    extradata: Any = stream.codec_context.extradata
    return StreamParams(
        codec_name=info.codec,
        width=info.width,
        height=info.height,
        time_base=info.time_base,
        fps=info.fps,
        extradata=bytes(extradata) if extradata else None,
        pix_fmt=info.pix_fmt,
    )


def _time_base(stream: av.video.stream.VideoStream) -> Fraction:
    tb = stream.time_base
    return Fraction(tb.numerator, tb.denominator) if tb else Fraction(1, 90000)


def expected_frames(stream: av.video.stream.VideoStream) -> int:
    """Frames the container says the stream has (0 when unknown, e.g. live)."""
    return int(stream.frames or 0)
