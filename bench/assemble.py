"""Assemble bench/RESULTS.md from bench/results/*.md: machine header, summary of goals, then every results file.

    .venv/bin/python -m bench.assemble

A results file states its headline numbers with one or more HTML comments (invisible when rendered):

    <!-- summary: goal=>= 1.3x the cv2 loop; result=1.14x; met=no -->

Each becomes a row of the summary table. A file without one is summarised by its first markdown table instead; nothing
else is asked of the files. Each file is then included whole under its own heading (its headings shifted one level
down so the document keeps a single outline).
"""

from __future__ import annotations

import os
import pathlib
import platform
import re
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime

ROOT = pathlib.Path(__file__).resolve().parent.parent
RESULTS_DIR = ROOT / "bench" / "results"
OUTPUT = ROOT / "bench" / "RESULTS.md"
# Pipeline order (source → detector → pipeline → evidence → whole worker); files not listed follow alphabetically.
ORDER = ("sources", "detect", "replay", "evidence", "capacity")

_SUMMARY = re.compile(r"<!--\s*summary:(.*?)-->", re.S)
_FIELD = re.compile(r"\b(goal|result|met)\s*=\s*(.*?)\s*(?=;\s*(?:goal|result|met)\s*=|$)", re.S)
_HEADING = re.compile(r"^(#{1,6})(\s+.*)$")
_FENCE = re.compile(r"^\s*(```|~~~)")


@dataclass(frozen=True, slots=True)
class Summary:
    goal: str
    result: str
    met: str  # yes | no | ? (missing or unrecognised)


@dataclass(frozen=True, slots=True)
class ResultsFile:
    name: str
    path: pathlib.Path
    text: str

    @property
    def summaries(self) -> list[Summary]:
        return parse_summaries(self.text)


def parse_summaries(text: str) -> list[Summary]:
    """Every `<!-- summary: goal=…; result=…; met=yes|no -->` comment of a results file, in order."""
    out = []
    for comment in _SUMMARY.finditer(text):
        fields = {k: " ".join(v.split()) for k, v in _FIELD.findall(comment.group(1).strip())}
        met = fields.get("met", "").lower()
        out.append(Summary(fields.get("goal", "?"), fields.get("result", "?"), met if met in ("yes", "no") else "?"))
    return out


def _outside_fences(lines: list[str]) -> list[bool]:
    """For each line: True when it is not inside a fenced code block."""
    flags, inside = [], False
    for line in lines:
        if _FENCE.match(line):
            inside = not inside
            flags.append(False)
        else:
            flags.append(not inside)
    return flags


def first_table(text: str) -> list[str]:
    """The first markdown table (header, separator, rows) outside code fences; [] when there is none."""
    lines = text.splitlines()
    flags = _outside_fences(lines)
    for i, line in enumerate(lines[:-1]):
        if flags[i] and line.lstrip().startswith("|") and re.match(r"^\s*\|[\s:|-]+\|?\s*$", lines[i + 1]):
            end = i
            while end < len(lines) and flags[end] and lines[end].lstrip().startswith("|"):
                end += 1
            return lines[i:end]
    return []


def section(file: ResultsFile, level: int = 2) -> str:
    """The file under a level-`level` heading: its own first H1 becomes the heading, other headings move below it."""
    lines = file.text.strip("\n").splitlines()
    flags = _outside_fences(lines)
    title = file.name
    if lines and flags[0] and (m := _HEADING.match(lines[0])) and len(m.group(1)) == 1:
        title = f"{file.name}: {m.group(2).strip()}"
        lines, flags = lines[1:], flags[1:]
    levels = [len(m.group(1)) for line, ok in zip(lines, flags, strict=True) if ok and (m := _HEADING.match(line))]
    shift = level + 1 - min(levels) if levels else 0
    body = []
    for line, ok in zip(lines, flags, strict=True):
        m = _HEADING.match(line) if ok else None
        body.append(f"{'#' * min(6, len(m.group(1)) + shift)}{m.group(2)}" if m else line)
    source = f"`{file.path.relative_to(ROOT)}`" if file.path.is_relative_to(ROOT) else f"`{file.path}`"
    return f"{'#' * level} {title}\n\n_From {source}._\n\n" + "\n".join(body).strip("\n") + "\n"


