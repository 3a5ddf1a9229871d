"""`safewatch worker`: the camera half of distributed mode (run as many as the cameras need, on any host).

Camera configs come from Redis (published there by `safewatch api` from its config directory); each worker claims
a fair share of the cameras by lease, publishes incident events to the Redis stream and writes evidence to the
shared media directory (`SAFEWATCH_DATA_DIR`/media or `SAFEWATCH_MEDIA_ROOT`, the same path the API serves).
SIGTERM or Ctrl-C: cameras are handed over (open incidents stay open and continue on another worker) and the
leases released at once. A worker killed outright loses its cameras to the others within `--lease-ttl` seconds.

    SAFEWATCH_REDIS_URL=redis://127.0.0.1:6379/0 safewatch worker --max-cameras 8
"""

from __future__ import annotations

import argparse
import logging
import os
import pathlib
import re
import signal
import socket
import sys
import threading
from typing import Any

from pydantic import ValidationError

from api.distributed import RedisUnavailable, connect, redis_prefix
from api.settings import Settings
from pipelines.bus.factory import make_bus
from pipelines.camera.assemble import EvidenceOptions
from pipelines.camera.sinks import BusSink, JsonlSink
from pipelines.distributed.config_sync import RedisConfigSource
from pipelines.distributed.incident_state import IncidentStateStore
from pipelines.distributed.leases import LeaseConfig, LeaseManager
from pipelines.worker.camera_worker import CameraWorker, Distributed
from vision.detect.batcher import BatcherPool
from vision.detect.registry import ModelRegistry
from vision.media.manifest import load_key
from vision.redact import redact_url

log = logging.getLogger(__name__)


def register(sub: Any) -> None:
    p = sub.add_parser("worker", help="run cameras for a distributed deployment (needs SAFEWATCH_REDIS_URL)")
    p.add_argument("--worker-id", default=None, help="stable id (default <host>-<pid>); also names its event spool")
    p.add_argument("--max-cameras", type=int, default=None, help="never run more cameras than this")
    p.add_argument("--weight", type=float, default=1.0, help="relative capacity for the fair share (default 1)")
    p.add_argument("--lease-ttl", type=float, default=10.0, help="seconds until a dead worker's cameras move")
    p.add_argument("--poll", type=float, default=1.0, help="seconds between config/lease rounds (default 1)")
    p.add_argument("--data-dir", type=pathlib.Path, default=None, help="media and spool (default ./data)")
    p.add_argument("--models-dir", type=pathlib.Path, default=None, help="model cards (default models/)")
    p.add_argument("--redis-prefix", default=None, help="Redis key prefix (env SAFEWATCH_REDIS_PREFIX; safewatch)")
    p.add_argument(
        "--events-log",
        type=pathlib.Path,
        default=None,
        metavar="FILE",
        help="also append every event this worker publishes (sent to Redis or spooled) to FILE, one IncidentEvent "
        "JSON per line (an audit trail; appended across restarts)",
    )
    p.set_defaults(func=run)


_FLAGS = {"ttl_s": "--lease-ttl", "max_cameras": "--max-cameras", "weight": "--weight"}


def _fail(message: str, code: int = 2) -> int:
    print(f"safewatch worker: {message}", file=sys.stderr)
    return code


def run(args: argparse.Namespace) -> int:
    try:
        settings = Settings(**({"data_dir": args.data_dir} if args.data_dir else {}))
        if args.models_dir is not None:
            settings.models_dir = args.models_dir
        leases_cfg = LeaseConfig(ttl_s=args.lease_ttl, max_cameras=args.max_cameras, weight=args.weight)
    except ValidationError as exc:
        err = exc.errors()[0]
        name = ".".join(map(str, err["loc"]))
        return _fail(f"bad setting {_FLAGS.get(name, name)}: {err['msg']}")
    if args.poll <= 0:
        return _fail("--poll must be > 0")
    worker_id = args.worker_id or f"{socket.gethostname()}-{os.getpid()}"
    if not re.fullmatch(r"[A-Za-z0-9._-]{1,128}", worker_id):
        return _fail(f"--worker-id {worker_id!r}: use letters, digits, '.', '_' and '-' only")
    if not settings.redis_url:
        return _fail("SAFEWATCH_REDIS_URL is not set (distributed mode needs Redis; use `safewatch run` without it)")
    try:
        client = connect(settings.redis_url)
    except RedisUnavailable as exc:
        return _fail(str(exc), 1)
    prefix = redis_prefix(args.redis_prefix)
    try:
        bus = make_bus(settings.redis_url, spool_dir=settings.data_dir / "spool" / worker_id, prefix=prefix)
    except ValueError as exc:
        return _fail(str(exc))
    try:
        events_log = JsonlSink(args.events_log) if args.events_log is not None else None
    except OSError as exc:
        bus.close()
        return _fail(f"--events-log {args.events_log}: {exc.strerror or exc}")
    logging.getLogger().setLevel(logging.INFO)
    leases = LeaseManager(client, prefix, worker_id, host=socket.gethostname(), config=leases_cfg)
    worker = CameraWorker(
        RedisConfigSource(client, prefix),
        ModelRegistry(settings.models_dir),
        [BusSink(bus), *([events_log] if events_log is not None else [])],
        evidence=EvidenceOptions(media_root=settings.media_dir, key=load_key()),
        poll_s=min(args.poll, leases_cfg.renew_s),
        distributed=Distributed(leases, IncidentStateStore(client, prefix)),
        batching=BatcherPool() if settings.batching else None,
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(f"safewatch worker {worker_id}: Redis {redact_url(settings.redis_url)} prefix {prefix!r}", flush=True)
    worker.start()
    while not stop.wait(1.0):
        pass
    print(f"safewatch worker {worker_id}: handing cameras over…", file=sys.stderr, flush=True)
    worker.stop()
    bus.close()
    if events_log is not None:
        events_log.close()
    client.close()
    return 0
