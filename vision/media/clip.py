"""Evidence clips by stream copy: encoded packets from the ring buffer → MP4, no decode, no re-encode.

`select_clip_packets` picks the packets of a window (from the keyframe at or before its start); `write_clip` muxes
them with PyAV into an MP4 with `+faststart` (moov before mdat), timestamps rebased to start at 0, the codec
parameters (avcC extradata, width, height) copied from `StreamParams`, so the file plays in a browser `<video>`.

How the stream is set up without an encoder (PyAV 18): with extradata (avcC from MP4, or SPS/PPS from an RTSP SDP)
`add_stream(codec)` creates a codec context that we open *before* setting the extradata, so `start_encoding()` does
not open it again and the extradata we set is what reaches the muxer (opening the encoder would replace it with its
own headers); the context never encodes anything. Without extradata (Annex-B, parameter sets in-band)
`add_mux_stream` creates a codec-context-free stream and PyAV recovers the parameter sets from the first keyframe.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import av.error

from vision.digest import sha256_file
from vision.media.packets import PacketLike, StreamParamsLike
from vision.media.results import WriteResult, describe_os_error, warn_missing

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ClipResult:
    """One written clip. `start_s`/`end_s`: media seconds of its first/last packet (on the job's clock when it comes
    from `ClipWriter`); `partial`: the window's end was not reached (source ended or the wait timed out) so the clip
    is shorter than planned."""

    file: WriteResult
    start_s: float = 0.0
    end_s: float = 0.0
    packets: int = 0
    partial: bool = False

    @property
    def duration_s(self) -> float:
        return max(0.0, self.end_s - self.start_s)


def select_clip_packets(packets: Sequence[PacketLike], start_s: float, end_s: float) -> list[PacketLike]:
    """Packets from the last keyframe at or before `start_s` (else the first keyframe after it) through `end_s`."""
    first = None
    for i, pkt in enumerate(packets):
        if pkt.is_keyframe and (first is None or pkt.pts_s <= start_s):
            first = i
        if pkt.pts_s > start_s and first is not None:
            break
    if first is None:
        return []
    return [p for p in packets[first:] if p.pts_s <= end_s]


def _in_time_base(value: int | None, src: Fraction, dst: Fraction) -> int | None:
    if value is None or src == dst:
        return value
    return round(value * src / dst)


def _packet_times(packets: Sequence[PacketLike], params: StreamParamsLike) -> list[tuple[int, int, int]]:
    """(pts, dts, duration) of each packet in `params.time_base`, rebased so the first dts is 0; gaps filled.

    A packet may carry its own `time_base` (the ring buffer's packets do, as segments after a reconnect may differ);
    it is rescaled to the stream's.
    """
    tb = Fraction(params.time_base)
    default_dur = max(1, round(1 / (Fraction(params.fps) * tb))) if params.fps else 1
    times: list[tuple[int, int, int]] = []
    prev_dts: int | None = None
    for pkt in packets:
        src = Fraction(getattr(pkt, "time_base", None) or tb)
        pts = _in_time_base(pkt.pts, src, tb)
        dts = _in_time_base(pkt.dts, src, tb)
        dts = dts if dts is not None else pts
        if dts is None:
            dts = (prev_dts + default_dur) if prev_dts is not None else 0
        if prev_dts is not None and dts <= prev_dts:
            dts = prev_dts + 1  # muxers require strictly increasing dts
        pts = pts if pts is not None else dts
        times.append((max(pts, dts), dts, _in_time_base(pkt.duration, src, tb) or 0))
        prev_dts = dts
    offset = times[0][1]
    out: list[tuple[int, int, int]] = []
    for i, (pts, dts, dur) in enumerate(times):
        if dur <= 0:
            dur = (times[i + 1][1] - dts) if i + 1 < len(times) else default_dur
        out.append((pts - offset, dts - offset, max(1, dur)))
    return out


def _add_video_stream(out: av.container.OutputContainer, params: StreamParamsLike) -> av.stream.Stream:
    tb = Fraction(params.time_base)
    rate = Fraction(params.fps).limit_denominator(1001) if params.fps else None
    if params.extradata:
        stream = out.add_stream(params.codec_name, rate=rate or 25, width=params.width, height=params.height)
        ctx = stream.codec_context
        ctx.time_base = tb
        ctx.options = {"threads": "1"}
        ctx.open()  # see module docstring: opened first so the extradata set below is kept
        ctx.extradata = params.extradata
        stream.time_base = tb
        return stream
    return out.add_mux_stream(params.codec_name, rate=rate, width=params.width, height=params.height, time_base=tb)


def _mux(packets: Sequence[PacketLike], params: StreamParamsLike, tmp_path: str, faststart: bool) -> None:
    options = {"movflags": "+faststart"} if faststart else {}
    with av.open(tmp_path, mode="w", format="mp4", options=options) as out:
        stream = _add_video_stream(out, params)
        for pkt, (pts, dts, dur) in zip(packets, _packet_times(packets, params), strict=True):
            avp = av.Packet(pkt.data)
            avp.pts, avp.dts, avp.duration = pts, dts, dur
            avp.time_base = params.time_base
            avp.is_keyframe = pkt.is_keyframe
            avp.stream = stream
            out.mux(avp)


def write_clip(
    packets: Sequence[PacketLike],
    params: StreamParamsLike,
    path: Path,
    *,
    faststart: bool = True,
    partial: bool = False,
) -> ClipResult:
    """Mux `packets` (starting at a keyframe) into an MP4 at `path` by stream copy.

    Never raises for I/O or muxing failures: returns a result whose `file.missing` is True with the reason.
    """
    first_key = next((i for i, p in enumerate(packets) if p.is_keyframe), None)
    if first_key is None:
        reason = "no packets in the clip window" if not packets else "no keyframe in the clip window"
        warn_missing(path, reason)
        return ClipResult(WriteResult.failed(path, reason), partial=partial)
    packets = packets[first_key:]
    tmp: str | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".mp4", dir=path.parent)
        os.close(fd)
        _mux(packets, params, tmp, faststart)
        os.replace(tmp, path)
        tmp = None
        file = WriteResult(path=path, sha256=sha256_file(path), size=path.stat().st_size)
    except OSError as exc:  # includes av.error.OSError (ENOSPC from the muxer's writes)
        reason = describe_os_error(exc)
        warn_missing(path, reason)
        return ClipResult(WriteResult.failed(path, reason), partial=partial)
    except (av.error.FFmpegError, ValueError) as exc:
        reason = f"muxing failed: {exc}"
        warn_missing(path, reason)
        return ClipResult(WriteResult.failed(path, reason), partial=partial)
    finally:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
    log.debug("clip written: %s (%d packets)", path, len(packets))
    return ClipResult(file, packets[0].pts_s, packets[-1].pts_s, len(packets), partial)
