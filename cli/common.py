"""What several commands share, defined once: the service flags and reading the settings they override.

A command reads its settings here, once (`SAFEWATCH_*` through pydantic-settings, then its flags on top), and passes
them to the layer that does the work; a bad value raises `BadSetting`, which `cli.main` reports with exit status 2.
"""

from __future__ import annotations

import argparse
import pathlib
from typing import TypeVar

from pydantic import ValidationError

from pipelines.worker.settings import RuntimeSettings
from vision.detect.precision import PRECISIONS
from vision.detect.registry import ModelRegistry

S = TypeVar("S", bound=RuntimeSettings)

#: Settings field → the flag that overrides it (where a command has that flag).
FLAGS = {
    "config_dir": "--config-dir",
    "host": "--host",
    "port": "--port",
    "data_dir": "--data-dir",
    "models_dir": "--models-dir",
    "precision": "--precision",
    "redis_prefix": "--redis-prefix",
}


class BadSetting(Exception):
    """A setting (flag or `SAFEWATCH_*` variable) failed validation; the message names which."""


def add_service_flags(p: argparse.ArgumentParser) -> None:
    """--config-dir, --host, --port and --data-dir: where a service finds its cameras, listens and keeps its data."""
    p.add_argument("--config-dir", type=pathlib.Path, default=None, help="camera configs (default camera_configs)")
    p.add_argument("--host", default=None, help="listen address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="listen port (default 8000)")
    add_data_dir_flag(p, "store and media (default ./data)")


def add_data_dir_flag(p: argparse.ArgumentParser, help: str) -> None:
    p.add_argument("--data-dir", type=pathlib.Path, default=None, help=help)


def add_models_dir_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--models-dir", type=pathlib.Path, default=None, help="model cards (default: $SAFEWATCH_MODELS_DIR or ./models)"
    )


def add_precision_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=None,
        help="auto: a model's int8 variant on CPU, fp32 on GPUs; fp32: always the fp32 model; int8: the int8 variant "
        "(default: $SAFEWATCH_PRECISION or auto)",
    )


def add_redis_prefix_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--redis-prefix", default=None, help="Redis key prefix (env SAFEWATCH_REDIS_PREFIX; safewatch)")


def read_settings(cls: type[S], args: argparse.Namespace, **values: object) -> S:
    """`cls` from the environment, overridden by the command's flags that were given (and `values`)."""
    overrides = {k: v for k in FLAGS if (v := getattr(args, k, None)) is not None} | values
    try:
        return cls(**overrides)
    except ValidationError as exc:
        err = exc.errors()[0]
        name = ".".join(map(str, err["loc"]))
        where = FLAGS.get(name, name) if name in overrides else f"SAFEWATCH_{name.upper()}"
        raise BadSetting(f"bad setting {where}: {err['msg']}") from None


def models_dir(args: argparse.Namespace) -> pathlib.Path:
    """--models-dir, else `SAFEWATCH_MODELS_DIR`, else ./models (`RuntimeSettings.models_dir`)."""
    return read_settings(RuntimeSettings, args).models_dir


def model_registry(args: argparse.Namespace) -> ModelRegistry:
    """The model registry on `models_dir(args)` at --precision, else `SAFEWATCH_PRECISION`, else auto."""
    settings = read_settings(RuntimeSettings, args)
    return ModelRegistry(settings.models_dir, precision=settings.precision)
