"""`safewatch probe SOURCE [--seconds N] [--fps F] [--json]`: open a file or stream URL and report what it delivers.

Files are read as fast as possible for N seconds of media time; live URLs are watched for N seconds of wall time.
`--json` prints one object: width, height, codec, fps (measured), frames_decoded, frames_kept, frames_dropped,
reconnects, state, states ([{state, at}]) plus source, nominal_fps, seconds and error (null when fine).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from pydantic import ValidationError

from vision.redact import redact_url
from vision.sources import EndOfStream, SourceConfig, SourceError, VideoSource
from vision.types import Frame


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("probe", help="open a video file or stream URL and report resolution, codec, fps")
    p.add_argument("source", help="file path or rtsp:// / http(s):// URL")
    p.add_argument("--seconds", type=_positive, default=5.0, help="how long to read (media seconds for files)")
    p.add_argument("--fps", type=_positive, default=5.0, help="analysis rate: frames per second to keep")
    p.add_argument("--open-timeout", type=_positive, default=10.0, help="seconds to wait for a stream to open")
    p.add_argument("--read-timeout", type=_positive, default=5.0, help="seconds without data before a stream is hung")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=handler)


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def handler(args: argparse.Namespace) -> int:
    name = redact_url(args.source)
    try:
        cfg = SourceConfig(
            analysis_fps=args.fps,
            open_timeout_s=args.open_timeout,
            read_timeout_s=args.read_timeout,
            backoff_max_s=max(0.5, min(5.0, args.seconds / 2)),
            ring_seconds=0,
        )
    except ValidationError as exc:
        print(f"safewatch probe: error: {exc.errors()[0]['msg']}", file=sys.stderr)
        return 2
    source = VideoSource(args.source, cfg)
    try:
        with source:
            measured = _watch(source, args.seconds, args.open_timeout)
            state = source.state.value
    except SourceError as exc:
        print(f"safewatch probe: error: {exc}", file=sys.stderr)
        return 1
    report = _report(source, name, args.seconds, measured) | {"state": state}
    if args.json:
        print(json.dumps(report))
    else:
        _print_human(report)
    if report["frames_decoded"] == 0:
        print(f"safewatch probe: error: {name}: no frames ({report['error'] or report['state']})", file=sys.stderr)
        return 1
    return 0


def _watch(source: VideoSource, seconds: float, open_timeout: float) -> float | None:
    """Read for `seconds`; return the measured rate: frames decoded per second of media time."""
    kept: list[Frame] = []
    marks: list[int] = []  # frames_decoded when each kept frame arrived
    if source.live:
        source.wait_ready(open_timeout)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            frame = source.read(timeout=max(0.0, min(0.5, deadline - time.monotonic())))
        except EndOfStream:
            break
        if frame is None:
            continue
        kept.append(frame)
        marks.append(source.stats.frames_decoded)
        if not source.live and frame.pts - kept[0].pts >= seconds:
            break
    if len(kept) < 2:
        return None
    span = kept[-1].pts - kept[0].pts  # media time: a live stream's initial burst does not inflate the rate
    return (marks[-1] - marks[0]) / span if span > 0 else None


def _report(source: VideoSource, name: str, seconds: float, measured: float | None) -> dict[str, Any]:
    info, stats = source.info, source.stats
    return {
        "source": name,
        "width": info.width if info else None,
        "height": info.height if info else None,
        "codec": info.codec if info else None,
        "fps": round(measured, 3) if measured else None,
        "nominal_fps": info.fps if info else None,
        "seconds": seconds,
        "frames_decoded": stats.frames_decoded,
        "frames_kept": stats.frames_kept,
        "frames_dropped": stats.frames_dropped,
        "reconnects": stats.reconnects,
        "state": source.state.value,
        "states": [change.as_dict() for change in source.states],
        "error": _last_reason(source),
    }


def _last_reason(source: VideoSource) -> str | None:
    errors = [c.reason for c in source.states if c.reason and c.state.value in ("reconnecting", "failed")]
    return errors[-1] if errors else None


def _print_human(r: dict[str, Any]) -> None:
    print(f"source      {r['source']}")
    print(f"video       {r['codec']} {r['width']}x{r['height']}, {r['nominal_fps']} fps nominal, {r['fps']} measured")
    print(f"frames      decoded {r['frames_decoded']}, kept {r['frames_kept']}, dropped {r['frames_dropped']}")
    print(f"state       {r['state']} ({r['reconnects']} reconnects)")
    t0 = r["states"][0]["at"] if r["states"] else 0.0
    for change in r["states"]:
        reason = f"  {change['reason']}" if change.get("reason") else ""
        print(f"  +{change['at'] - t0:7.2f}s  {change['state']}{reason}")
