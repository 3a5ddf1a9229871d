"""Capacity: 640x360 25-fps RTSP cameras one worker analyses at 5 fps (busy, quiet, 1:3 mix footage), vs Ultralytics.

    .venv/bin/python -m bench.bench_capacity [--busy 4,8,12,16,20] [--mix 8,16,24,32,40]
        [--quiet 8,16,24,32,40,48,56] [--ultralytics 2,4,6] [--v8 4,8,12,16] [--sides regions,full,v8,ultralytics]
        [--source-only 48] [--equal-load 4] [--reps 2]
        [--warm 6] [--measure 12] [--budget-s 1200] [--report-only]

A real RTSP server (tests/fixtures/rtsp.py's GStreamer script, one mount per camera, no re-encoding) loops 640x360
25-fps H.264 clips made from sample_media/vtest.mp4 (bench/capacity/footage.py): `busy` (vtest itself, people
everywhere), `quiet` (a still empty scene with light sensor noise and a real 4 s crossing every 30 s; 15 variants
rotated by 2 s so cameras' crossings do not line up) and `mix` (cameras 0, 4, 8, ... busy, the others quiet).
Each step runs in fresh processes, warms up, then measures for a fixed window:
- safewatch: one process, one thread per camera (as pipelines.worker.camera_worker runs them), build_runtime +
  CameraPipeline with an intrusion rule, no cross-camera batching (the worker's CPU default); `regions` (the
  product default `detect.mode`: windows around motion and tracks, stationary objects) and `full` (whole frames
  behind the motion gate). Latency = decision time - Frame.wall_time (the decode time of the frame).
- ultralytics: one process per camera, `YOLO(onnx).track(url, stream=True, vid_stride=5)` (25/5 = 5 fps) with the
  same ONNX file (yolov8n); latency = result time - the wall time cv2 handed the frame over.
A step passes when every camera is analysed at >= 95% of 5 fps, p95 latency < 1 s and no analysed frame was dropped.
Per footage kind the camera count climbs per side (sides alternate within a round) until the side's first failing
step. The decode floor (bench/capacity/decode.py: PyAV decode-only CPU per camera, and the sources alone over RTSP)
and the equal-load runs (safewatch regions/full on yolov8n vs Ultralytics, alternating) come in the same run.
Results go to bench/results/capacity.md (bench/capacity/report.py).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

from bench.capacity import decode, report
from bench.capacity.child import MODES, run_ours
from bench.capacity.footage import ROOT, make_busy, make_quiet
from bench.capacity.server import MountedRtspServer, mounts
from bench.capacity.steps import (
    BENCH_PY,
    DEFAULT_MODEL,
    YOLOV8N,
    Context,
    Runner,
    Step,
    describe,
    equal_load,
    ladder,
    step_ours,
    step_ultralytics,
)


def _counts(text: str) -> list[int]:
    return sorted({int(x) for x in text.split(",") if x.strip()})


def main() -> int:
    parser = argparse.ArgumentParser(prog="bench.bench_capacity", description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--busy", type=_counts, default=_counts("4,8,12,16,20"), help="busy camera counts")
    parser.add_argument("--mix", type=_counts, default=_counts("8,16,24,32,40"), help="mix camera counts")
    parser.add_argument("--quiet", type=_counts, default=_counts("8,16,24,32,40,48,56"), help="quiet camera counts")
    parser.add_argument("--ultralytics", type=_counts, default=_counts("2,4,6"), help="Ultralytics busy counts")
    parser.add_argument(
        "--v8", type=_counts, default=_counts("4,8,12,16"), help="busy counts of safewatch on yolov8n (same model)"
    )
    parser.add_argument(
        "--sides",
        type=lambda t: set(t.split(",")),
        default={"regions", "regions-2p", "full", "v8", "ultralytics"},
        help="ladder sides: regions, regions-2p (the cameras split across 2 worker processes), full, v8 (regions on "
        "yolov8n, busy), ultralytics (busy); default all",
    )
    parser.add_argument("--source-only", type=int, default=48, help="cameras for the sources-only runs")
    parser.add_argument("--equal-load", type=int, default=2, help="busy cameras for the side-by-side runs")
    parser.add_argument("--reps", type=int, default=2, help="alternating repetitions at equal load")
    parser.add_argument("--warm", type=float, default=6.0, help="seconds before measuring (connect, warm-up)")
    parser.add_argument("--measure", type=float, default=12.0, help="seconds measured per step")
    parser.add_argument("--budget-s", type=float, default=1200.0, help="stop climbing the ladders after this long")
    parser.add_argument("--report-only", action="store_true", help="re-render the report from the last run's JSON")
    # child mode (one safewatch step in a fresh process)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mounts", default="", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--server-pid", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="regions", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--model", default=DEFAULT_MODEL, help=argparse.SUPPRESS)
    parser.add_argument("--models-dir", default=str(ROOT / "models"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_ours(args)), flush=True)
        os._exit(0)  # do not wait for a capture thread stuck on a socket once the numbers are out
    if args.report_only:
        report.write(report.Results.load(report.RAW))
        return 0
    return run_bench(args)


def _say(step: Step) -> None:
    print(describe(step), flush=True)


def run_ladders(ctx: Context, deadline: float) -> list[Step]:
    """busy (regions, regions in 2 processes, full, regions on yolov8n, Ultralytics), then mix and quiet (regions,
    regions in 2 processes, full)."""
    args, steps = ctx.args, []

    def ours(footage: str, mode: str, model: str = DEFAULT_MODEL, procs: int = 1) -> Runner:
        return lambda n: step_ours(ctx, footage, n, mode, model, procs)

    busy = {
        "regions": (args.busy, ours("busy", "regions")),
        "regions-2p": (args.busy, ours("busy", "regions", procs=2)),
        "full": (args.busy, ours("busy", "full")),
        "v8": (args.v8, ours("busy", "regions", "yolov8n")),
        "ultralytics": (args.ultralytics, lambda n: step_ultralytics(ctx, "busy", n)),
    }
    steps += ladder({k: v for k, v in busy.items() if k in args.sides}, deadline, _say)
    for kind in ("mix", "quiet"):
        counts = getattr(args, kind)
        runners = {
            "regions": (counts, ours(kind, "regions")),
            "regions-2p": (counts, ours(kind, "regions", procs=2)),
            "full": (counts, ours(kind, "full")),
        }
        steps += ladder({k: v for k, v in runners.items() if k in args.sides}, deadline, _say)
    return steps


def _code_state() -> str:
    """The commit measured, and how many files outside bench/ differed from it (the tree is shared while it runs)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        status = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True)
    except OSError:
        return "unknown (no git)"
    changed = [ln for ln in status.stdout.splitlines() if not ln[3:].startswith("bench/")]
    extra = f" + {len(changed)} uncommitted changes outside bench/ in the working tree" if changed else ", clean"
    return f"{head.stdout.strip()}{extra}"


