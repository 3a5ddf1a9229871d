"""`python -m bench [NAME...] [--list]` — run benchmark modules, then assemble bench/RESULTS.md (`make bench`).

Each benchmark is a module bench/bench_<NAME>.py run as `python -m bench.bench_<NAME>` in its own process from the
repository root (so one benchmark's imports, threads and memory never affect the next); it writes
bench/results/<NAME>.md. With no NAME every benchmark runs, in pipeline order. A failing benchmark does not stop the
others; RESULTS.md is assembled from whatever results files exist, and the exit status is 1 when any failed.
`safewatch bench` runs this module.
"""

from __future__ import annotations

import argparse
import ast
import pathlib
import subprocess
import sys
import time

from bench.assemble import ORDER, ROOT, write

BENCH_DIR = ROOT / "bench"


def discover() -> dict[str, pathlib.Path]:
    """Benchmark name → module file, in pipeline order (unknown names after, alphabetically)."""
    found = {p.stem.removeprefix("bench_"): p for p in BENCH_DIR.glob("bench_*.py")}
    names = [n for n in ORDER if n in found] + sorted(set(found) - set(ORDER))
    return {n: found[n] for n in names}


def describe(path: pathlib.Path) -> str:
    """The first line of a module's docstring, read without importing it (imports can be heavy)."""
    try:
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    except (OSError, SyntaxError, ValueError):
        return ""
    return doc.strip().splitlines()[0] if doc else ""


def run_one(name: str) -> tuple[int, float]:
    sys.stdout.write(f"== bench {name}: {sys.executable} -m bench.bench_{name}\n")
    sys.stdout.flush()
    start = time.monotonic()
    code = subprocess.run([sys.executable, "-m", f"bench.bench_{name}"], cwd=ROOT, check=False).returncode
    return code, time.monotonic() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("names", nargs="*", metavar="NAME", help="benchmarks to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    parser.add_argument("--assemble-only", action="store_true", help="run nothing, only rebuild bench/RESULTS.md")
    args = parser.parse_args(argv)
    available = discover()
    if args.list:
        width = max((len(n) for n in available), default=0)
        for name, path in available.items():
            sys.stdout.write(f"{name:<{width}}  {describe(path)}\n")
        return 0
    unknown = [n for n in args.names if n not in available]
    if unknown:
        sys.stderr.write(f"unknown benchmark(s): {', '.join(unknown)} (known: {', '.join(available) or 'none'})\n")
        return 2
    failed: list[str] = []
    for name in [] if args.assemble_only else (args.names or list(available)):
        code, seconds = run_one(name)
        sys.stdout.write(f"== bench {name}: {'ok' if code == 0 else f'FAILED (exit {code})'} in {seconds:.0f} s\n")
        if code != 0:
            failed.append(name)
    path, lacking = write()
    sys.stdout.write(f"wrote {path}\n")
    if lacking:
        sys.stdout.write(f"results files without a summary line (first table used): {', '.join(lacking)}\n")
    if failed:
        sys.stderr.write(f"failed: {', '.join(failed)}\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
