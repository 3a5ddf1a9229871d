"""One step = one side at one camera count on one footage kind, in fresh processes; the ladder climbs per runner
until its first failing step; the equal-load runs alternate the sides at one camera count."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.capacity.child import ANALYSIS_FPS, ULTRALYTICS_RUNNER
from bench.capacity.footage import OUT, ROOT
from bench.capacity.server import mount_names

BENCH_PY = ROOT / ".venv-bench" / "bin" / "python"
YOLOV8N = ROOT / "models" / ".build" / "yolov8n.onnx"
DEFAULT_MODEL = "coco-yolov3-tiny"


@dataclass
class Step:
    side: str  # "safewatch" | "ultralytics"
    mode: str  # regions | full | source | track
    model: str
    footage: str  # busy | mix | quiet
    cameras: int
    fps: list[float] = field(default_factory=list)  # analysed fps per camera
    latencies: list[float] = field(default_factory=list)
    dropped: int = 0
    cpu_pct: float = 0.0  # of one core; 200 = both cores busy
    server_pct: float | None = None  # the RTSP server's CPU over the window (not counted in cpu_pct)
    others_pct: float | None = None  # the rest of the machine (other jobs) over the window
    detect: dict[str, int] = field(default_factory=dict)  # frames, whole, crops, windows over the window
    load: float = 0.0  # 1-min load average at the step's start
    error: str | None = None
    procs: int = 1  # worker processes the cameras are split across (safewatch sides)

    @property
    def name(self) -> str:
        many = f" x{self.procs} processes" if self.procs > 1 else ""
        return f"{self.side} {self.mode}{many} ({self.model})"

    def pct(self, q: float) -> float:
        if not self.latencies:
            return float("nan")
        return statistics.quantiles(self.latencies, n=100, method="inclusive")[int(q) - 1]

    @property
    def failures(self) -> list[str]:
        if self.error:
            return [self.error]
        out = []
        if len(self.fps) < self.cameras or min(self.fps, default=0) < 0.95 * ANALYSIS_FPS:
            out.append(f"min fps {min(self.fps, default=0):.2f}")
        if not self.latencies or self.pct(95) >= 1.0:
            out.append(f"p95 {self.pct(95):.2f} s")
        if self.dropped:
            out.append(f"{self.dropped} dropped")
        return out

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def cpu_ms_per_frame(self) -> float:
        frames = sum(self.fps)
        return self.cpu_pct * 10 / frames if frames else float("nan")

    @property
    def whole_share(self) -> float | None:
        """Share of analysed frames that ran a whole-frame inference."""
        frames = self.detect.get("frames", 0)
        return self.detect.get("whole", 0) / frames if frames else None

    @property
    def windows_per_frame(self) -> float | None:
        frames = self.detect.get("frames", 0)
        return self.detect.get("windows", 0) / frames if frames else None


@dataclass(frozen=True)
class Context:
    args: argparse.Namespace
    port: int
    server_pid: int
    v8_dir: str


def step_ours(ctx: Context, footage: str, n: int, mode: str, model: str = DEFAULT_MODEL, procs: int = 1) -> Step:
    """`n` cameras of `footage` in `procs` fresh worker processes (cameras dealt round-robin; several processes are
    how a machine runs several `safewatch worker`s, each with its own GIL), measured over the same window."""
    args = ctx.args
    models_dir = ctx.v8_dir if model == "yolov8n" else str(ROOT / "models")
    names = mount_names(footage, n)
    step = Step("safewatch", mode, model, footage, n, load=os.getloadavg()[0], procs=procs)
    children = []
    for part in range(procs):
        cmd = [sys.executable, "-m", "bench.bench_capacity", "--child", "--port", str(ctx.port)]
        cmd += ["--mounts", ",".join(names[part::procs]), "--server-pid", str(ctx.server_pid)]
        cmd += ["--mode", mode, "--model", model, "--models-dir", models_dir]
        cmd += ["--warm", str(args.warm), "--measure", str(args.measure)]
        children.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT))
    raws = []
    try:
        for child in children:
            out, _ = child.communicate(timeout=args.warm + args.measure + 60)
            raws.append(json.loads(out.strip().splitlines()[-1]))
    except (subprocess.TimeoutExpired, json.JSONDecodeError, IndexError) as exc:
        for child in children:
            child.kill()
        step.error = f"step failed: {type(exc).__name__}"
        return step
    _merge(step, raws)
    return step


def _merge(step: Step, raws: list[dict[str, Any]]) -> None:
    """One step from its worker processes' measurements (their windows coincide to within process start-up)."""
    window = statistics.mean(raw["window_s"] for raw in raws)
    for raw in raws:
        for cam in raw["cameras"].values():
            step.fps.append(len(cam["latencies"]) / raw["window_s"])
            step.latencies += cam["latencies"]
            step.dropped += cam["dropped"]
    step.cpu_pct = 100 * sum(raw["cpu_s"] / raw["window_s"] for raw in raws)
    step.server_pct = 100 * raws[0]["server_cpu_s"] / raws[0]["window_s"]
    machine_pct = 100 * statistics.mean(raw["machine_busy_s"] for raw in raws) / window
    step.others_pct = max(0.0, machine_pct - step.cpu_pct - step.server_pct)
    step.detect = {k: sum(raw["detect"][k] for raw in raws) for k in raws[0]["detect"]}


