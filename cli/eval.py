"""`safewatch eval` — how good is a model (COCO metrics on labelled images, a sanity check on a clip) or a whole camera
pipeline (incidents against hand-labelled episodes).

    safewatch eval MODEL --annotations COCO.json --images DIR [--conf 0.001] [--json]
    safewatch eval MODEL --clip VIDEO [--frames 20] [--step K] [--reference MODEL|--no-reference] [--conf C] [--json]
    safewatch eval --episodes FILE... [--tolerance 2] [--set PARAM=V]... [--sweep PARAM=V1,V2,...] [--conf C]
                   [--report DIR] [--json]
    safewatch eval --shadow CAMERA --since T [--until T] [--candidate MODEL] [--tolerance 2] [--database URL] [--json]

With `--episodes`, each episodes file (pipelines/evaluation/episodes.py) names a clip and a camera config; the clip
is replayed through that camera's pipeline (as `safewatch replay`) and the incidents are matched to the episodes
(pipelines/evaluation/metrics.py); `--set`/`--sweep` address camera-config parameters as described in
pipelines/evaluation/run.py (`rules.intrusion.min_seconds`, `conf`); `--conf C` is `--set conf=C`. A bad episodes
file, camera or parameter exits 2 naming the file and line.

With `--shadow CAMERA`, the camera's production incidents are compared with its shadow runs' (`shadow_models`) in
the store: both raised, only one raised, and the candidate's wins and losses by production's handling
(cli/eval_shadow.py).

With `--annotations`, ground-truth categories are matched by name to the model card's labels (see
vision/detect/coco_eval.py); unmatched categories are listed. The default `--conf` there is 0.001, as COCO mAP is
measured over the whole precision/recall curve. With `--clip`, the card's threshold applies unless `--conf` is given,
and the reference model defaults to the registry's default person model (when MODEL is not that model).
Bad input (unknown model, missing file, bad JSON, a listed image not found) exits 2 with a message naming it.
The evaluations are `vision.detect.coco_eval.evaluate_coco_files` and `vision.detect.evaluate.evaluate_clip_file`;
this command checks the flags and prints their reports.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import sys
from typing import Any

from cli.common import add_models_dir_flag, add_precision_flag, model_registry
from cli.eval_shadow import add_arguments as add_shadow_arguments
from cli.eval_shadow import cmd_eval_shadow
from pipelines.camera.assemble import PipelineConfigError
from pipelines.config.yaml_io import ConfigError
from pipelines.evaluation import report
from pipelines.evaluation.episodes import EpisodeSet, load_episodes
from pipelines.evaluation.run import (
    EvaluationError,
    Override,
    ReplayCache,
    check_overrides,
    evaluate,
    parse_sweep,
    sweep,
)
from vision.detect.coco_eval import CocoReport, evaluate_coco_files
from vision.detect.errors import DetectError
from vision.detect.evaluate import ClipReport, evaluate_clip_file
from vision.detect.registry import ModelRegistry


def _err(message: str) -> int:
    sys.stderr.write(message.rstrip() + "\n")
    return 2


def _fmt(value: float | None, spec: str = ".3f") -> str:
    return "-" if value is None else format(value, spec)


def _coco_text(r: CocoReport) -> str:
    lines = [
        f"model {r.model}: {r.images} images, confidence >= {r.confidence}",
        f"mAP@[.5:.95] {_fmt(r.map)}   mAP@.5 {_fmt(r.map50)}",
        "",
        f"{'LABEL':<14} {'CATEGORIES':<24} {'GT':>5} {'DETS':>6} {'AP':>6} {'AP50':>6} {'R@.5':>6}",
    ]
    for m in r.labels:
        lines.append(
            f"{m.label:<14} {', '.join(m.categories):<24} {m.gt_boxes:>5} {m.detections:>6} "
            f"{_fmt(m.ap):>6} {_fmt(m.ap50):>6} {_fmt(m.recall50):>6}"
        )
    if r.unmatched_categories:
        names = ", ".join(f"{c['name']} ({c['annotations']} boxes)" for c in r.unmatched_categories)
        lines.append(f"\nunmatched categories (not scored): {names}")
    if r.unscored_labels:
        lines.append(f"model labels without a category (detections ignored): {', '.join(r.unscored_labels)}")
    return "\n".join(lines)


def _clip_text(r: ClipReport, clip: pathlib.Path) -> str:
    lat = r.latency
    lines = [
        f"model {r.model} on {clip}: {len(r.frames)} frames ({r.frames[0]}..{r.frames[-1]})",
        f"latency per frame: median {lat.median_ms:.1f} ms, p95 {lat.p95_ms:.1f} ms",
        "",
        f"{'LABEL':<14} {'TOTAL':>6} {'MEAN/FRAME':>11} {'MIN':>4} {'MAX':>4} {'FRAMES WITH':>12}",
    ]
    lines += [
        f"{c.label:<14} {c.total:>6} {c.mean_per_frame:>11.2f} {c.min_per_frame:>4} {c.max_per_frame:>4} "
        f"{c.frames_with:>12}"
        for c in r.labels
    ]
    if r.reference is not None and r.reference_latency is not None:
        ref = r.reference_latency
        lines += [
            "",
            f"reference {r.reference}: latency median {ref.median_ms:.1f} ms, p95 {ref.p95_ms:.1f} ms",
            f"{'LABEL':<14} {'REF BOXES':>10} {'BOXES':>6} {'MATCHED':>8} {'RATE':>6} {'MEAN |dCONF|':>13}",
        ]
        lines += [
            f"{a.label:<14} {a.reference_boxes:>10} {a.other_boxes:>6} {a.matched:>8} {_fmt(a.matched_rate, '.1%'):>6} "
            f"{a.mean_confidence_delta:>13.3f}"
            for a in r.agreement
        ]
        if not r.agreement:
            lines.append("(no label shared with the reference model)")
    return "\n".join(lines)


def _run_coco(args: argparse.Namespace, reg: ModelRegistry) -> dict[str, Any]:
    if args.images is None:
        raise DetectError("--annotations needs --images DIR (the directory the file_name entries are relative to)")
    report = evaluate_coco_files(reg, args.model, args.annotations, args.images, confidence=args.conf)
    return {"text": _coco_text(report), "json": dataclasses.asdict(report)}


def _run_clip(args: argparse.Namespace, reg: ModelRegistry) -> dict[str, Any]:
    result = evaluate_clip_file(
        reg, args.model, args.clip, frames=args.frames, step=args.step, reference=args.reference,
        compare=not args.no_reference, confidence=args.conf,
    )  # fmt: skip
    note = result.note
    text = _clip_text(result.report, args.clip) + (f"\n\n{note}" if note else "")
    return {"text": text, "json": {"clip": str(args.clip), **dataclasses.asdict(result.report), "note": note}}


def _overrides(args: argparse.Namespace) -> list[Override]:
    out = [parse_sweep(text) for text in args.set]
    for param, values in out:
        if len(values) != 1:
            raise EvaluationError(f"--set {param}: one value expected (use --sweep for several)")
    return [(p, v[0]) for p, v in out] + ([("conf", args.conf)] if args.conf is not None else [])


def _progress(es: EpisodeSet) -> None:
    sys.stderr.write(f"replaying {es.clip.name} with camera {es.camera.id} ({es.file.name})\n")


def cmd_eval_episodes(args: argparse.Namespace) -> int:
    if args.model is not None or args.annotations is not None or args.clip is not None:
        return _err("safewatch eval: --episodes takes no MODEL, --annotations or --clip")
    if args.tolerance < 0:
        return _err(f"safewatch eval: --tolerance must be >= 0, got {args.tolerance}")
    try:
        sets = [load_episodes(path) for path in args.episodes]
        fixed = _overrides(args)
        swept = parse_sweep(args.sweep) if args.sweep else None
        variants = [fixed] + ([[*fixed, (swept[0], v)] for v in swept[1]] if swept is not None else [])
        check_overrides(sets, variants)
        reg = model_registry(args)
        cache: ReplayCache = {}
        ev = evaluate(sets, reg, tolerance=args.tolerance, overrides=fixed, threads=args.threads, cache=cache,
                      on_clip=_progress)  # fmt: skip
        runs = None
        if swept is not None:
            runs = sweep(sets, reg, swept[0], swept[1], overrides=fixed, tolerance=args.tolerance,
                         threads=args.threads, cache=cache, on_clip=_progress)  # fmt: skip
    except ConfigError as exc:
        return _err("\n".join(str(p) for p in exc.problems))
    except (EvaluationError, PipelineConfigError, DetectError) as exc:
        return _err(f"safewatch eval: {exc}")
    if args.report is not None:
        path = report.write_html(args.report, ev, (swept[0], runs) if swept is not None and runs else None)
        sys.stderr.write(f"report: {path}\n")
    if args.json:
        out = report.as_json(ev) | ({"sweep": report.sweep_json(swept[0], runs)} if swept and runs else {})
        sys.stdout.write(json.dumps(out, indent=2) + "\n")
    else:
        text = report.text(ev) + (f"\n\n{report.sweep_text(swept[0], runs)}" if swept and runs else "")
        sys.stdout.write(text + "\n")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    if args.shadow:
        return cmd_eval_shadow(args)
    if args.episodes:
        return cmd_eval_episodes(args)
    if args.model is None:
        return _err("safewatch eval: give MODEL (with --annotations or --clip), or --episodes FILE...")
    if (args.annotations is None) == (args.clip is None):
        return _err("safewatch eval: give exactly one of --annotations COCO.json (with --images DIR) or --clip VIDEO")
    if args.clip is not None and (args.frames < 1 or (args.step is not None and args.step < 1)):
        return _err("safewatch eval: --frames and --step must be >= 1")
    if args.conf is not None and not 0.0 <= args.conf <= 1.0:
        return _err(f"safewatch eval: --conf must be within [0, 1], got {args.conf}")
    reg = model_registry(args)
    try:
        out = _run_coco(args, reg) if args.annotations is not None else _run_clip(args, reg)
    except DetectError as exc:
        return _err(str(exc))
    sys.stdout.write((json.dumps(out["json"], indent=2) if args.json else out["text"]) + "\n")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser(
        "eval", help="evaluate a model (COCO metrics, clip sanity check) or a camera's incidents against episodes"
    )
    p.add_argument("model", metavar="MODEL", nargs="?", help="model name in the models directory")
    add_models_dir_flag(p)
    add_precision_flag(p)
    p.add_argument("--conf", type=float, help="confidence threshold (0.001 with --annotations, else the card's)")
    p.add_argument("--json", action="store_true", help="machine-readable report")
    g = p.add_argument_group("labelled images (COCO detection format)")
    g.add_argument("--annotations", type=pathlib.Path, metavar="COCO.json")
    g.add_argument("--images", type=pathlib.Path, metavar="DIR", help="directory the images' file_name are relative to")
    g = p.add_argument_group("unlabelled footage")
    g.add_argument("--clip", type=pathlib.Path, metavar="VIDEO")
    g.add_argument("--frames", type=int, default=20, help="frames to sample (default 20)")
    g.add_argument("--step", type=int, help="take every STEP-th frame (default: spread over the whole clip)")
    g.add_argument("--reference", metavar="MODEL", help="compare with this model (default: the default person model)")
    g.add_argument("--no-reference", action="store_true", help="skip the comparison")
    g = p.add_argument_group("incidents against hand-labelled episodes (event-level)")
    g.add_argument("--episodes", type=pathlib.Path, nargs="+", metavar="FILE", help="episodes files (aggregated)")
    g.add_argument("--tolerance", type=float, default=2.0, help="seconds an incident may open before an episode")
    g.add_argument("--set", action="append", default=[], metavar="PARAM=V", help="override a camera parameter")
    g.add_argument("--sweep", metavar="PARAM=V1,V2", help="re-run once per value; precision/recall per value")
    g.add_argument("--report", type=pathlib.Path, metavar="DIR", help="write DIR/index.html (table, timelines)")
    g.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads per replay (0: its default)")
    add_shadow_arguments(p)
    p.set_defaults(func=cmd_eval)
