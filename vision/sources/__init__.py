"""Video sources: files and RTSP/HTTP streams → `Frame`s, with reconnects and a packet ring buffer for clips.

from vision.sources import SourceConfig, open_source
with open_source("rtsp://cam/stream", SourceConfig(analysis_fps=5)) as source:
    for frame in source:
        ...
"""

from vision.sources.config import SourceConfig
from vision.sources.errors import CorruptMediaError, EndOfStream, SourceError, SourceOpenError, SourceTimeoutError
from vision.sources.media import StreamInfo, is_url
from vision.sources.ringbuffer import EncodedPacket, PacketRingBuffer, StreamParams
from vision.sources.source import VideoSource, open_source
from vision.sources.state import SourceState, SourceStats, StateChange

__all__ = [
    "CorruptMediaError",
    "EncodedPacket",
    "EndOfStream",
    "PacketRingBuffer",
    "SourceConfig",
    "SourceError",
    "SourceOpenError",
    "SourceState",
    "SourceStats",
    "SourceTimeoutError",
    "StateChange",
    "StreamInfo",
    "StreamParams",
    "VideoSource",
    "is_url",
    "open_source",
]
