"""`safewatch replay SOURCE --camera FILE.yaml [--out DIR] [--realtime]`: one camera's pipeline over a file or URL.

Writes DIR/incidents.jsonl (one IncidentEvent per line; `offset_s` in media time, so a replay is reproducible) and
the evidence (DIR/media/…), shows progress on a TTY and prints a summary table at the end.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import threading
import time
from datetime import UTC, datetime
from typing import Any

import av

from cli.models import models_dir
from pipelines.camera.assemble import EvidenceOptions, PipelineConfigError, build_runtime
from pipelines.camera.sinks import CountingSink, JsonlSink
from pipelines.config.camera import ConfigError, load_camera_config
from vision.detect.detector import DetectorOptions
from vision.detect.errors import ModelError
from vision.detect.registry import ModelRegistry
from vision.media.clip_writer import ClipWriter
from vision.media.manifest import load_key
from vision.redact import redact_url
from vision.sources import SourceError
from vision.types import Frame


def register(sub: Any) -> None:
    p = sub.add_parser("replay", help="run one camera's pipeline over a file or URL and write incidents.jsonl")
    p.add_argument("source", help="video file or rtsp:// / http(s):// URL (replaces the camera's detect stream)")
    p.add_argument("--camera", required=True, type=pathlib.Path, help="camera config YAML (zones, rules)")
    p.add_argument("--out", type=pathlib.Path, default=pathlib.Path("out"), help="output directory (default: out)")
    p.add_argument("--realtime", action="store_true", help="pace a file at its own speed, like a camera")
    p.add_argument("--no-evidence", action="store_true", help="skip snapshots, clips and manifests")
    p.add_argument("--models-dir", type=pathlib.Path, default=None, help="model cards dir (default: models/)")
    p.add_argument("--threads", type=int, default=0, help="onnxruntime intra-op threads (0 = default)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        camera = load_camera_config(args.camera, check_files=False)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 2
    source = str(args.source)
    if "://" not in source and not pathlib.Path(source).is_file():
        print(f"safewatch replay: {source}: no such file", file=sys.stderr)
        return 2
    registry = ModelRegistry(models_dir(args))
    args.out.mkdir(parents=True, exist_ok=True)
    jsonl = args.out / "incidents.jsonl"
    jsonl.unlink(missing_ok=True)
    counter = CountingSink()
    writer = None if args.no_evidence else ClipWriter()
    evidence = None if args.no_evidence else EvidenceOptions(media_root=args.out / "media", key=load_key())
    # Event times in a replay: the replay's start plus media time, so started_at/ended_at keep the clip's real
    # durations (decode runs faster than real time); offset_s is the reproducible media time.
    origin = time.time()

    def clock(frame: Frame) -> datetime:
        return datetime.fromtimestamp(origin + frame.pts, tz=UTC)

    opts = DetectorOptions.model_validate({"session": {"intra_op_threads": args.threads}}) if args.threads else None
    with JsonlSink(jsonl) as sink:
        try:
            runtime = build_runtime(
                camera,
                registry,
                sinks=[sink, counter],
                source=source,
                realtime=args.realtime,
                evidence=evidence,
                clip_writer=writer,
                detector_options=opts,
                clock=clock,
            )
        except (PipelineConfigError, ModelError) as exc:
            print(f"safewatch replay: {args.camera}: {exc}", file=sys.stderr)
            return 2
        code = _drive(runtime, args, source)
        if writer is not None:
            writer.close()
    _summary(runtime.pipeline.stats, counter, jsonl, code)
    return code


def _drive(runtime: Any, args: argparse.Namespace, source: str) -> int:
    progress = _Progress(enabled=sys.stderr.isatty() and not args.quiet)
    stop = threading.Event()
    try:
        runtime.source.open()
        if runtime.record is not None:
            runtime.record.open()
        progress.total = _duration(source)
        runtime.pipeline.run(runtime.source, stop, on_frame=progress.update)
    except SourceError as exc:
        progress.done()
        print(f"safewatch replay: {redact_url(str(exc))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        stop.set()
        runtime.pipeline.finish()
        return 130
    finally:
        runtime.close()
        progress.done()
    return 0


def _duration(source: str) -> float | None:
    if "://" in source:
        return None
    try:
        with av.open(source) as container:
            return container.duration / 1e6 if container.duration else None
    except av.FFmpegError:
        return None


class _Progress:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.total: float | None = None
        self._last = 0.0
        self._t0 = time.monotonic()

    def update(self, frame: Frame) -> None:
        now = time.monotonic()
        if not self.enabled or now - self._last < 0.2:
            return
        self._last = now
        rate = frame.seq / max(now - self._t0, 1e-6)
        if self.total:
            pct = min(frame.pts / self.total, 1.0)
            bar = "#" * int(pct * 30)
            sys.stderr.write(f"\r[{bar:<30}] {pct:5.1%} {frame.pts:7.1f}s  {rate:5.1f} fps")
        else:
            sys.stderr.write(f"\r{frame.pts:7.1f}s  {rate:5.1f} fps")
        sys.stderr.flush()

    def done(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


def _summary(stats: Any, counter: CountingSink, jsonl: pathlib.Path, code: int) -> None:
    elapsed = time.monotonic() - stats.started
    fps = stats.frames / elapsed if elapsed > 0 else 0.0
    print(f"{'rule':<16} {'incidents':>9}")
    for rule, n in sorted(counter.opened_by_rule.items()):
        print(f"{rule:<16} {n:>9}")
    print(f"{'total':<16} {sum(counter.opened_by_rule.values()):>9}")
    print(
        f"frames analysed {stats.frames}, inferences {stats.inferences}, gated {stats.gated}, "
        f"media {stats.last_pts:.1f}s in {elapsed:.1f}s ({fps:.1f} analysed fps)"
    )
    print(f"events: {jsonl} ({sum(counter.by_type.values())} lines)" + ("" if code == 0 else " — source failed"))
