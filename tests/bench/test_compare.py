"""bench/compare.py: the parts that read results and write the report (running benchmarks is left to the tool)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from bench.compare import Run, Tree, change, figure_rows, figures, labels, render, split_argv

API = "p99 927 ms, p50 219 ms, 200 req/s"


def results_file(*lines: tuple[str, str, str]) -> str:
    body = [f"<!-- summary: goal={g}; result={r}; met={m} -->" for g, r, m in lines]
    return "\n".join(["# Bench", "", "| a |", "|---|", "| 1 |", "", *body, ""])


def test_split_argv_passes_what_follows_the_double_dash() -> None:
    assert split_argv(["replay", "--reps", "2", "--", "--rounds", "1"]) == (
        ["replay", "--reps", "2"],
        ["--rounds", "1"],
    )
    assert split_argv(["evidence"]) == (["evidence"], [])


@pytest.mark.parametrize(
    ("result", "template", "found", "names"),
    [
        (API, "p99 # ms, p50 # ms, # req/s", ["927", "219", "200"], ["p99 # ms", "p50 # ms", "# req/s"]),
        ("x1.02 at batch 1", "x# at batch #", ["1.02", "1"], ["x# at batch", "at batch #"]),
        ("+9.5%", "#%", ["+9.5"], ["#%"]),
        (
            "0.95x with B-frames, 0.82x without",
            "#x with B-frames, #x without",
            ["0.95", "0.82"],
            ["#x with B-frames", "#x without"],
        ),
        ("8 cameras", "# cameras", ["8"], ["# cameras"]),
    ],
)
def test_figures_and_their_labels(result: str, template: str, found: list[str], names: list[str]) -> None:
    assert figures(result) == (template, found)
    assert labels(template) == names


def test_change_is_points_for_percentages_and_a_ratio_otherwise() -> None:
    assert change("#%", 6.0, 6.6) == "+0.6 pt"
    assert change("# ms", 200.0, 100.0) == "x0.50"
    assert change("# ms", 0.0, 1.0) == "–"


def test_figure_rows_take_medians_and_keep_the_printed_precision() -> None:
    rows = figure_rows("g", ["0.52 ms", "0.40 ms", "0.45 ms"], ["0.39 ms", "0.39 ms", "0.39 ms"])
    assert rows == ["| g | `# ms` | 0.45 (0.40–0.52) | 0.39 | x0.87 |"]
    assert "differ in form" in figure_rows("g", ["1 ms"], ["1 ms, 2 s"])[0]
    assert "differ in form" in figure_rows("g", ["1 ms"], [])[0]


def test_render_puts_both_sides_next_to_each_other(tmp_path: Path) -> None:
    trees = (Tree("before", tmp_path / "b", "aaaa (base), worktree"), Tree("after", tmp_path, "bbbb, this tree"))
    before = results_file(("p99 < 100 ms", API, "no"), ("webhook p95 < 500 ms", "p95 9.1 ms", "yes"))
    after = results_file(("p99 < 100 ms", API.replace("927", "901"), "no"))
    runs = [
        Run("before", 0, 12.0, (0.5, 0.9), before),
        Run("after", 0, 11.0, (0.9, 1.0), after),
        Run("after", 1, 3.0, (1.0, 1.1), ""),  # a failed run counts in the tally, not in the figures
        Run("before", 0, 12.4, (1.1, 1.2), before.replace("927", "931")),
    ]
    text = render("api", trees, runs, "python -m bench.compare api --reps 2", datetime(2026, 1, 2, 3, 4, tzinfo=UTC))
    assert text.startswith("# compare: api\n\n`python -m bench.compare api --reps 2` — 2026-01-02 03:04 UTC")
    assert "- before: aaaa (base), worktree — 2 of 2 runs ok\n- after: bbbb, this tree — 1 of 2 runs ok" in text
    assert f"| p99 < 100 ms | no → no | {API.replace('927', '931')} | {API.replace('927', '901')} |" in text
    assert "| webhook p95 < 500 ms | yes → – | p95 9.1 ms | – |" in text
    assert "| p99 < 100 ms | `p99 # ms` | 929 (927–931) | 901 | x0.97 |" in text
    assert "| p99 < 100 ms | `# req/s` | 200 | 200 | x1.00 |" in text
    assert "| 3 | after | 1 | 3 | 1.00 → 1.10 |" in text


def test_render_falls_back_to_the_first_table_without_summary_lines(tmp_path: Path) -> None:
    trees = (Tree("before", tmp_path / "b", "aaaa, worktree"), Tree("after", tmp_path, "bbbb, this tree"))
    runs = [Run("before", 0, 1.0, (0.0, 0.0), "| x |\n|---|\n| 1 |\n"), Run("after", 2, 1.0, (0.0, 0.0), "")]
    text = render("detect", trees, runs, "python -m bench.compare detect", datetime(2026, 1, 2, tzinfo=UTC))
    assert "First table, before (no summary lines):\n\n| x |\n|---|\n| 1 |\n" in text
    assert "First table, after (no summary lines):\n\n\n## Runs" in text
