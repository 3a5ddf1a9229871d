"""`safewatch` console script.

Each command group is a module in this package with `register(subparsers)`; each parser it adds sets
`func=handler(args) -> int`. `COMMANDS` lists them (a new command is a module plus its line here). A command parses
its flags and calls the layer that does the work; nothing outside this package imports from it.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

from cli import api, bench, config, dataset, detect, eval, evidence, keys, models, probe, replay, report, run, worker
from cli.common import BadSetting
from vision.redact import RedactingFormatter

log = logging.getLogger(__name__)

Register = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]

#: Every command, in the order `safewatch --help` lists them.
COMMANDS: tuple[Register, ...] = (
    api.register,
    bench.register,
    config.register,
    dataset.register,
    detect.register,
    eval.register,
    evidence.register,
    keys.register,
    models.register,
    probe.register,
    replay.register,
    report.register,
    run.register,
    worker.register,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="safewatch", description="AI video safety monitoring")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for register in COMMANDS:
        register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    handler = logging.StreamHandler()
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level, handlers=[handler])
    # httpx/httpcore log every request URL at INFO/DEBUG: webhook tokens (DingTalk ?access_token=, Feishu /hook/…)
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        return int(func(args) or 0)
    except BadSetting as exc:
        print(f"safewatch {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
