"""`python -m bench.compare NAME... [--baseline REV] [--current REV] [--reps N] [-- ARGS]` — before/after benchmarks.

Figures of old and new code only compare when taken side by side, on one machine under the same load. Each NAME runs
as `python -m bench.bench_<NAME> ARGS` in its own process (as `python -m bench` runs it), alternately on a git
worktree of the baseline and on this working tree (or a worktree of `--current REV`), the side going first alternating
between repetitions. Written to bench/results/compare/ (a subfolder, so RESULTS.md ignores it): <NAME>.md with each
summary line before and after, every figure in it (median and range per side, ratio or point difference), the load
average around each run and the revisions; <NAME>.before.md / <NAME>.after.md, each side's last results file.

A worktree imports its own packages because `python -m` puts the working directory first on sys.path, ahead of the
editable install's finder (checked before anything runs); it gets symlinks to what git does not hold (built models,
.venv-bench) and is removed at the end. On this tree a benchmark rewrites bench/results/<NAME>.md as
`python -m bench NAME` does: try reduced ARGS with `--current HEAD` instead. ARGS go to every NAME.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import pairwise, zip_longest
from pathlib import Path

from bench.assemble import ROOT, Summary, first_table, git_commit, parse_summaries

OUT_DIR = ROOT / "bench" / "results" / "compare"
# Needed by the benchmarks but not in git: linked into each worktree from the current tree. Not bench/out: each tree
# makes its own clips there (deterministic ffmpeg runs), and links it leaves would dangle once the worktree is gone.
UNTRACKED = ("models/*.onnx", "models/.build", ".venv-bench")
PACKAGES = ("bench", "vision", "pipelines", "api")
# A figure in a result: "0.27", "+9.5", "x1.02" count; the 99 of "p99" and the 2 of "B2" do not.
_NUMBER = re.compile(r"(?<![A-WYZa-wyz\d.])[-+]?\d+(?:\.\d+)?")
_DELIMITER = re.compile(r"[,;:()]")


@dataclass(frozen=True, slots=True)
class Tree:
    side: str  # "before" | "after"
    root: Path
    rev: str  # what is checked out, for the report


@dataclass(frozen=True, slots=True)
class Run:
    side: str
    code: int
    seconds: float
    load: tuple[float, float]  # 1-minute load average just before / just after the run
    text: str  # the results file it wrote ("" when it wrote none)

    @property
    def summaries(self) -> list[Summary]:
        return parse_summaries(self.text) if self.code == 0 else []


def split_argv(argv: list[str]) -> tuple[list[str], list[str]]:
    """Own arguments, and the ones after `--` that go to the benchmarks."""
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], argv[i + 1 :]
    return argv, []


def figures(result: str) -> tuple[str, list[str]]:
    """A result with its figures replaced by `#`, and the figures: results of the same benchmark share the template."""
    return _NUMBER.sub("#", result), _NUMBER.findall(result)


def labels(template: str) -> list[str]:
    """A short name for each `#` of a template: the words around it, up to the nearest delimiter or figure."""
    out = []
    for before, after in pairwise(template.split("#")):
        head, tail = _DELIMITER.split(before)[-1], _DELIMITER.split(after)[0]
        pre = " ".join(head.split()[-3:]) + (" " if head[-1:].isspace() else "")
        post = (" " if tail[:1].isspace() else "") + " ".join(tail.split()[:3])
        out.append(f"{pre}#{post}".strip())
    return out


def _spread(tokens: list[str]) -> str:
    """Median (min–max), with as many decimals as the benchmark printed."""
    places = max(len(t.partition(".")[2]) for t in tokens)
    values = [float(t) for t in tokens]
    text = f"{statistics.median(values):.{places}f}"
    return text if min(values) == max(values) else f"{text} ({min(values):.{places}f}–{max(values):.{places}f})"


def change(label: str, before: float, after: float) -> str:
    """Percentage points for a percentage (a ratio of two small overheads says little), else the ratio after/before."""
    if "#%" in label:
        return f"{after - before:+.1f} pt"
    return f"x{after / before:.2f}" if before else "–"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def figure_rows(goal: str, before: list[str], after: list[str]) -> list[str]:
    """Table rows for one summary line: each figure's median (range) per side and the change after vs before."""
    parsed = [figures(r) for r in before + after]
    templates = {t for t, _ in parsed}
    if not before or not after or len(templates) != 1:
        return [f"| {_cell(goal)} | (a side has no result, or the results differ in form: see above) | | | |"]
    rows = []
    for i, name in enumerate(labels(templates.pop())):
        b = [f[i] for _, f in parsed[: len(before)]]
        a = [f[i] for _, f in parsed[len(before) :]]
        moved = change(name, statistics.median(map(float, b)), statistics.median(map(float, a)))
        rows.append(f"| {_cell(goal)} | `{_cell(name)}` | {_spread(b)} | {_spread(a)} | {moved} |")
    return rows


