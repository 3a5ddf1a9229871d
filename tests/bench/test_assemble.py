"""bench/assemble.py (RESULTS.md from results files) and the `safewatch bench` / `python -m bench` runners."""

from __future__ import annotations

import pathlib
import subprocess
import sys
from datetime import UTC, datetime

import pytest

from bench.assemble import ROOT, ResultsFile, Summary, build, first_table, parse_summaries, section, write
from cli.main import main

TABLE = ["| a | b |", "|---|--:|", "| 1 | 2 |"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<!-- summary: goal=>= 1.3x cv2; result=1.14x; met=no -->", [Summary(">= 1.3x cv2", "1.14x", "no")]),
        ("<!--summary:goal=a=b;result=x; y;met=YES-->", [Summary("a=b", "x; y", "yes")]),  # = and ; inside values
        ("<!-- summary: goal=g\n  over two lines; result=r; met=maybe -->", [Summary("g over two lines", "r", "?")]),
        ("<!-- summary: result=r -->", [Summary("?", "r", "?")]),
        (
            "<!-- summary: goal=1; result=1; met=yes -->\n<!-- summary: goal=2; result=2; met=no -->",
            [Summary("1", "1", "yes"), Summary("2", "2", "no")],
        ),
        ("# no summary\n<!-- other comment -->", []),
    ],
)
def test_parse_summaries(text: str, expected: list[Summary]) -> None:
    assert parse_summaries(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("\n".join(["# t", "intro", *TABLE, "", "| x |", "|---|"]), TABLE),
        ("\n".join(["```", *TABLE[:2], "```", "| c |", "|---|", "| 3 |"]), ["| c |", "|---|", "| 3 |"]),
        ("| not | a table |\nbecause no separator", []),
        ("", []),
    ],
)
def test_first_table(text: str, expected: list[str]) -> None:
    assert first_table(text) == expected


def test_section_shifts_headings_below_its_own(tmp_path: pathlib.Path) -> None:
    text = "# Detector benchmark\n\n## batch\n\n```\n# a comment in code\n```\n### detail\n"
    out = section(ResultsFile("detect", tmp_path / "detect.md", text))
    assert out.startswith("## detect: Detector benchmark\n")
    assert "\n### batch\n" in out and "\n#### detail" in out and "\n# a comment in code\n" in out
    plain = section(ResultsFile("evidence", tmp_path / "evidence.md", "## Evidence\n\ntext\n"))
    assert plain.startswith("## evidence\n") and "\n### Evidence\n" in plain


def test_build_and_write(tmp_path: pathlib.Path) -> None:
    results = tmp_path / "results"
    results.mkdir()
    (results / "sources.md").write_text("# Sources\n<!-- summary: goal=>= 1.3x; result=1.14x; met=no -->\n")
    (results / "zeta.md").write_text("# Zeta\n\n" + "\n".join(TABLE) + "\n")
    (results / "detect.md").write_text("# Detect\n<!-- summary: goal=parity; result=1.03x; met=yes -->\n")
    doc = build(
        [ResultsFile(p.stem, p, p.read_text()) for p in sorted(results.glob("*.md"))],
        now=datetime(2026, 1, 2, 3, 4, tzinfo=UTC),
        commit="abc",
    )
    assert "- assembled: 2026-01-02 03:04 UTC" in doc and "- git commit: abc" in doc and "logical cores" in doc
    assert "| sources | >= 1.3x | 1.14x | no |" in doc and "| detect | parity | 1.03x | yes |" in doc
    assert "**zeta**\n\n" + "\n".join(TABLE) in doc
    path, lacking = write(tmp_path / "RESULTS.md", results)
    text = path.read_text()
    assert lacking == ["zeta"]
    # pipeline order first (sources before detect), then the rest alphabetically
    assert text.index("## sources: Sources") < text.index("## detect: Detect") < text.index("## zeta: Zeta")
    empty, _ = write(tmp_path / "EMPTY.md", tmp_path / "none")
    assert "No results yet" in empty.read_text()


def test_safewatch_bench_outside_a_checkout(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["bench", "--list"]) == 2
    assert "no bench/ directory in" in capsys.readouterr().err


def test_bench_runner_list_and_unknown(monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(ROOT / "sample_media")  # a sub-directory: the checkout is found upwards
    assert main(["bench", "--list"]) == 0
    names = [line.split()[0] for line in capfd.readouterr().out.splitlines()]
    assert {"detect", "sources"} <= set(names)
    done = subprocess.run([sys.executable, "-m", "bench", "nope"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 2 and "unknown benchmark(s): nope" in done.stderr
