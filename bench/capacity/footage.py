"""The footage the capacity benchmark serves: a busy stream (vtest, people everywhere) and a quiet one (a still
scene with a real crossing every 30 s), both 640x360 25 fps H.264 without B-frames, GOP 2 s, made deterministically
with ffmpeg and cached in bench/out/.

Quiet recipe (`make_quiet`):
1. vtest.mp4 cropped and scaled exactly as the busy stream (crop 768x432 centred, 640x360); every 4th of its 795
   frames (10 fps) is kept;
2. background = the per-pixel temporal median of those frames (people never stand still long enough to survive the
   median): an empty plaza;
3. the crossing = the 4 s (40 vtest frames) of vtest with the least foreground (pixels more than 30 gray levels
   from the background), i.e. the fewest people walking, faded in and out over 0.4 s;
4. 30 s at 25 fps: 13 s of background, the 4 s crossing (each vtest frame repeated to 25 fps), 13 s of background;
   light temporal sensor noise on every frame (Gaussian, sigma 2 gray levels, per pixel, seeded) so no two frames
   are identical;
5. libx264 veryfast, no B-frames, IDR every 50 frames exactly (no scene-cut keyframes), SPS/PPS on every IDR;
6. 15 variants rotated by 0, 2, 4, ... 28 s (whole GOPs moved from the front to the back, no re-encoding), so
   cameras mounted on different variants see their crossings at different times.
"""

from __future__ import annotations

import pathlib
import subprocess
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "bench" / "out"
VTEST = ROOT / "sample_media" / "vtest.mp4"
STREAM_FPS = 25
W, H = 640, 360
GOP_S = 2
CROP = "crop=768:432,scale=640:360"
QUIET_S, CROSSING_S, FADE_S = 30, 4, 0.4
NOISE_SIGMA, FG_LEVEL, SEED = 2.0, 30, 13
VARIANTS = QUIET_S // GOP_S


@dataclass(frozen=True)
class Footage:
    name: str  # busy | quiet
    files: list[pathlib.Path]  # one per variant (busy: one)
    recipe: str

    def file_for(self, index: int) -> pathlib.Path:
        return self.files[index % len(self.files)]


def make_busy() -> Footage:
    """vtest.mp4 cropped to 16:9, scaled to 640x360, 25 fps (frames repeated), Annex-B H.264 without B-frames."""
    OUT.mkdir(parents=True, exist_ok=True)
    out = OUT / "vtest_640x360_25fps.h264"
    if not out.exists():
        cmd = ["ffmpeg", "-loglevel", "error", "-y", "-i", str(VTEST), "-t", "40"]
        cmd += ["-vf", f"{CROP},fps={STREAM_FPS}", "-c:v", "libx264", "-preset", "veryfast"]
        cmd += ["-bf", "0", "-g", str(GOP_S * STREAM_FPS), "-pix_fmt", "yuv420p", "-an", "-f", "h264", str(out)]
        subprocess.run(cmd, check=True, timeout=120)
    recipe = "the first 40 s of vtest.mp4 (10 fps, frames repeated to 25 fps), crop 768x432, 640x360, libx264 veryfast"
    return Footage("busy", [out], recipe + f", no B-frames, GOP {GOP_S} s; {_kbps(out, 40)} kbit/s")


def make_quiet() -> Footage:
    OUT.mkdir(parents=True, exist_ok=True)
    files = [OUT / f"quiet_640x360_25fps_{k * GOP_S:02d}s.h264" for k in range(VARIANTS)]
    info = OUT / "quiet_recipe.txt"
    if not all(f.exists() for f in files) or not info.exists():
        base = OUT / "quiet_640x360_25fps.h264"
        start = _encode_quiet(base)
        _rotations(base, files)
        info.write_text(f"crossing = vtest {start / 10:.1f}-{start / 10 + CROSSING_S:.1f} s\n", encoding="utf-8")
    crossing = info.read_text(encoding="utf-8").strip()
    recipe = (
        f"a still empty plaza (temporal median of vtest) with {NOISE_SIGMA:g}-level Gaussian sensor noise, and a real "
        f"{CROSSING_S} s crossing ({crossing}, the vtest window with the fewest people, 0.4 s fades) at 13-17 s of "
        f"every {QUIET_S} s; {VARIANTS} variants rotated by {GOP_S} s steps; libx264 veryfast, no B-frames, GOP "
        f"{GOP_S} s; {_kbps(files[0], QUIET_S)} kbit/s"
    )
    return Footage("quiet", files, recipe)