def _goal(before: Summary | None, after: Summary | None) -> str:
    return before.goal if before else after.goal if after else "?"


def render(name: str, trees: tuple[Tree, Tree], runs: list[Run], command: str, now: datetime) -> str:
    """The comparison report for one benchmark."""
    by_side = {t.side: [r for r in runs if r.side == t.side] for t in trees}
    ok = {side: [r for r in rs if r.code == 0] for side, rs in by_side.items()}
    lines = [
        f"# compare: {name}",
        "",
        f"`{command}` — {now:%Y-%m-%d %H:%M UTC}, {os.cpu_count()} logical cores, runs alternating, "
        "medians over the runs of each side (range in brackets); after vs before is a ratio (xN) or, for a percentage, "
        "the difference in points; which way is better depends on the figure (ms: lower; x, req/s, fps: higher).",
        "",
        *[f"- {t.side}: {t.rev} — {len(ok[t.side])} of {len(by_side[t.side])} runs ok" for t in trees],
        "",
        "## Summary lines",
        "",
        "| goal | met before → after | before (last run) | after (last run) |",
        "|---|---|---|---|",
    ]
    before = [r.summaries for r in ok["before"]]
    after = [r.summaries for r in ok["after"]]
    last_b, last_a = (before[-1] if before else []), (after[-1] if after else [])
    pairs = list(zip_longest(last_b, last_a))
    for b, a in pairs:
        goal = _goal(b, a) + ("" if not (a and b) or a.goal == b.goal else f" (after: {a.goal})")
        met = f"{b.met if b else '–'} → {a.met if a else '–'}"
        lines.append(f"| {_cell(goal)} | {met} | {_cell(b.result if b else '–')} | {_cell(a.result if a else '–')} |")
    lines += ["", "## Figures", "", "| goal | figure | before | after | after vs before |", "|---|---|---:|---:|---:|"]
    for i, (b, a) in enumerate(pairs):
        results_b = [s[i].result for s in before if len(s) > i]
        results_a = [s[i].result for s in after if len(s) > i]
        lines += figure_rows(_goal(b, a), results_b, results_a)
    if not pairs:  # as in RESULTS.md: a file without summary lines is represented by its first table
        for side, side_runs in ok.items():
            lines += [
                "",
                f"First table, {side} (no summary lines):",
                "",
                *first_table(side_runs[-1].text if side_runs else ""),
            ]
    lines += ["", "## Runs", "", "| # | side | exit | seconds | load 1-min before → after |", "|---|---|---:|---:|---|"]
    lines += [
        f"| {i} | {r.side} | {r.code} | {r.seconds:.0f} | {r.load[0]:.2f} → {r.load[1]:.2f} |"
        for i, r in enumerate(runs, 1)
    ]
    return "\n".join(lines) + "\n"


def git(*args: str, cwd: Path = ROOT) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


def add_worktree(side: str, rev: str, parent: Path) -> Tree:
    """A detached worktree of `rev` with the untracked files the benchmarks need linked in."""
    sha = git("rev-parse", "--verify", f"{rev}^{{commit}}")
    path = parent / side
    git("worktree", "add", "--detach", str(path), sha)
    for pattern in UNTRACKED:
        for src in ROOT.glob(pattern):
            dst = path / src.relative_to(ROOT)
            if not dst.exists() and not dst.is_symlink():
                dst.parent.mkdir(parents=True, exist_ok=True)
                dst.symlink_to(src)
    subject = git("log", "-1", "--format=%s", sha)
    subject = subject if len(subject) <= 60 else subject[:59] + "…"
    return Tree(side, path, f"{sha[:12]} ({rev}: {subject}), worktree")


def remove_worktree(path: Path) -> None:
    """Unlink the links first (so nothing can reach the linked models), then let git delete the rest."""
    for pattern in UNTRACKED:
        for link in path.glob(pattern):
            if link.is_symlink():
                link.unlink()
    subprocess.run(["git", "worktree", "remove", "--force", str(path)], cwd=ROOT, check=False)
    subprocess.run(["git", "worktree", "prune"], cwd=ROOT, check=False)


