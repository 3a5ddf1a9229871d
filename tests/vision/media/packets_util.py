"""Real encoded packets for the evidence tests: sample_media/vtest.mp4 demuxed with PyAV into the ring buffer's own
types (`vision.sources.ringbuffer.EncodedPacket`, `StreamParams`), exactly what the source pushes."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av

from vision.sources.ringbuffer import EncodedPacket, PacketRingBuffer, StreamParams


def demux(
    path: Path, *, wall_start: float = 1_700_000_000.0, annexb: bool = False
) -> tuple[StreamParams, list[EncodedPacket]]:
    """(StreamParams, packets) of the first video stream; `annexb` converts to Annex-B with in-band SPS/PPS (RTSP-like,
    extradata None)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        ctx = stream.codec_context
        tb = Fraction(stream.time_base or Fraction(1, 90000))
        params = StreamParams(
            codec_name=ctx.name,
            width=ctx.width,
            height=ctx.height,
            time_base=tb,
            fps=float(stream.average_rate) if stream.average_rate else None,
            extradata=None if annexb else ctx.extradata,
            pix_fmt=ctx.pix_fmt,
        )
        raw = [p for p in container.demux(stream) if p.size]
        if annexb:
            bsf = av.bitstream.BitStreamFilterContext("h264_mp4toannexb", in_stream=stream)
            raw = [q for p in raw for q in bsf.filter(p)] + list(bsf.filter(None))
        first = raw[0].pts or 0
        return params, [
            EncodedPacket(
                data=bytes(p),
                pts=None if p.pts is None else p.pts - first,
                dts=None if p.dts is None else p.dts - first,
                duration=p.duration,
                is_keyframe=p.is_keyframe,
                wall_time=wall_start + float(((p.pts or 0) - first) * tb),
                time_base=tb,
            )
            for p in raw
        ]


def make_source(params: StreamParams, seconds: float = 120.0) -> PacketRingBuffer:
    """The real packet ring buffer, opened with `params`; tests `.push` packets into it as a live source would."""
    buf = PacketRingBuffer(seconds)
    buf.start_segment(params, 0.0)
    return buf
