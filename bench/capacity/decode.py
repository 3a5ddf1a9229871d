"""The decode floor: CPU to decode every frame of a 640x360 25-fps stream with PyAV (libavcodec's H.264 decoder), as
fast as it goes, from the file (no network), single-threaded and with FFmpeg's default threading (the product's
`SourceConfig` default: threads 0 = FFmpeg chooses, AUTO), and that plus the RGB conversion of every 5th frame
(what a `VideoSource` does at 5 fps analysis)."""

from __future__ import annotations

import os
import pathlib
from dataclasses import dataclass

from bench.capacity.footage import STREAM_FPS

FRAMES = 750  # 30 s of stream
ANALYSIS_EVERY = 5  # 25 fps stream, 5 fps analysis


@dataclass(frozen=True)
class DecodeCost:
    footage: str
    variant: str  # "1 thread" | "default threads" | "default threads + RGB 5 fps"
    ms_per_frame: float  # CPU ms per decoded frame (min of the repetitions)

    @property
    def core_pct(self) -> float:
        """% of one core one 25-fps camera costs."""
        return self.ms_per_frame * STREAM_FPS / 10

    @property
    def ceiling_2_cores(self) -> float:
        return 200 / self.core_pct if self.core_pct else float("inf")


def decode_cpu_s(path: pathlib.Path, threads: int, rgb: bool, frames: int = FRAMES) -> float:
    """CPU seconds (this process, all threads) to decode `frames` frames of `path`, looping it."""
    import av

    done, t0 = 0, os.times()
    while done < frames:
        with av.open(str(path), format="h264") as container:
            stream = container.streams.video[0]
            stream.codec_context.thread_count = threads
            stream.codec_context.thread_type = "NONE" if threads == 1 else "AUTO"
            for frame in container.decode(stream):
                if rgb and done % ANALYSIS_EVERY == 0:
                    frame.to_ndarray(format="rgb24")
                done += 1
                if done >= frames:
                    break
    t1 = os.times()
    return t1.user + t1.system - t0.user - t0.system


def measure(files: dict[str, pathlib.Path], reps: int = 2) -> list[DecodeCost]:
    """Per footage: the three variants, the minimum CPU over `reps` alternating repetitions (the machine is shared;
    the minimum is the least disturbed)."""
    variants = {"1 thread": (1, False), "default threads": (0, False), "default threads + RGB 5 fps": (0, True)}
    best: dict[tuple[str, str], float] = {}
    for _ in range(reps):
        for footage, path in files.items():
            for name, (threads, rgb) in variants.items():
                cpu = decode_cpu_s(path, threads, rgb)
                key = (footage, name)
                best[key] = min(best.get(key, cpu), cpu)
    return [DecodeCost(f, v, 1000 * cpu / FRAMES) for (f, v), cpu in best.items()]