def check_imports(tree: Tree, env: dict[str, str]) -> None:
    """Fail before any run when the tree's benchmarks would import another tree's packages."""
    code = f"import importlib; print('\\n'.join(importlib.import_module(p).__file__ for p in {PACKAGES!r}))"
    done = subprocess.run([sys.executable, "-c", code], cwd=tree.root, env=env, capture_output=True, text=True)
    files = [Path(f).resolve() for f in done.stdout.split()]
    if done.returncode != 0 or len(files) != len(PACKAGES) or any(not f.is_relative_to(tree.root) for f in files):
        raise SystemExit(f"{tree.side} tree {tree.root} does not import its own packages: {done.stdout}{done.stderr}")


def run_bench(name: str, tree: Tree, extra: list[str], env: dict[str, str]) -> Run:
    results = tree.root / "bench" / "results" / f"{name}.md"
    sys.stdout.write(f"== compare {name} [{tree.side}] in {tree.root}\n")
    sys.stdout.flush()
    load0, start = os.getloadavg()[0], time.time()
    cmd = [sys.executable, "-m", f"bench.bench_{name}", *extra]
    code = subprocess.run(cmd, cwd=tree.root, env=env, check=False).returncode
    fresh = results.is_file() and results.stat().st_mtime >= start
    text = results.read_text(encoding="utf-8") if fresh else ""
    if code == 0 and not fresh:
        sys.stderr.write(f"{name} [{tree.side}] exited 0 without writing {results}; counted as failed\n")
        code = -1
    return Run(tree.side, code, time.time() - start, (load0, os.getloadavg()[0]), text)


def compare(names: list[str], trees: tuple[Tree, Tree], reps: int, extra: list[str], command: str) -> bool:
    """Run and report every benchmark; True when every run succeeded."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONSAFEPATH"} | {
        "YOLO_OFFLINE": os.environ.get("YOLO_OFFLINE", "1")  # as `make bench` sets it
    }
    for tree in trees:
        check_imports(tree, env)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    all_ok = True
    for name in names:
        runs = [run_bench(name, t, extra, env) for rep in range(reps) for t in (trees if rep % 2 == 0 else trees[::-1])]
        (OUT_DIR / f"{name}.md").write_text(render(name, trees, runs, command, datetime.now(UTC)), encoding="utf-8")
        for side in ("before", "after"):
            last = [r for r in runs if r.side == side and r.text]
            if last:
                (OUT_DIR / f"{name}.{side}.md").write_text(last[-1].text, encoding="utf-8")
        sys.stdout.write(f"wrote {OUT_DIR / f'{name}.md'}\n")
        all_ok = all_ok and all(r.code == 0 for r in runs)
    return all_ok


def main(argv: list[str] | None = None) -> int:
    raw = sys.argv[1:] if argv is None else argv
    own, extra = split_argv(raw)
    parser = argparse.ArgumentParser(prog="python -m bench.compare", description=(__doc__ or "").split("\n")[2])
    parser.add_argument("names", nargs="+", metavar="NAME", help="benchmarks to compare (bench/bench_<NAME>.py)")
    parser.add_argument("--baseline", default="HEAD", help="revision for the 'before' side (default HEAD)")
    parser.add_argument("--current", metavar="REV", help="a revision for the 'after' side instead of the working tree")
    parser.add_argument("--reps", type=int, default=1, help="runs per side, alternating (default 1)")
    args = parser.parse_args(own)
    unknown = [n for n in args.names if not (ROOT / "bench" / f"bench_{n}.py").is_file()]
    if unknown or args.reps < 1:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}" if unknown else "--reps must be >= 1")
    command = f"python -m bench.compare {shlex.join(raw)}"
    parent = Path(tempfile.mkdtemp(prefix="bench-compare-"))  # outside this tree, so imports can't be confused
    made: list[Tree] = []
    try:
        made.append(add_worktree("before", args.baseline, parent))
        if args.current:
            made.append(add_worktree("after", args.current, parent))
        after = made[1] if args.current else Tree("after", ROOT, f"{git_commit(ROOT)}, this tree")
        return 0 if compare(args.names, (made[0], after), args.reps, extra, command) else 1
    finally:
        for tree in made:
            remove_worktree(tree.root)
        if parent.exists() and not any(parent.iterdir()):
            parent.rmdir()


if __name__ == "__main__":
    sys.exit(main())
