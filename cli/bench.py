"""`safewatch bench [NAME...] [--list] [--assemble-only]` — run the benchmarks of a safewatch checkout.

The benchmarks live in the repository (bench/), not in the installed package: this command looks for a bench/
package in the current directory or one of its parents and runs `python -m bench ...` there with this interpreter
(see bench/__main__.py), which runs each `bench.bench_<NAME>` and assembles bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import pathlib
import subprocess
import sys


def find_checkout(start: pathlib.Path) -> pathlib.Path | None:
    """The nearest directory at or above `start` that holds bench/__main__.py and a pyproject.toml."""
    for folder in (start, *start.parents):
        if (folder / "bench" / "__main__.py").is_file() and (folder / "pyproject.toml").is_file():
            return folder
    return None


def cmd_bench(args: argparse.Namespace) -> int:
    root = find_checkout(pathlib.Path.cwd().resolve())
    if root is None:
        sys.stderr.write(
            f"safewatch bench: no bench/ directory in {pathlib.Path.cwd()} or its parents; the benchmarks are part of "
            "the safewatch repository, not of the installed package: run this from a checkout (or `make bench`)\n"
        )
        return 2
    argv = [*args.names, *(["--list"] if args.list else []), *(["--assemble-only"] if args.assemble_only else [])]
    try:
        return subprocess.run([sys.executable, "-m", "bench", *argv], cwd=root, check=False).returncode
    except KeyboardInterrupt:
        return 130


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("bench", help="run benchmarks (bench/bench_<NAME>.py) and assemble bench/RESULTS.md")
    p.add_argument("names", nargs="*", metavar="NAME", help="benchmarks to run (default: all; see --list)")
    p.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    p.add_argument("--assemble-only", action="store_true", help="run nothing, only rebuild bench/RESULTS.md")
    p.set_defaults(func=cmd_bench)