def _kbps(path: pathlib.Path, seconds: float) -> int:
    return round(path.stat().st_size * 8 / seconds / 1000)


def _vtest_frames(every: int) -> npt.NDArray[np.uint8]:
    """vtest.mp4 at 640x360 (the busy stream's crop), every `every`-th frame, as [N, H, W, 3] RGB."""
    cmd = ["ffmpeg", "-loglevel", "error", "-i", str(VTEST), "-vf", CROP, "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    raw = subprocess.run(cmd, check=True, capture_output=True, timeout=120).stdout
    frames = np.frombuffer(raw, np.uint8).reshape(-1, H, W, 3)
    return frames[::every]


def _encode_quiet(out: pathlib.Path) -> int:
    """Writes the 30 s quiet clip; returns the first vtest frame (10 fps) of its crossing."""
    sample = _vtest_frames(4)
    background = np.median(sample, axis=0).astype(np.uint8)
    del sample
    frames = _vtest_frames(1)
    bg16 = background.astype(np.int16)
    fg = np.array([(np.abs(f.astype(np.int16) - bg16).max(axis=2) > FG_LEVEL).mean() for f in frames])
    n = CROSSING_S * 10
    sums = np.convolve(fg, np.ones(n), mode="valid")  # foreground over each 4 s window
    start = int(np.argmin(sums))
    segment = frames[start : start + n].copy()
    del frames
    cmd = ["ffmpeg", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{W}x{H}"]
    cmd += ["-r", str(STREAM_FPS), "-i", "-", "-c:v", "libx264", "-preset", "veryfast", "-bf", "0"]
    cmd += ["-g", str(GOP_S * STREAM_FPS), "-keyint_min", str(GOP_S * STREAM_FPS), "-sc_threshold", "0"]
    cmd += ["-x264-params", "repeat-headers=1", "-pix_fmt", "yuv420p", "-an", "-f", "h264", str(out)]
    rng = np.random.default_rng(SEED)
    enc = subprocess.Popen(cmd, stdin=subprocess.PIPE)
    assert enc.stdin is not None
    first, total = (QUIET_S - CROSSING_S) // 2 * STREAM_FPS, QUIET_S * STREAM_FPS
    fade = FADE_S * STREAM_FPS
    for i in range(total):
        image = background.astype(np.float32)
        j = i - first
        if 0 <= j < CROSSING_S * STREAM_FPS:
            alpha = min(1.0, (j + 1) / fade, (CROSSING_S * STREAM_FPS - j) / fade)
            image += alpha * (segment[j * 10 // STREAM_FPS].astype(np.float32) - image)
        image += rng.standard_normal((H, W, 1), dtype=np.float32) * NOISE_SIGMA
        enc.stdin.write(np.clip(image + 0.5, 0, 255).astype(np.uint8).tobytes())
    enc.stdin.close()
    if enc.wait(timeout=120) != 0:
        raise RuntimeError("ffmpeg failed to encode the quiet clip")
    return start


def _gops(path: pathlib.Path) -> list[bytes]:
    """The Annex-B file cut at its IDR access units (each GOP starts with SPS/PPS: repeat-headers=1)."""
    import av

    gops: list[bytearray] = []
    with av.open(str(path), format="h264") as container:
        for packet in container.demux(video=0):
            if packet.size == 0:
                continue
            if packet.is_keyframe or not gops:
                gops.append(bytearray())
            gops[-1] += bytes(packet)
    return [bytes(g) for g in gops]


def _rotations(base: pathlib.Path, files: list[pathlib.Path]) -> None:
    gops = _gops(base)
    if len(gops) != len(files):
        raise RuntimeError(f"{base.name}: {len(gops)} GOPs, expected {len(files)}")
    for k, path in enumerate(files):
        path.write_bytes(b"".join(gops[k:] + gops[:k]))
