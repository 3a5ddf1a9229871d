"""`safewatch api`: the HTTP half of distributed mode (store, REST, SSE, webhooks); cameras run in `safewatch worker`s.

The service itself is `api.service_api.ApiService` (what it consumes, serves and mirrors into Redis is described
there); this command reads the settings and flags, starts it and prints where it listens.

    SAFEWATCH_REDIS_URL=redis://127.0.0.1:6379/0 safewatch api --config-dir camera_configs --port 8000
"""

from __future__ import annotations

import argparse
import logging
import sys

from api.service_api import ApiService
from api.settings import Settings
from cli.common import add_redis_prefix_flag, add_service_flags, read_settings
from pipelines.worker.runtime import StartupError
from vision.redact import redact_url


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("api", help="run the HTTP API for a distributed deployment (needs SAFEWATCH_REDIS_URL)")
    add_service_flags(p)
    add_redis_prefix_flag(p)
    p.add_argument("--sync-interval", type=float, default=1.0, help="seconds between config dir checks (default 1)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = read_settings(Settings, args)
    if args.sync_interval <= 0:
        return _fail("--sync-interval must be > 0")
    logging.getLogger().setLevel(logging.INFO)
    try:
        service = ApiService(settings, sync_interval_s=args.sync_interval)
    except StartupError as exc:
        return _fail(str(exc), exc.exit_code)
    changed = service.start()
    url = f"http://{settings.host}:{settings.port}"
    print(
        f"safewatch api: {url} (docs {url}/docs), Redis {redact_url(settings.redis_url or '')} prefix "
        f"{settings.redis_prefix!r}, {changed} camera config(s) published from {settings.config_dir}",
        flush=True,
    )
    service.serve()
    return 0


def _fail(message: str, code: int = 2) -> int:
    print(f"safewatch api: {message}", file=sys.stderr)
    return code
