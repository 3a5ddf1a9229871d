"""`safewatch replay SOURCE --camera FILE.yaml [--out DIR] [--realtime]`: one camera's pipeline over a file or URL.

Writes DIR/incidents.jsonl (one IncidentEvent per line; `offset_s` in media time, so a replay is reproducible) and
the evidence (DIR/media/…) through `pipelines.worker.replay.replay`; this command shows progress on a TTY and prints
a summary table at the end.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import time

import av

from cli.common import add_models_dir_flag, add_precision_flag, read_settings
from pipelines.camera.assemble import PipelineConfigError
from pipelines.config.camera import ConfigError, load_camera_config
from pipelines.worker.evidence_chain import open_chain
from pipelines.worker.replay import ReplayEnd, ReplayReport, replay
from pipelines.worker.settings import RuntimeSettings
from vision.detect.errors import ModelError
from vision.detect.registry import ModelRegistry
from vision.types import Frame

EXIT = {ReplayEnd.done: 0, ReplayEnd.source_failed: 1, ReplayEnd.interrupted: 130}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("replay", help="run one camera's pipeline over a file or URL and write incidents.jsonl")
    p.add_argument("source", help="video file or rtsp:// / http(s):// URL (replaces the camera's detect stream)")
    p.add_argument("--camera", required=True, type=pathlib.Path, help="camera config YAML (zones, rules)")
    p.add_argument("--out", type=pathlib.Path, default=pathlib.Path("out"), help="output directory (default: out)")
    p.add_argument("--realtime", action="store_true", help="pace a file at its own speed, like a camera")
    p.add_argument("--no-evidence", action="store_true", help="skip snapshots, clips and manifests")
    add_models_dir_flag(p)
    add_precision_flag(p)
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
    settings = read_settings(RuntimeSettings, args)
    progress = _Progress(enabled=sys.stderr.isatty() and not args.quiet, total=_duration(source))
    try:
        report = replay(
            camera, ModelRegistry(settings.models_dir, precision=settings.precision), source, args.out,
            realtime=args.realtime, evidence=not args.no_evidence, evidence_key=settings.signing_key,
            chain=None if args.no_evidence else open_chain(settings, "replay", media_root=args.out / "media",
                                                           data_dir=args.out),
            threads=args.threads, on_frame=progress.update,
        )  # fmt: skip
    except (PipelineConfigError, ModelError) as exc:
        print(f"safewatch replay: {args.camera}: {exc}", file=sys.stderr)
        return 2
    finally:
        progress.done()
    if report.error is not None:
        print(f"safewatch replay: {report.error}", file=sys.stderr)
    code = EXIT[report.end]
    _summary(report, code)
    return code


def _duration(source: str) -> float | None:
    if "://" in source:
        return None
    try:
        with av.open(source) as container:
            return container.duration / 1e6 if container.duration else None
    except av.FFmpegError:
        return None


class _Progress:
    def __init__(self, enabled: bool, total: float | None) -> None:
        self.enabled = enabled
        self.total = total
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


def _summary(report: ReplayReport, code: int) -> None:
    stats = report.stats
    elapsed = time.monotonic() - stats.started
    fps = stats.frames / elapsed if elapsed > 0 else 0.0
    print(f"{'rule':<16} {'incidents':>9}")
    for rule, n in sorted(report.opened_by_rule.items()):
        print(f"{rule:<16} {n:>9}")
    print(f"{'total':<16} {sum(report.opened_by_rule.values()):>9}")
    print(
        f"frames analysed {stats.frames}, inferences {stats.inferences}, gated {stats.gated}, "
        f"media {stats.last_pts:.1f}s in {elapsed:.1f}s ({fps:.1f} analysed fps)"
    )
    print(f"events: {report.jsonl} ({report.events} lines)" + ("" if code == 0 else " — source failed"))