def step_ultralytics(ctx: Context, footage: str, n: int) -> Step:
    args = ctx.args
    step = Step("ultralytics", "track", "yolov8n", footage, n, load=os.getloadavg()[0])
    env = {**os.environ, "YOLO_OFFLINE": "1", "YOLO_VERBOSE": "False"}
    times = [str(args.warm + 4), str(args.measure)]  # + 4 s warm-up: importing torch and ultralytics is slower
    procs = [
        subprocess.Popen(
            [str(BENCH_PY), "-c", ULTRALYTICS_RUNNER, f"rtsp://127.0.0.1:{ctx.port}/{m}", str(YOLOV8N), *times],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
            cwd=OUT,
        )
        for m in mount_names(footage, n)
    ]
    deadline = time.monotonic() + args.warm + args.measure + 90
    for proc in procs:
        try:
            out, _ = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
            raw = json.loads(out.strip().splitlines()[-1])
        except (subprocess.TimeoutExpired, json.JSONDecodeError, IndexError) as exc:
            proc.kill()
            proc.wait()
            step.error = f"a camera process failed: {type(exc).__name__}"
            continue
        step.fps.append(len(raw["latencies"]) / raw["window_s"])
        step.latencies += raw["latencies"]
        step.dropped += raw["dropped"]
        step.cpu_pct += 100 * raw["cpu_s"] / raw["window_s"]
    return step


Runner = Callable[[int], Step]


def ladder(runners: dict[str, tuple[list[int], Runner]], deadline: float, say: Callable[[Step], None]) -> list[Step]:
    """Round r runs the r-th camera count of every runner still climbing (the sides alternate within a round); a
    runner stops at its first failing step, or when the time budget is spent."""
    steps: list[Step] = []
    active = dict(runners)
    for r in range(max(len(counts) for counts, _ in runners.values())):
        for name, (counts, run) in list(active.items()):
            if r >= len(counts):
                del active[name]
                continue
            if time.monotonic() > deadline:
                print(f"time budget spent; {name} stops before {counts[r]} cameras", flush=True)
                del active[name]
                continue
            step = run(counts[r])
            steps.append(step)
            say(step)
            if not step.ok:
                del active[name]
    return steps


def equal_load(ctx: Context, footage: str, n: int, reps: int, say: Callable[[Step], None]) -> list[Step]:
    """`reps` alternating rounds at `n` cameras: safewatch regions and full on yolov8n (the ONNX file Ultralytics
    runs), then Ultralytics' own track."""
    steps = []
    sides: list[Callable[[], Step]] = [
        lambda: step_ours(ctx, footage, n, "regions", "yolov8n"),
        lambda: step_ours(ctx, footage, n, "full", "yolov8n"),
        lambda: step_ultralytics(ctx, footage, n),
    ]
    for _ in range(reps):
        for run in sides:
            step = run()
            steps.append(step)
            say(step)
    return steps


def describe(s: Step) -> str:
    fps = f"{min(s.fps):.2f}-{max(s.fps):.2f}" if s.fps else "-"
    verdict = "ok" if s.ok else "FAIL (" + ", ".join(s.failures) + ")"
    server = f", server {s.server_pct:.0f}%, others {s.others_pct:.0f}%" if s.server_pct is not None else ""
    return (
        f"{s.footage:5s} {s.name:34s} {s.cameras:3d} cams: fps/cam {fps}, p50/p95 {s.pct(50):.2f}/{s.pct(95):.2f} s, "
        f"cpu {s.cpu_pct:.0f}%{server}, load {s.load:.1f}: {verdict}"
    )
