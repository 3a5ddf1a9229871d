"""`safewatch config validate [DIR|FILE]` and `safewatch config schema`.

validate: exit 0 with one OK line per camera (stream URLs redacted), or exit 2 with one line per problem,
`FILE: FIELD.PATH: message (line N)`. schema: the JSON Schema of a camera config on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys

from api.settings import Settings
from cli.common import read_settings
from pipelines.config.camera import CameraConfig, ConfigError, load_camera_configs
from vision.redact import redact_url


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("config", help="validate camera configs; print their JSON Schema")
    actions = parser.add_subparsers(dest="config_command", metavar="ACTION", required=True)

    validate = actions.add_parser("validate", help="validate a camera config directory or file")
    validate.add_argument(
        "path",
        nargs="?",
        type=pathlib.Path,
        default=None,
        help="directory of *.yaml or one file (default: $SAFEWATCH_CONFIG_DIR or camera_configs)",
    )
    validate.add_argument(
        "--no-file-check", action="store_true", help="do not require stream file paths to exist on this machine"
    )
    validate.set_defaults(func=_validate)

    schema = actions.add_parser("schema", help="print the JSON Schema of camera configs")
    schema.set_defaults(func=_schema)


def _validate(args: argparse.Namespace) -> int:
    path = args.path or read_settings(Settings, args).config_dir
    try:
        configs = load_camera_configs(path, check_files=not args.no_file_check)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem)
        files = len({p.file for p in exc.problems})
        print(f"error: {len(exc.problems)} problem(s) in {files} file(s)", file=sys.stderr)
        return 2
    for config in configs:
        print(_summary(config))
    print(f"{len(configs)} camera config(s) OK")
    return 0


def _summary(config: CameraConfig) -> str:
    rules = ", ".join(rule.type for rule in config.rules) or "no rules"
    zones = ", ".join(zone.name for zone in config.zones) or "no zones"
    streams = f"detect={redact_url(config.streams.detect)}"
    if config.streams.record:
        streams += f" record={redact_url(config.streams.record)}"
    state = "" if config.enabled else " [disabled]"
    schedule = f" schedule={config.schedule.timezone}" if config.schedule else ""
    return (
        f"OK {config.id}{state} site={config.site} name={config.name!r} {streams} fps={config.analysis_fps:g} "
        f"zones=[{zones}] rules=[{rules}]{schedule}"
    )


def _schema(args: argparse.Namespace) -> int:
    try:
        print(json.dumps(CameraConfig.model_json_schema(), indent=2, ensure_ascii=False), flush=True)
    except BrokenPipeError:  # `safewatch config schema | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0
