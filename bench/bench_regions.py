"""Motion regions + stationary objects vs whole frames: CPU per analysed frame, ÷ one whole-frame inference.

Side by side in one process, alternating rounds, medians, over the same frames of sample_media/vtest.mp4 (analysis
5 fps; people walk everywhere for the whole clip, a van stands parked top right):
- `full`: `detect: {mode: full}` — the whole frame through the motion gate;
- `regions`: `detect: {mode: regions}` — windows around motion and tracks, whole frames every
  `full_frame_interval_s` or when the windows would cost more than `max_cost`, stationary objects carried;
- `inference`: one whole-frame inference of the default fp32 model (its card's ONNX file), on analysed frames.
The pipeline sides run the registry's choice at `--precision` (default `auto`: the int8 variant on this CPU-only
machine once `make models` has built it), the reference stays fp32.
Both pipeline sides are `safewatch replay`'s in-process path (build_runtime → CameraPipeline) on the merged e2e
camera (exit_blocked + two intrusion zones), evidence off. CPU is the whole process's (decode, motion, detect,
tracking, rules, incidents), per analysed frame. The incident sets of both sides are compared too.

Run: .venv/bin/python -m bench.bench_regions [--rounds 3] [--seconds 80] [--precision auto|fp32|int8]
→ bench/results/regions.md
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2

from bench.bench_replay import CLIP, camera, limited
from pipelines.camera.assemble import build_runtime
from pipelines.camera.sinks import CallbackSink
from pipelines.config.camera import CameraConfig
from pipelines.events import IncidentEvent
from pipelines.worker.settings import RuntimeSettings, configure_camera_process
from vision.detect.detector import Detector
from vision.detect.precision import PRECISIONS
from vision.detect.registry import ModelRegistry
from vision.sources import SourceConfig, VideoSource

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "regions.md"
GOAL = 0.6


@dataclass
class Side:
    cpu_ms: list[float] = field(default_factory=list)  # per analysed frame, one entry per round
    frames: int = 0
    whole: int = 0
    crop_runs: int = 0
    windows: int = 0
    carried: int = 0
    gated: int = 0
    models: list[str] = field(default_factory=list)
    opened: list[tuple[str, str | None, float]] = field(default_factory=list)


def with_mode(cam: CameraConfig, mode: str) -> CameraConfig:
    return cam.model_copy(update={"detect": cam.detect.model_copy(update={"mode": mode})})


def run_side(cam: CameraConfig, registry: ModelRegistry, seconds: float, side: Side) -> None:
    events: list[IncidentEvent] = []
    runtime = build_runtime(cam, registry, sinks=[CallbackSink(events.append)])
    c0 = time.process_time()
    runtime.source.open()
    stats = runtime.pipeline.run(limited(runtime.source, seconds))
    runtime.close()
    cpu = time.process_time() - c0
    counts = runtime.pipeline.detect.counts
    side.cpu_ms.append(1000 * cpu / stats.frames)
    side.frames, side.whole, side.crop_runs = stats.frames, counts.whole, counts.crop_runs
    side.windows, side.carried, side.gated, side.models = counts.windows, counts.carried, counts.gated, runtime.models
    side.opened = sorted((e.rule, e.zone, e.offset_s) for e in events if e.type.value == "opened")


def run_inference(detector: Detector, seconds: float, frames: int = 40) -> float:
    """Median process-CPU ms of one whole-frame `detect` over `frames` analysed frames spread over the clip."""
    images = []
    with VideoSource(str(CLIP), SourceConfig(analysis_fps=5, ring_seconds=0)) as source:
        for i, frame in enumerate(limited(source, seconds)):
            if i % max(1, int(seconds * 5) // frames) == 0:
                images.append(frame.image)
    detector.detect(images[0])
    times = []
    for image in images:
        c0 = time.process_time()
        detector.detect(image)
        times.append(1000 * (time.process_time() - c0))
    return statistics.median(times)


def report(
    sides: dict[str, Side],
    infer_ms: list[float],
    default_ms: list[float],
    seconds: float,
    rounds: int,
    load: tuple[float, float],
    runs: str = "",
) -> str:
    full, reg = sides["full"], sides["regions"]
    inf = statistics.median(infer_ms)
    inf_default = statistics.median(default_ms)
    ratio = {n: statistics.median(s.cpu_ms) / inf for n, s in sides.items()}
    paired = statistics.median(r / f for r, f in zip(reg.cpu_ms, full.cpu_ms, strict=True))
    same = full.opened == reg.opened
    diff = sorted(set(full.opened) ^ set(reg.opened))
    rows = [
        f"## Motion regions vs whole frames (medians of {rounds} alternating rounds, one process)",
        "",
        f"Input: sample_media/vtest.mp4 (H.264 768x576, 10 fps), first {seconds:.0f} s at analysis 5 fps; "
        f"pipeline models {', '.join(full.models)}{runs}; camera: tests/pipelines/e2e exit_van + intrusion_path + "
        f"quiet_lawn merged, evidence off, `detect` defaults apart from `mode`, process settings of a camera worker "
        f"(OpenCV threads {cv2.getNumThreads()}). Reference: one whole-frame "
        f"inference of the default fp32 model with the pipeline's ONNX Runtime threads (`SAFEWATCH_INFERENCE_THREADS`, "
        f"default 1), median {inf:.1f} ms CPU (with ONNX Runtime's default threads {inf_default:.1f} ms; the "
        f"stricter of the two is the reference). Machine: {os.cpu_count()} CPUs shared "
        f"with other work, load average {load[0]:.1f} at the start and {load[1]:.1f} at the end; CPU time "
        "(process, all threads) rather than wall time, and ratios of sides run back to back.",
        "",
        "| side | frames | CPU ms / analysed frame | ÷ one inference | whole-frame inferences | window runs | "
        "windows | stationary rows carried | gated |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, s in sides.items():
        rows.append(
            f"| {name} | {s.frames} | {statistics.median(s.cpu_ms):.1f} | {ratio[name]:.2f} | {s.whole} | "
            f"{s.crop_runs} | {s.windows} | {s.carried} | {s.gated} |"
        )
    rows += [
        "",
        f"- regions ÷ full, paired per round: **{paired:.2f}**; regions ÷ one inference: **{ratio['regions']:.2f}** "
        f"(goal ≤ {GOAL}); full ÷ one inference: {ratio['full']:.2f}.",
        f"- Incidents opened: full {len(full.opened)}, regions {len(reg.opened)}; "
        f"{'the same (rule, zone, time)' if same else f'DIFFERENT: {diff}'}.",
        "",
        "Notes:",
        "- What regions mode does on this clip: 8-15 people walk all over the frame at any time, so on most analysed "
        "frames the windows the regions need (224x224 model pixels each, about 0.29 of a whole frame) would cost "
        "more than `max_cost` (0.6), or a moving blob (two people side by side) is larger than a window, and a "
        "whole frame runs; the window runs hold 1-2 windows. A whole frame also runs every `full_frame_interval_s`.",
        "- Stationary objects: the parked van (and a parked object at the right edge) are carried without "
        "re-detection between re-verifications; they save inference only on frames that would otherwise need a "
        "window for them.",
        "- Regions alone save little on this clip (regions ÷ full above): most frames need a whole-frame "
        "inference. What brings the whole pipeline under the goal is the cost of each inference: the int8 variant "
        "(the CPU default; its stem convolution kept float, see models/coco-yolov3-tiny-int8.yaml: ~15 ms per "
        "whole frame on one core against ~38 ms fp32) and one ONNX Runtime thread per inference "
        "(`SAFEWATCH_INFERENCE_THREADS=1`, the camera processes' default: ~7% less CPU per analysed frame than two "
        "threads on one frame; the cameras of a worker run in parallel instead). Quiet scenes (a still view, one "
        "mover) run one window or none (bench/results/capacity.md).",
        "- Margin: runs of this code on one day gave 0.57-0.61 (3 rounds each) and 0.58 (5 rounds, this table): the "
        "goal is met by a few hundredths, inside run-to-run noise.",
        "- CPU times swell with machine load, the single fp32 reference more than the pipeline (33-40 ms CPU idle, "
        "40-85 ms loaded): compare ratios of one run on an idle machine.",
        "- What is left besides inference: decode and RGB of the 768x576 clip (every frame of the 10 fps clip), "
        "the motion mask, the camera-health tamper check (once a second, ~5% of the process's samples), tracking, "
        "rules: ~6-7 ms per analysed frame. OpenCV in the calling thread (`SAFEWATCH_OPENCV_THREADS=1`, the worker "
        "default) took ~9% off both sides.",
        "",
        f"<!-- summary: goal=CPU per analysed frame ÷ one fp32 inference ≤{GOAL} (regions, vtest); "
        f"result={ratio['regions']:.2f} regions, {ratio['full']:.2f} full (regions ÷ full {paired:.2f}), incidents "
        f"{'same' if same else 'differ'}; met={'yes' if ratio['regions'] <= GOAL and same else 'no'} -->",
        "",
    ]
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=80.0, help="media seconds of the clip per run")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--precision", choices=PRECISIONS, default="auto", help="the pipeline sides' precision")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    settings = RuntimeSettings()
    configure_camera_process(settings)  # as the worker process that runs cameras (OpenCV threads)
    load0 = os.getloadavg()[0]
    registry = ModelRegistry(ROOT / "models", precision=args.precision, session=settings.camera_session)
    cam = camera()
    card = registry.card(registry.default_model())
    runs = f" (precision {args.precision}: runs {registry.runtime_card(card.name).file})"
    reference = Detector(card, ROOT / "models", registry.default_options)
    default_threads = Detector(card, ROOT / "models")
    sides = {"full": Side(), "regions": Side()}
    infer_ms: list[float] = []
    default_ms: list[float] = []
    for r in range(args.rounds):
        order = ["full", "regions"] if r % 2 == 0 else ["regions", "full"]
        for name in order:
            run_side(with_mode(cam, name), registry, args.seconds, sides[name])
        infer_ms.append(run_inference(reference, args.seconds))
        default_ms.append(run_inference(default_threads, args.seconds))
    infer_ms = [min(a, b) for a, b in zip(infer_ms, default_ms, strict=True)]
    text = report(sides, infer_ms, default_ms, args.seconds, args.rounds, (load0, os.getloadavg()[0]), runs)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
