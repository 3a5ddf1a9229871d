"""What runs in a step's fresh process: the safewatch side (N camera threads, as the camera worker runs them), the
sources alone (the decode floor over RTSP), and the Ultralytics runner (one process per camera)."""

from __future__ import annotations

import argparse
import os
import pathlib
import threading
import time
from typing import Any

from bench.capacity.server import machine_busy_s, process_cpu_s

ANALYSIS_FPS = 5
#: safewatch modes: `regions` (the product default: windows around motion and tracks, stationary objects),
#: `full` (whole frames behind the motion gate), `source` (sources only: RTSP, decode of every frame, RGB at 5 fps),
#: `source-1t` (the same with a single-threaded decoder instead of FFmpeg's default threading).
MODES = ("regions", "full", "source", "source-1t")


def camera_config(index: int, url: str, model: str, mode: str) -> Any:
    from pipelines.config.camera import CameraConfig

    zone = {"name": "all", "kind": "forbidden", "polygon": [[0, 0], [1, 0], [1, 1], [0, 1]]}
    return CameraConfig.model_validate(
        {
            "id": f"cam{index}",
            "site": "bench",
            "name": f"bench camera {index}",
            "streams": {"detect": url},
            "analysis_fps": ANALYSIS_FPS,
            "zones": [zone],
            "rules": [{"type": "intrusion", "zones": ["all"], "labels": ["person"], "min_seconds": 1}],
            "models": [model],
            "detect": {"mode": "full" if mode == "full" else "regions"},
        }
    )


def run_ours(args: argparse.Namespace) -> dict[str, Any]:
    """N camera threads as the camera worker runs them (one model registry, no cross-camera batching: the worker's
    default on CPU); measures after `args.warm` seconds for `args.measure` seconds."""
    from pipelines.camera.assemble import build_runtime
    from pipelines.worker.settings import RuntimeSettings, configure_camera_process
    from vision.detect.registry import ModelRegistry

    settings = RuntimeSettings()
    configure_camera_process(settings)  # as a worker process does
    registry = ModelRegistry(pathlib.Path(args.models_dir), session=settings.camera_session)
    urls = [f"rtsp://127.0.0.1:{args.port}/{m}" for m in args.mounts.split(",")]
    runtimes = [build_runtime(camera_config(i, u, args.model, args.mode), registry) for i, u in enumerate(urls)]
    if args.mode == "source-1t":
        for rt, url in zip(runtimes, urls, strict=True):
            rt.source = _single_thread_source(rt.camera, url)
    records: dict[str, list[tuple[float, float]]] = {rt.camera.id: [] for rt in runtimes}
    stop = threading.Event()

    def camera(rt: Any) -> None:
        log = records[rt.camera.id]
        rt.source.open()
        if args.mode.startswith("source"):
            while not stop.is_set():
                frame = rt.source.read(timeout=1.0)
                if frame is not None:
                    log.append((time.time(), time.time() - frame.wall_time))
            return
        rt.pipeline.run(rt.source, stop, on_frame=lambda f: log.append((time.time(), time.time() - f.wall_time)))

    for rt in runtimes:
        threading.Thread(target=camera, args=(rt,), daemon=True).start()
    time.sleep(args.warm)
    before = _counters(runtimes, args.server_pid)
    time.sleep(args.measure)
    after = _counters(runtimes, args.server_pid)
    stop.set()
    w0, w1 = before["wall"], after["wall"]
    cams = {
        k: {"latencies": [lat for at, lat in v if w0 <= at < w1], "dropped": d1 - d0}
        for (k, v), d0, d1 in zip(records.items(), before["dropped"], after["dropped"], strict=True)
    }
    keys = ("wall", "cpu", "server", "machine", "frames", "whole", "crops", "windows")
    diff = {k: after[k] - before[k] for k in keys}
    return {
        "window_s": diff["wall"],
        "cpu_s": diff["cpu"],
        "server_cpu_s": diff["server"],
        "machine_busy_s": diff["machine"],
        "cameras": cams,
        "detect": {k: diff[k] for k in ("frames", "whole", "crops", "windows")},
    }


def _single_thread_source(camera: Any, url: str) -> Any:
    """The camera's source as build_runtime makes it, but decoding in one thread (bench-only comparison)."""
    from pipelines.camera.assemble import source_config
    from vision.sources import VideoSource

    config = source_config(camera, realtime=False, loop=False).model_copy(update={"threads": 1, "thread_type": "NONE"})
    return VideoSource(url, config, camera_id=camera.id)


def _counters(runtimes: list[Any], server_pid: int) -> dict[str, Any]:
    t = os.times()
    counts = [rt.pipeline.detect.counts for rt in runtimes]
    return {
        "wall": time.time(),
        "cpu": t.user + t.system,
        "server": process_cpu_s(server_pid) if server_pid else 0.0,
        "machine": machine_busy_s(),
        "dropped": [rt.source.stats.frames_dropped for rt in runtimes],
        "frames": sum(rt.pipeline.stats.frames for rt in runtimes),
        "whole": sum(c.whole for c in counts),
        "crops": sum(c.crop_runs for c in counts),
        "windows": sum(c.windows for c in counts),
    }


# -- Ultralytics (run by .venv-bench/bin/python -c, one process per camera) -----------------------------------------
ULTRALYTICS_RUNNER = r"""
import collections, json, os, sys, time, types
os.environ.setdefault("YOLO_OFFLINE", "1")
import cv2
import ultralytics.data.loaders as loaders
from ultralytics import YOLO

url, model_path, warm, measure = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4])
grabbed = collections.deque(maxlen=512)  # (frame array, wall time when cv2 handed it over)

class Capture:  # cv2.VideoCapture noting when each frame was retrieved (instrumentation only)
    def __init__(self, *args):
        self._cap = cv2.VideoCapture(*args)
    def __getattr__(self, name):
        return getattr(self._cap, name)
    def _note(self, ok, im):
        if ok and im is not None:
            grabbed.append((im, time.time()))
        return ok, im
    def read(self, *args):
        return self._note(*self._cap.read(*args))
    def retrieve(self, *args):
        return self._note(*self._cap.retrieve(*args))

shim = types.ModuleType("cv2_shim")
shim.__dict__.update({k: getattr(cv2, k) for k in dir(cv2) if not k.startswith("__")})
shim.VideoCapture = Capture
loaders.cv2 = shim

model = YOLO(model_path, task="detect")
first, start, decisions = None, None, []
for result in model.track(source=url, stream=True, vid_stride=5, verbose=False, device="cpu", imgsz=640):
    now = time.time()
    first = first or now
    if start is None and now >= first + warm:
        start = (os.times(), now)
    decisions.append((now, next((t for im, t in reversed(grabbed) if im is result.orig_img), None)))
    if now >= first + warm + measure:
        break
(t0, w0), t1, w1 = start, os.times(), time.time()
inside = [(now, got) for now, got in decisions if w0 <= now < w1]
retrieved = sum(1 for _, t in grabbed if w0 <= t < w1 - 0.5)
analysed = sum(1 for _, got in decisions if got is not None and w0 <= got < w1 - 0.5)
print(json.dumps({"window_s": w1 - w0, "cpu_s": t1.user + t1.system - t0.user - t0.system,
                  "latencies": [now - got for now, got in inside if got is not None],
                  "unmatched": sum(got is None for _, got in inside), "dropped": max(0, retrieved - analysed)}))
sys.stdout.flush()
os._exit(0)  # LoadStreams' reader thread may block on the live stream
"""
