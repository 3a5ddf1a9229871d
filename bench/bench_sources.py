"""Source throughput: safewatch's VideoSource vs the best cv2.VideoCapture loop, same 720p H.264 file, same run.

    .venv/bin/python -m bench.bench_sources [--reps 5] [--threads 2]

Both sides decode every frame and keep every 5th as an RGB ndarray (cv2: grab() each frame, retrieve() every 5th,
cvtColor BGR→RGB). Runs alternate, medians are reported, results go to bench/results/sources.md.
"""

from __future__ import annotations

import argparse
import pathlib
import platform
import statistics
import subprocess
import time
from collections.abc import Callable

import cv2

from vision.sources import SourceConfig, VideoSource

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
RESULTS = ROOT / "bench" / "results" / "sources.md"
KEEP_EVERY = 5


def make_clip(seconds: int = 30, fps: int = 25) -> pathlib.Path:
    """A 1280x720 H.264 clip made from sample_media/vtest.mp4 (cached in bench/out/)."""
    OUT.mkdir(parents=True, exist_ok=True)
    clip = OUT / f"vtest_720p_{fps}fps_{seconds}s.mp4"
    if not clip.exists():
        cmd = ["ffmpeg", "-loglevel", "error", "-y", "-stream_loop", "-1", "-i", str(ROOT / "sample_media/vtest.mp4")]
        cmd += ["-t", str(seconds), "-vf", f"scale=1280:720,fps={fps}", "-c:v", "libx264", "-preset", "veryfast"]
        cmd += ["-g", str(2 * fps), "-pix_fmt", "yuv420p", "-an", "-threads", "2", str(clip)]
        subprocess.run(cmd, check=True)
    return clip


def run_safewatch(clip: pathlib.Path, fps: float, threads: int, thread_type: str, ring: float) -> tuple[int, int]:
    cfg = SourceConfig(analysis_fps=fps / KEEP_EVERY, threads=threads, thread_type=thread_type, ring_seconds=ring)  # type: ignore[arg-type]
    kept = 0
    with VideoSource(clip, cfg) as source:
        for frame in source:
            kept += int(frame.image[0, 0, 0] >= 0)
        return source.stats.frames_decoded, kept


def run_cv2(clip: pathlib.Path, threads: int) -> tuple[int, int]:
    cap = cv2.VideoCapture(str(clip), cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, threads])
    decoded = kept = 0
    while cap.grab():
        if decoded % KEEP_EVERY == 0:
            ok, bgr = cap.retrieve()
            if ok:
                rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                kept += int(rgb[0, 0, 0] >= 0)
        decoded += 1
    cap.release()
    return decoded, kept


def timed(fn: Callable[[], tuple[int, int]]) -> tuple[float, int, int]:
    t0 = time.perf_counter()
    decoded, kept = fn()
    return decoded / (time.perf_counter() - t0), decoded, kept


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2, help="decoder threads for both sides (2 shared cores)")
    args = parser.parse_args()
    cv2.setNumThreads(1)
    clip = make_clip()
    fps = 25.0
    sides: dict[str, Callable[[], tuple[int, int]]] = {
        "cv2 grab/retrieve+cvtColor": lambda: run_cv2(clip, args.threads),
        f"safewatch threads={args.threads} AUTO": lambda: run_safewatch(clip, fps, args.threads, "AUTO", 0),
        f"safewatch threads={args.threads} AUTO +ring": lambda: run_safewatch(clip, fps, args.threads, "AUTO", 30),
        f"safewatch threads={args.threads} SLICE": lambda: run_safewatch(clip, fps, args.threads, "SLICE", 0),
        "safewatch threads=1": lambda: run_safewatch(clip, fps, 1, "NONE", 0),
        "cv2 threads=1": lambda: run_cv2(clip, 1),
    }
    rates: dict[str, list[float]] = {name: [] for name in sides}
    counts: dict[str, tuple[int, int]] = {}
    for _ in range(args.reps):
        for name, fn in sides.items():  # alternating: every rep runs every side once
            rate, decoded, kept = timed(fn)
            rates[name].append(rate)
            counts[name] = (decoded, kept)
    write_results(clip, args, rates, counts)


def write_results(
    clip: pathlib.Path, args: argparse.Namespace, rates: dict[str, list[float]], counts: dict[str, tuple[int, int]]
) -> None:
    base = statistics.median(rates["cv2 grab/retrieve+cvtColor"])
    base1 = statistics.median(rates["cv2 threads=1"])
    lines = [
        "# Video source throughput",
        "",
        f"Clip: `{clip.relative_to(ROOT)}` (1280x720 H.264 High, 25 fps, 30 s, GOP 50, from sample_media/vtest.mp4 "
        "by ffmpeg). Every frame decoded, every 5th kept as an RGB ndarray.",
        f"Machine: {platform.machine()}, {platform.processor() or 'cpu'}, 2 cores shared with other jobs running at "
        f"the same time (numbers are noisy; ratios within one run are what count). Repetitions: {args.reps}, "
        "alternating sides; medians.",
        "",
        "| reader | decoded fps (median) | min–max | frames decoded / kept | vs cv2 (same threads) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, values in rates.items():
        ref = base1 if ("threads=1" in name) else base
        med = statistics.median(values)
        lines.append(
            f"| {name} | {med:.0f} | {min(values):.0f}–{max(values):.0f} | {counts[name][0]} / {counts[name][1]} "
            f"| {med / ref:.2f}x |"
        )
    best = max(statistics.median(v) for k, v in rates.items() if k.startswith("safewatch") and "threads=1" not in k)
    verdict = "reached" if best / base >= 1.3 else "NOT reached"
    lines += ["", f"Goal ≥1.3x the cv2 loop: {verdict} (best safewatch row {best / base:.2f}x)."]
    lines.append("")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    text = "\n".join(lines) + "\n"
    RESULTS.write_text(text + NOTES)
    print(text)


NOTES = """
Notes:
- Both sides use the same FFmpeg H.264 decoder family (PyAV's bundled FFmpeg vs OpenCV's bundled FFmpeg), limited
  to the same number of decoder threads; OpenCV's own thread pool is limited to 1 (`cv2.setNumThreads(1)`).
- safewatch converts only the kept frames (`VideoFrame.to_ndarray(format="rgb24")`, one swscale pass straight to
  RGB); cv2 converts YUV→BGR in `retrieve()` and then BGR→RGB with `cvtColor`.
- Why the ratio is near 1x: both sides spend almost all their time in the same H.264 decoder, and every frame must
  be decoded (frames reference each other). The only work safewatch avoids is the second colour conversion on the
  kept 1-in-5 frames (~1 ms each at 720p). Frame threading did not help because the 2 cores were already saturated
  by other jobs (load average ~5 during the run); SLICE threading is slower for this x264 clip (one slice/frame).
  Ways to go further, not done: skip decoding of non-reference frames that will not be kept (only helps streams
  with non-reference B-frames; IP cameras usually have none), or hardware decoding.
- `+ring` keeps the packet ring buffer on (30 s), as a replay with clips does; the other rows turn it off.
"""

if __name__ == "__main__":
    main()
