"""`safewatch api`: the HTTP half of distributed mode (store, REST, SSE, webhooks); cameras run in `safewatch worker`s.

It consumes the Redis event stream into the store (`SAFEWATCH_DATABASE_URL`; PostgreSQL when several API processes
share it), answers `GET /v1/workers` and the worker gauges of `/metrics` from the workers' heartbeats, and mirrors
its camera config directory into Redis for the workers (at start, then whenever a file changes — which is what
`PUT/DELETE /v1/cameras` do).

    SAFEWATCH_REDIS_URL=redis://127.0.0.1:6379/0 safewatch api --config-dir camera_configs --port 8000
"""

from __future__ import annotations

import argparse
import logging
import pathlib
import sys
import tempfile
from typing import Any

import uvicorn
from pydantic import ValidationError

from api.app import create_app
from api.distributed import ConfigSync, RedisUnavailable, RedisWorkers, connect, redis_prefix
from api.settings import Settings
from pipelines.bus.factory import make_bus
from vision.redact import redact_url

log = logging.getLogger(__name__)

REDIS_TIMEOUT_S = 5.0  # heartbeats (GET /v1/workers, /metrics) and config sync: a hung Redis fails, never blocks


def register(sub: Any) -> None:
    p = sub.add_parser("api", help="run the HTTP API for a distributed deployment (needs SAFEWATCH_REDIS_URL)")
    p.add_argument("--config-dir", type=pathlib.Path, default=None, help="camera configs (default camera_configs)")
    p.add_argument("--host", default=None, help="listen address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="listen port (default 8000)")
    p.add_argument("--data-dir", type=pathlib.Path, default=None, help="store and media (default ./data)")
    p.add_argument("--redis-prefix", default=None, help="Redis key prefix (env SAFEWATCH_REDIS_PREFIX; safewatch)")
    p.add_argument("--sync-interval", type=float, default=1.0, help="seconds between config dir checks (default 1)")
    p.set_defaults(func=run)


def _fail(message: str, code: int = 2) -> int:
    print(f"safewatch api: {message}", file=sys.stderr)
    return code


def run(args: argparse.Namespace) -> int:
    overrides = {k: v for k in ("config_dir", "host", "port", "data_dir") if (v := getattr(args, k)) is not None}
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        err = exc.errors()[0]
        return _fail(f"bad setting {'.'.join(map(str, err['loc']))}: {err['msg']}")
    if not settings.redis_url:
        return _fail("SAFEWATCH_REDIS_URL is not set (distributed mode needs Redis; use `safewatch run` without it)")
    if not settings.config_dir.is_dir():
        return _fail(f"config dir {settings.config_dir}: no such directory")
    if args.sync_interval <= 0:
        return _fail("--sync-interval must be > 0")
    try:
        client = connect(settings.redis_url, timeout_s=REDIS_TIMEOUT_S)
    except RedisUnavailable as exc:
        return _fail(str(exc), 1)
    prefix = redis_prefix(args.redis_prefix)
    logging.getLogger().setLevel(logging.INFO)
    with tempfile.TemporaryDirectory(prefix="safewatch-api-spool-") as spool:  # the API publishes nothing
        try:
            bus = make_bus(settings.redis_url, spool_dir=pathlib.Path(spool), prefix=prefix)
        except ValueError as exc:
            return _fail(str(exc))
        workers = RedisWorkers(client, prefix)
        app = create_app(settings, bus=bus, workers=workers)
        app.state.ctx.metrics.watch_workers(workers)  # /metrics: the workers' heartbeats, read at scrape time
        sync = ConfigSync(settings.config_dir, client, prefix, interval_s=args.sync_interval)
        changed = sync.start()
        url = f"http://{settings.host}:{settings.port}"
        print(
            f"safewatch api: {url} (docs {url}/docs), Redis {redact_url(settings.redis_url)} prefix {prefix!r}, "
            f"{changed} camera config(s) published from {settings.config_dir}",
            flush=True,
        )
        try:
            uvicorn.Server(uvicorn.Config(app, host=settings.host, port=settings.port, log_level="warning")).run()
        finally:
            sync.stop()
            bus.close()
            client.close()
    return 0
