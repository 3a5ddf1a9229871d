"""`safewatch probe SOURCE [--seconds N] [--fps F] [--json]`: open a file or stream URL and report what it delivers.

Files are read as fast as possible for N seconds of media time; live URLs are watched for N seconds of wall time
(the watch is `vision.sources.probe.probe`; this command prints its report).
`--json` prints one object: width, height, codec, fps (measured), frames_decoded, frames_kept, frames_dropped,
reconnects, state, states ([{state, at}]) plus source, nominal_fps, seconds and error (null when fine).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from pydantic import ValidationError

from vision.sources import SourceError
from vision.sources.probe import ProbeReport, probe, probe_config


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
    try:
        cfg = probe_config(
            args.seconds, analysis_fps=args.fps, open_timeout_s=args.open_timeout, read_timeout_s=args.read_timeout
        )
    except ValidationError as exc:
        print(f"safewatch probe: error: {exc.errors()[0]['msg']}", file=sys.stderr)
        return 2
    try:
        report = _as_json(probe(args.source, cfg, args.seconds))
    except SourceError as exc:
        print(f"safewatch probe: error: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(report))
    else:
        _print_human(report)
    if report["frames_decoded"] == 0:
        print(
            f"safewatch probe: error: {report['source']}: no frames ({report['error'] or report['state']})",
            file=sys.stderr,
        )
        return 1
    return 0


def _as_json(r: ProbeReport) -> dict[str, Any]:
    """The `--json` object (its fields are a contract; see the module docs)."""
    info, stats = r.info, r.stats
    return {
        "source": r.source,
        "width": info.width if info else None,
        "height": info.height if info else None,
        "codec": info.codec if info else None,
        "fps": round(r.fps, 3) if r.fps else None,
        "nominal_fps": info.fps if info else None,
        "seconds": r.seconds,
        "frames_decoded": stats.frames_decoded,
        "frames_kept": stats.frames_kept,
        "frames_dropped": stats.frames_dropped,
        "reconnects": stats.reconnects,
        "state": r.state.value,
        "states": [change.as_dict() for change in r.states],
        "error": r.error,
    }


def _print_human(r: dict[str, Any]) -> None:
    print(f"source      {r['source']}")
    print(f"video       {r['codec']} {r['width']}x{r['height']}, {r['nominal_fps']} fps nominal, {r['fps']} measured")
    print(f"frames      decoded {r['frames_decoded']}, kept {r['frames_kept']}, dropped {r['frames_dropped']}")
    print(f"state       {r['state']} ({r['reconnects']} reconnects)")
    t0 = r["states"][0]["at"] if r["states"] else 0.0
    for change in r["states"]:
        reason = f"  {change['reason']}" if change.get("reason") else ""
        print(f"  +{change['at'] - t0:7.2f}s  {change['state']}{reason}")
