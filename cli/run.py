"""`safewatch run`: the all-in-one service (camera workers + API) — the embedded default.

`--demo` is what `make demo` runs: the sample clips are paced in real time and looped (standing in for cameras),
and a fresh admin API key is printed with the URL. Ctrl-C stops cleanly: cameras stop first (open incidents are
closed, clips flushed), the store applies every event, then the HTTP server stops.
"""

from __future__ import annotations

import argparse
import logging
import pathlib
import sys
import threading
from typing import Any

import uvicorn
from pydantic import ValidationError

from api.service import EmbeddedService
from api.settings import Settings
from api.store.keys import create_key
from cli.models import models_dir
from pipelines.config.camera import ConfigError, load_camera_configs
from vision.redact import redact_url

log = logging.getLogger(__name__)


def register(sub: Any) -> None:
    p = sub.add_parser("run", help="run the all-in-one service: camera workers + HTTP API (embedded mode)")
    p.add_argument("--config-dir", type=pathlib.Path, default=None, help="camera configs (default camera_configs)")
    p.add_argument("--host", default=None, help="listen address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="listen port (default 8000)")
    p.add_argument("--data-dir", type=pathlib.Path, default=None, help="store and media (default ./data)")
    p.add_argument("--models-dir", type=pathlib.Path, default=None, help="model cards (default models/)")
    p.add_argument("--demo", action="store_true", help="print a fresh admin key; files play in real time, looped")
    p.add_argument("--fast", action="store_true", help="play files as fast as possible, once (tests, backfills)")
    p.set_defaults(func=run)


def _settings(args: argparse.Namespace) -> Settings:
    overrides: dict[str, Any] = {}
    for name in ("config_dir", "host", "port", "data_dir"):
        value = getattr(args, name)
        if value is not None:
            overrides[name] = value
    return Settings(**overrides)


def run(args: argparse.Namespace) -> int:
    try:
        settings = _settings(args)
    except ValidationError as exc:
        err = exc.errors()[0]
        print(f"safewatch run: bad setting {'.'.join(map(str, err['loc']))}: {err['msg']}", file=sys.stderr)
        return 2
    try:
        cameras = load_camera_configs(settings.config_dir)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 2
    logging.getLogger().setLevel(logging.INFO)
    service = EmbeddedService(settings, models_dir=models_dir(args), realtime_files=not args.fast)
    _banner(settings, cameras, service, demo=args.demo)
    config = uvicorn.Config(
        service.app, host=settings.host, port=settings.port, log_level="warning", timeout_graceful_shutdown=5
    )
    server = _Server(config, service)
    service.start()
    server.run()
    return 0


def _banner(settings: Settings, cameras: list[Any], service: EmbeddedService, *, demo: bool) -> None:
    url = f"http://{settings.host}:{settings.port}"
    lines = [f"safewatch: API on {url} (docs {url}/docs), data in {settings.data_dir}"]
    for cam in cameras:
        state = "enabled" if cam.enabled else "disabled"
        lines.append(f"  camera {cam.id} ({cam.name}, {state}): {redact_url(cam.streams.detect)}")
    if demo:
        with service.app.state.ctx.store.session() as session:
            _row, key = create_key(session, role="admin", name="demo")
        lines.append(f"  admin API key (shown once): {key}")
        lines.append(f"  try: curl -H 'X-API-Key: {key}' {url}/v1/incidents")
    else:
        lines.append("  create an API key with: safewatch keys create --role viewer")
    print("\n".join(lines), flush=True)


class _Server(uvicorn.Server):
    """Uvicorn server whose first Ctrl-C stops the cameras and drains the bus before the HTTP server exits."""

    def __init__(self, config: uvicorn.Config, service: EmbeddedService) -> None:
        super().__init__(config)
        self.service = service
        self._stopping = False

    def handle_exit(self, sig: int, frame: Any) -> None:
        if self._stopping:  # a second Ctrl-C: exit now
            super().handle_exit(sig, frame)
            return
        self._stopping = True
        print("safewatch: stopping cameras (closing open incidents, flushing clips)…", file=sys.stderr, flush=True)

        def stop() -> None:
            self.service.stop_cameras()
            self.should_exit = True

        threading.Thread(target=stop, name="shutdown", daemon=True).start()
