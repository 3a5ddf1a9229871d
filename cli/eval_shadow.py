"""`safewatch eval --shadow CAMERA --since T [--until T] [--candidate MODEL] [--tolerance S] [--database URL]
[--json]`: a camera's production incidents against its shadow runs' (the camera's `shadow_models`), from the store.

Per candidate: the incidents both raised, those only production raised and those only the candidate raised (with
the stored snapshot of each), and the handling outcome of production's: a production incident marked false positive
that the candidate did not raise is a win for the candidate, a confirmed one it missed a loss
(pipelines/evaluation/shadow.py). The store is read by api/shadow_compare.py, opened read-only. Exit 0 with a
report; 1 when the camera had no shadow incident in the window; 2 for bad flags or an unreadable store.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime

from api.settings import Settings
from api.shadow_compare import compare_shadow
from api.store.evidence import StoreUnavailable
from cli.common import BadSetting, add_data_dir_flag, read_settings
from pipelines.evaluation.shadow import render_text

PROG = "safewatch eval --shadow"


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("production vs a shadow run on live footage (incidents in the store)")
    g.add_argument("--shadow", metavar="CAMERA", help="camera whose shadow run(s) to compare with production")
    g.add_argument("--since", type=_time, metavar="T", help="incidents that started at or after T (ISO 8601)")
    g.add_argument("--until", type=_time, metavar="T", help="... and before T (default: now)")
    g.add_argument("--candidate", metavar="MODEL", help="only this candidate (default: every one seen)")
    g.add_argument("--database", metavar="URL", help="store to read (default: SAFEWATCH_DATABASE_URL); read-only")
    add_data_dir_flag(p, "where the store is by default (default ./data)")


def _time(value: str) -> datetime:
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not an ISO 8601 date-time: {value!r} (e.g. 2026-05-01T08:00+08:00)"
        ) from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when


def cmd_eval_shadow(args: argparse.Namespace) -> int:
    if args.since is None:
        return _err("--since T is required (the start of the comparison window)")
    if args.until is not None and args.until <= args.since:
        return _err("--until must be after --since")
    if args.tolerance < 0:
        return _err("--tolerance must be >= 0")
    try:
        url = args.database or read_settings(Settings, args).database_url
        found = compare_shadow(
            url, args.shadow, since=args.since, until=args.until, tolerance_s=args.tolerance, candidate=args.candidate
        )
    except BadSetting as exc:
        return _err(str(exc))
    except StoreUnavailable as exc:
        return _err(f"cannot read the store {exc} (pass --database URL)")
    if args.json:
        sys.stdout.write(json.dumps([c.as_json() for c in found], indent=2) + "\n")
    else:
        sys.stdout.write("\n\n".join(render_text(c) for c in found) + "\n" if found else "")
    if not found:
        sys.stderr.write(f"{PROG}: camera {args.shadow} has no shadow incident in the window\n")
        return 1
    return 0


def _err(message: str) -> int:
    sys.stderr.write(f"{PROG}: {message}\n")
    return 2