def _read(path: pathlib.Path, default: str = "") -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return default


def machine_lines() -> list[str]:
    cpuinfo = _read(pathlib.Path("/proc/cpuinfo"))
    model = next((ln.split(":", 1)[1].strip() for ln in cpuinfo.splitlines() if ln.startswith("model name")), None)
    mem = re.search(r"^MemTotal:\s+(\d+) kB", _read(pathlib.Path("/proc/meminfo")), re.M)
    cores = os.cpu_count() or 0
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    busy = load[0] > usable * 0.5
    note = (
        "other work was running while this was assembled; each results file records the load of its own run"
        if busy
        else "quiet at assembly time; each results file records the load of its own run"
    )
    return [
        f"- CPU: {model or platform.processor() or platform.machine()} — {cores} logical cores "
        f"({usable} usable by this process), {platform.machine()}",
        f"- RAM: {int(mem.group(1)) / 1024**2:.1f} GiB" if mem else "- RAM: unknown",
        f"- load average (1/5/15 min) at assembly: {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} — {note}",
        f"- Python {platform.python_version()}, {platform.system()} {platform.release()}",
    ]


def git_commit(root: pathlib.Path = ROOT) -> str:
    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10, check=True)
        return done.stdout.strip()

    try:
        commit = git("rev-parse", "--short=12", "HEAD")
        dirty = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.SubprocessError):
        return "unknown (not a git checkout)"
    return f"{commit} (with uncommitted changes)" if dirty else commit


def results_files(results_dir: pathlib.Path = RESULTS_DIR) -> list[ResultsFile]:
    paths = {p.stem: p for p in results_dir.glob("*.md")} if results_dir.is_dir() else {}
    names = [n for n in ORDER if n in paths] + sorted(set(paths) - set(ORDER))
    return [ResultsFile(n, paths[n], _read(paths[n])) for n in names]


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def summary_section(files: list[ResultsFile]) -> list[str]:
    rows = [(f, s) for f in files for s in f.summaries]
    out = ["## Summary", ""]
    if rows:
        out += ["| benchmark | goal | result | met |", "|---|---|---|---|"]
        out += [f"| {f.name} | {_cell(s.goal)} | {_cell(s.result)} | {s.met} |" for f, s in rows]
        out.append("")
    lacking = [f for f in files if not f.summaries]
    if lacking:
        out += ["Results files without a `<!-- summary: goal=…; result=…; met=yes|no -->` line; their first table:", ""]
        for f in lacking:
            table = first_table(f.text)
            out += [f"**{f.name}**", ""] + (table or ["(no table in the file)"]) + [""]
    return out


def build(files: list[ResultsFile], now: datetime | None = None, commit: str | None = None) -> str:
    stamp = (now or datetime.now(UTC)).strftime("%Y-%m-%d %H:%M UTC")
    head = [
        "# Benchmark results",
        "",
        "Assembled by `python -m bench.assemble` (also run by `make bench` and `safewatch bench`) from",
        "`bench/results/*.md`; edit the benchmarks, not this file.",
        "",
        "## Machine",
        "",
        *machine_lines(),
        f"- assembled: {stamp}",
        f"- git commit: {commit or git_commit()}",
        "",
    ]
    if not files:
        return "\n".join([*head, "No results yet: run `make bench` or `safewatch bench`.", ""])
    body = [section(f) for f in files]
    return "\n".join([*head, *summary_section(files), *body])


def write(output: pathlib.Path = OUTPUT, results_dir: pathlib.Path = RESULTS_DIR) -> tuple[pathlib.Path, list[str]]:
    """Write RESULTS.md; returns its path and the names of the results files that had no summary line."""
    files = results_files(results_dir)
    output.write_text(build(files), encoding="utf-8")
    return output, [f.name for f in files if not f.summaries]


def main() -> int:
    path, lacking = write()
    sys.stdout.write(f"wrote {path}\n")
    if lacking:
        sys.stdout.write(f"results files without a summary line (first table used): {', '.join(lacking)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