def run_bench(args: argparse.Namespace) -> int:
    from tests.fixtures.rtsp import gst_rtsp_unavailable

    reason = gst_rtsp_unavailable()
    if reason or not BENCH_PY.exists() or not YOLOV8N.exists():
        missing = f"{BENCH_PY} or {YOLOV8N} missing (make bench-env bench-model)"
        print(f"cannot run: {reason or missing}", file=sys.stderr)
        return 2
    started, load0 = time.monotonic(), os.getloadavg()
    busy, quiet = make_busy(), make_quiet()
    decoding = decode.measure({"busy": busy.files[0], "quiet": quiet.files[0]})
    for cost in decoding:
        print(f"decode {cost.footage} {cost.variant}: {cost.ms_per_frame:.2f} ms/frame, {cost.core_pct:.1f}% of a core")
    most = max(args.busy + args.mix + args.quiet + args.ultralytics + args.v8 + [args.source_only, args.equal_load])
    server = MountedRtspServer(mounts(busy, quiet, most)).start()
    try:
        ctx = Context(args, server.port, server.pid, str(report.yolov8n_models_dir(YOLOV8N)))
        sources = [step_ours(ctx, k, args.source_only, m) for k in ("busy", "quiet") for m in ("source", "source-1t")]
        for step in sources:
            _say(step)
        steps = run_ladders(ctx, started + args.budget_s)
        equal = equal_load(ctx, "busy", args.equal_load, args.reps, _say)
    finally:
        server.stop()
    load1 = os.getloadavg()
    meta = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "load average (1/5/15 min) before": " / ".join(f"{x:.2f}" for x in load0),
        "load average after": " / ".join(f"{x:.2f}" for x in load1),
        "busy stream": busy.recipe,
        "quiet stream": quiet.recipe,
        "mix": "cameras 0, 4, 8, ... busy, the others quiet (1:3), each camera its own mount",
        "per step": f"{args.warm:g} s warm-up + {args.measure:g} s measured, fresh processes",
        "run time": f"{time.monotonic() - started:.0f} s",
        "code": _code_state(),
    }
    results = report.Results(steps, equal, sources, decoding, meta, args.equal_load)
    results.save(report.RAW)
    report.write(results)
    print(f"wrote {report.RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
