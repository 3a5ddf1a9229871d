"""`safewatch worker`: the camera half of distributed mode (run as many as the cameras need, on any host).

The runtime itself is `pipelines.worker.runtime.WorkerRuntime` (configs from Redis, cameras by lease, events to the
Redis stream, evidence to the shared media directory `SAFEWATCH_DATA_DIR`/media or `SAFEWATCH_MEDIA_ROOT`).
SIGTERM or Ctrl-C: cameras are handed over (open incidents stay open and continue on another worker) and the
leases released at once. A worker killed outright loses its cameras to the others within `--lease-ttl` seconds.

    SAFEWATCH_REDIS_URL=redis://127.0.0.1:6379/0 safewatch worker --max-cameras 8
"""

from __future__ import annotations

import argparse
import logging
import pathlib
import signal
import sys
import threading

from pydantic import ValidationError

from cli.common import (
    add_data_dir_flag,
    add_models_dir_flag,
    add_precision_flag,
    add_redis_prefix_flag,
    read_settings,
)
from pipelines.distributed.leases import LeaseConfig
from pipelines.worker.runtime import StartupError, WorkerOptions, WorkerRuntime, default_worker_id
from pipelines.worker.settings import RuntimeSettings
from vision.redact import redact_url


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("worker", help="run cameras for a distributed deployment (needs SAFEWATCH_REDIS_URL)")
    p.add_argument("--worker-id", default=None, help="stable id (default <host>-<pid>); also names its event spool")
    p.add_argument("--max-cameras", type=int, default=None, help="never run more cameras than this")
    p.add_argument("--weight", type=float, default=1.0, help="relative capacity for the fair share (default 1)")
    p.add_argument("--lease-ttl", type=float, default=10.0, help="seconds until a dead worker's cameras move")
    p.add_argument("--poll", type=float, default=1.0, help="seconds between config/lease rounds (default 1)")
    add_data_dir_flag(p, "media and spool (default ./data)")
    add_models_dir_flag(p)
    add_precision_flag(p)
    add_redis_prefix_flag(p)
    p.add_argument(
        "--events-log",
        type=pathlib.Path,
        default=None,
        metavar="FILE",
        help="also append every event this worker publishes (sent to Redis or spooled) to FILE, one IncidentEvent "
        "JSON per line (an audit trail; appended across restarts)",
    )
    p.set_defaults(func=run)


_FLAGS = {
    "ttl_s": "--lease-ttl",
    "max_cameras": "--max-cameras",
    "weight": "--weight",
    "worker_id": "--worker-id",
    "poll_s": "--poll",
    "events_log": "--events-log",
}


def _fail(message: str, code: int = 2) -> int:
    print(f"safewatch worker: {message}", file=sys.stderr)
    return code


def run(args: argparse.Namespace) -> int:
    try:
        leases = LeaseConfig(ttl_s=args.lease_ttl, max_cameras=args.max_cameras, weight=args.weight)
        options = WorkerOptions(
            worker_id=args.worker_id or default_worker_id(), leases=leases, poll_s=args.poll, events_log=args.events_log
        )
    except ValidationError as exc:
        err = exc.errors()[0]
        name = str(err["loc"][-1])
        return _fail(f"bad setting {_FLAGS.get(name, name)}: {err['msg']}")
    settings = read_settings(RuntimeSettings, args)
    logging.getLogger().setLevel(logging.INFO)
    try:
        runtime = WorkerRuntime(settings, options)
    except StartupError as exc:
        flag = _FLAGS.get(exc.field or "")
        return _fail(f"{flag} {exc}" if flag else str(exc), exc.exit_code)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    redis = redact_url(settings.redis_url or "")
    print(f"safewatch worker {runtime.id}: Redis {redis} prefix {settings.redis_prefix!r}", flush=True)
    runtime.serve(stop, on_stopping=lambda: _say(f"safewatch worker {runtime.id}: handing cameras over…"))
    return 0


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
