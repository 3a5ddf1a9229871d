"""The source's state machine: open → stream → (disconnect → back off → reopen)* → stopped | failed.

One generator serves both modes: a fast file replay iterates it in the consumer's thread (back-pressure, nothing
dropped); a live URL or a paced file iterates it in a capture thread that feeds a drop-oldest queue.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Generator, Iterator

import av.container
import av.video.stream

from vision.sources.config import SourceConfig
from vision.sources.errors import SourceError
from vision.sources.media import StreamInfo, describe, is_url, open_input, stream_info, stream_params
from vision.sources.reader import FrameSampler, KeptFrame, SegmentReader, Timeline, pacer
from vision.sources.ringbuffer import PacketRingBuffer
from vision.sources.state import SourceState, StatusTracker

log = logging.getLogger(__name__)

Opened = tuple[av.container.InputContainer, av.video.stream.VideoStream]


class Backoff:
    """Exponential reconnect delay with ±20 % jitter, capped; `reset()` after a good connection."""

    def __init__(self, initial_s: float, max_s: float) -> None:
        self.initial_s, self.max_s = initial_s, max_s
        self.next_s = initial_s

    def take(self) -> float:
        delay = min(self.max_s, self.next_s * random.uniform(0.8, 1.2))
        self.next_s = min(self.max_s, self.next_s * 2)
        return delay

    def reset(self) -> None:
        self.next_s = self.initial_s


class SourceRunner:
    """Owns the timeline, sampler and counters across segments (reconnects and loops)."""

    def __init__(self, uri: str, cfg: SourceConfig, tracker: StatusTracker, ring: PacketRingBuffer | None) -> None:
        self.uri, self.cfg, self.tracker, self.ring = uri, cfg, tracker, ring
        self.name = describe(uri)
        self.live_url = is_url(uri)
        self.stop = threading.Event()
        self.info: StreamInfo | None = None
        self.opened_at = time.monotonic()
        self._timeline = Timeline()
        self._sampler = FrameSampler(cfg.analysis_fps)
        self._backoff = Backoff(cfg.backoff_initial_s, cfg.backoff_max_s)
        self._pace_origin: list[float] = []
        self._pending: Opened | None = None
        self._segments = 0

    def open_first(self) -> None:
        """Open eagerly (file replay), so a bad file fails at open rather than at the first read."""
        self.tracker.count("connect_attempts")
        try:
            self._pending = open_input(self.uri, self.cfg)
            self.info = stream_info(self._pending[1])
        except SourceError as exc:
            self.tracker.set_state(SourceState.FAILED, str(exc), exc)
            raise

    def release_pending(self) -> None:
        """Close a container opened by `open_first` that was never read."""
        if self._pending is not None:
            self._pending[0].close()
            self._pending = None

    def frames(self) -> Generator[KeptFrame, None, None]:
        """Kept frames across segments until stopped, ended (file without loop) or failed (raises)."""
        failures = 0
        while not self.stop.is_set():
            opened = self._connect(failures)
            if opened is None:
                failures += 1
                continue
            failures = 0
            reason = "end of stream"
            try:
                yield from self._segment(*opened)
            except SourceError as exc:
                if not self.live_url:
                    self.tracker.set_state(SourceState.FAILED, str(exc), exc)
                    raise
                reason = str(exc)
            finally:
                opened[0].close()
            if self.stop.is_set():
                break
            if not self.live_url and not self.cfg.loop:
                self.tracker.set_state(SourceState.STOPPED, "end of file")
                return
            if self.live_url:
                log.warning("%s: disconnected: %s", self.name, reason)
                self.tracker.set_state(SourceState.RECONNECTING, reason)
                self.stop.wait(self._backoff.take())
        self.tracker.set_state(SourceState.STOPPED, "stopped")

    def _connect(self, failures: int) -> Opened | None:
        """Open the next segment; None after a retryable failure (the back-off has been waited)."""
        if self._pending is not None:
            opened, self._pending = self._pending, None
            return opened
        self.tracker.count("connect_attempts")
        try:
            return open_input(self.uri, self.cfg)
        except SourceError as exc:
            limit = self.cfg.max_reconnects
            if not self.live_url or (limit is not None and failures + 1 > limit):
                self.tracker.set_state(SourceState.FAILED, str(exc), exc)
                raise
            delay = self._backoff.take()
            log.warning("%s; retrying in %.1fs", exc, delay)
            self.tracker.set_state(SourceState.RECONNECTING, str(exc))
            self.stop.wait(delay)
            return None

    def _segment(
        self, container: av.container.InputContainer, stream: av.video.stream.VideoStream
    ) -> Iterator[KeptFrame]:
        self.info = stream_info(stream)
        start_s = self._timeline.end_s
        if self.live_url and self._segments:
            start_s = max(start_s, time.monotonic() - self.opened_at)  # an outage shows as a gap in media time
        self._timeline.start_segment(self.info.time_base, start_s, stream.start_time)
        if self.ring is not None:
            self.ring.start_segment(stream_params(stream), start_s)
        if self._segments and self.live_url:
            self.tracker.count("reconnects")
        self._segments += 1
        self.tracker.set_state(SourceState.STREAMING)
        reader = SegmentReader(
            uri=self.uri,
            container=container,
            stream=stream,
            timeline=self._timeline,
            sampler=self._sampler,
            tracker=self.tracker,
            ring=self.ring,
            decode=self.cfg.decode,
            stop=self.stop,
            pace=pacer(self.stop, self._pace_origin) if self.cfg.realtime and not self.live_url else None,
        )
        try:
            yield from reader.frames()
        finally:
            if reader.packets:  # it worked for a while: the next outage starts with a short delay again
                self._backoff.reset()
