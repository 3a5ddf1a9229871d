"""`safewatch run`: the all-in-one service (camera workers + API) — the embedded default.

`--demo` is what `make demo` runs: the sample clips are paced in real time and looped (standing in for cameras),
and a fresh admin API key is printed with the URL. Ctrl-C stops cleanly: cameras stop first (open incidents are
closed, clips flushed), the store applies every event, then the HTTP server stops (`EmbeddedService.serve`).
"""

from __future__ import annotations

import argparse
import logging
import sys

from api.service import EmbeddedService
from api.settings import Settings
from api.store.keys import create_key
from cli.common import add_models_dir_flag, add_precision_flag, add_service_flags, read_settings
from pipelines.config.camera import CameraConfig, ConfigError, load_camera_configs
from vision.redact import redact_url


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("run", help="run the all-in-one service: camera workers + HTTP API (embedded mode)")
    add_service_flags(p)
    add_models_dir_flag(p)
    add_precision_flag(p)
    p.add_argument("--demo", action="store_true", help="print a fresh admin key; files play in real time, looped")
    p.add_argument("--fast", action="store_true", help="play files as fast as possible, once (tests, backfills)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = read_settings(Settings, args)
    try:
        cameras = load_camera_configs(settings.config_dir)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 2
    logging.getLogger().setLevel(logging.INFO)
    service = EmbeddedService(settings, realtime_files=not args.fast)
    _banner(settings, cameras, service, demo=args.demo)
    service.serve(on_stopping=_stopping)
    return 0


def _stopping() -> None:
    print("safewatch: stopping cameras (closing open incidents, flushing clips)…", file=sys.stderr, flush=True)


def _banner(settings: Settings, cameras: list[CameraConfig], service: EmbeddedService, *, demo: bool) -> None:
    url = f"http://{settings.host}:{settings.port}"
    lines = [f"safewatch: API on {url} (docs {url}/docs), data in {settings.data_dir}"]
    for cam in cameras:
        state = "enabled" if cam.enabled else "disabled"
        lines.append(f"  camera {cam.id} ({cam.name}, {state}): {redact_url(cam.streams.detect)}")
    if demo:
        with service.store.session() as session:
            _row, key = create_key(session, role="admin", name="demo")
        lines.append(f"  admin API key (shown once): {key}")
        lines.append(f"  try: curl -H 'X-API-Key: {key}' {url}/v1/incidents")
    else:
        lines.append("  create an API key with: safewatch keys create --role viewer")
    print("\n".join(lines), flush=True)
