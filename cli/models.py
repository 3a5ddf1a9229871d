"""`safewatch models list|validate|build|import|quantize|push` — model cards and the ONNX files they describe (`push`:
cli/models_push.py, a new version to a running API)."""

from __future__ import annotations

import argparse
import json
import logging
import pathlib
import sys
from typing import Any

import numpy as np
import yaml

from cli.common import add_models_dir_flag, models_dir
from cli.models_push import add_push
from vision.detect.build import BuildResult, Sha256MismatchError, build_model
from vision.detect.card import ModelCard
from vision.detect.errors import DetectError, ModelError
from vision.detect.images import sample_frames
from vision.detect.registry import ModelRegistry

log = logging.getLogger(__name__)
REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]  # model recipes and the sample clip (a source checkout)
SAMPLE_CLIP = REPO_ROOT / "sample_media" / "vtest.mp4"


def _err(message: str) -> None:
    sys.stderr.write(message.rstrip() + "\n")


def cmd_list(args: argparse.Namespace) -> int:
    reg = ModelRegistry(models_dir(args))
    rows: list[dict[str, Any]] = []
    for name, card in sorted(reg.cards.items()):
        st = reg.status(name)
        sha = "-" if not st.built else {True: "ok", False: "MISMATCH", None: "unrecorded"}[st.sha256_ok]
        rows.append({"name": name, "format": card.format, "default": card.default, "labels": card.provides,
                     "built": st.built, "sha256": sha, "file": card.file, "variant_of": card.variant_of,
                     "precision": card.precision, "agreement": card.agreement})  # fmt: skip
    if args.json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
    else:
        header = f"{'NAME':<24} {'FORMAT':<13} {'DEFAULT':<8} {'BUILT':<6} {'SHA256':<10} LABELS"
        lines = [header] + [
            f"{r['name']:<24} {r['format']:<13} {'yes' if r['default'] else 'no':<8} "
            f"{'yes' if r['built'] else 'no':<6} {r['sha256']:<10} {', '.join(r['labels'])}"
            + (f" [{r['precision']} variant of {r['variant_of']}]" if r["variant_of"] else "")
            for r in rows
        ]
        sys.stdout.write("\n".join(lines) + "\n")
    for line in reg.errors:
        _err(f"invalid card: {line}")
    return 2 if reg.errors else 0


def cmd_validate(args: argparse.Namespace) -> int:
    reg = ModelRegistry(models_dir(args))
    errors = list(reg.errors)
    for name in sorted(reg.cards):
        if reg.is_built(name):
            try:
                reg.detector(name)
            except ModelError as exc:
                errors.append(f"{reg.models_dir / (name + '.yaml')}: file: {exc}")
    for line in errors:
        _err(line)
    if not errors:
        sys.stdout.write(f"{len(reg.cards)} model cards valid in {reg.models_dir}\n")
    return 2 if errors else 0


def _report_build(result: BuildResult) -> str:
    state = "cached" if result.skipped else "built"
    check = {True: "sha256 ok", False: "sha256 DIFFERS from the card", None: "sha256 not recorded in the card"}
    line = f"{result.name}: {state} {result.path} ({result.sha256[:12]}…, {check[result.matches_card]})"
    return f"{line}\n  {result.note}" if result.note else line


def cmd_build(args: argparse.Namespace) -> int:
    reg = ModelRegistry(models_dir(args))
    for line in reg.errors:
        _err(f"invalid card: {line}")
    names = args.names or sorted(n for n, c in reg.cards.items() if c.default)
    unknown = [n for n in names if n not in reg.cards]
    if unknown:
        _err(f"unknown model(s): {', '.join(unknown)} (known: {', '.join(sorted(reg.cards)) or 'none'})")
        return 2
    failed = 0
    for name in names:
        try:
            result = build_model(reg.card(name), reg.models_dir, repo_root=REPO_ROOT, cache_dir=REPO_ROOT / ".cache",
                                 force=args.force, allow_mismatch=args.allow_mismatch)  # fmt: skip
        except Sha256MismatchError as exc:
            _err(f"{name}: {exc}")  # one line: file, expected, got
            failed += 1
            continue
        except DetectError as exc:
            _err(f"{name}: build failed: {exc}")
            failed += 1
            continue
        sys.stdout.write(_report_build(result) + "\n")
    return 1 if failed else (2 if reg.errors else 0)


def _sample_frame() -> np.ndarray[Any, np.dtype[np.uint8]]:
    if SAMPLE_CLIP.is_file():
        return sample_frames(SAMPLE_CLIP, 1)[0]
    return np.full((480, 640, 3), 114, dtype=np.uint8)


def _read_labels(path: pathlib.Path) -> tuple[dict[str, str], list[str] | None]:
    """A labels file is `{class: label}` or `{labels: {class: label}, class_names: [...]}`."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: cannot read labels file: {exc}") from exc
    if isinstance(raw, dict) and "labels" in raw:
        labels, names = raw.get("labels"), raw.get("class_names")
    else:
        labels, names = raw, None
    if not isinstance(labels, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
        raise ValueError(f"{path}: labels: expected a mapping of class name to label")
    if names is not None and not (isinstance(names, list) and all(isinstance(n, str) for n in names)):
        raise ValueError(f"{path}: class_names: expected a list of strings")
    return labels, names


def cmd_import(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from vision.detect.importer import import_model

    try:
        labels, names = _read_labels(args.labels) if args.labels else (None, None)
    except ValueError as exc:
        _err(str(exc))
        return 2
    try:
        card = import_model(args.file, args.name, models_dir(args), _sample_frame(), labels=labels, class_names=names,
                            force=args.force)  # fmt: skip
    except (DetectError, ValidationError) as exc:
        _err(f"{args.file}: import failed: {exc}")
        return 2
    sys.stdout.write(f"imported {args.file} as {card.name} ({card.format}, labels: {', '.join(card.provides)})\n")
    return 0


def cmd_quantize(args: argparse.Namespace) -> int:
    from vision.detect.quantize import quantize_model

    reg = ModelRegistry(models_dir(args))
    try:
        card: ModelCard = reg.card(args.name)
        frames = sample_frames(args.clip, args.calibration + args.evaluation, step=7)
        report = quantize_model(card, reg.models_dir, frames[: args.calibration], frames[args.calibration :])
    except DetectError as exc:
        _err(f"{args.name}: quantize failed: {exc}")
        return 2
    a = report.agreement
    sys.stdout.write(
        f"wrote {reg.models_dir / report.card.file} and {report.card.name}.yaml\n"
        f"agreement vs fp32: {a.matched}/{max(a.reference_boxes, a.other_boxes)} boxes matched at IoU 0.5 "
        f"({a.matched_rate:.1%}), mean |confidence delta| {a.mean_confidence_delta:.3f}\n"
        f"median latency: fp32 {report.fp32_ms:.1f} ms, int8 {report.int8_ms:.1f} ms "
        f"(x{report.fp32_ms / report.int8_ms:.2f})\n"
    )
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("models", help="model cards: list, validate, build, import, quantize, push")
    add_models_dir_flag(parser)
    sub = parser.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    p = sub.add_parser("list", help="cards, labels provided, built?, sha256 ok?")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_list)
    p = sub.add_parser("validate", help="validate every card (exit 2 with FILE: field: message lines)")
    p.set_defaults(func=cmd_validate)
    p = sub.add_parser("build", help="build models from their recipes (default models when no NAME)")
    p.add_argument("names", nargs="*", metavar="NAME")
    p.add_argument("--force", action="store_true", help="rebuild even when the file has the card's sha256")
    p.add_argument("--allow-mismatch", action="store_true",
                   help="keep a build whose sha256 differs from the card's (an error otherwise)")  # fmt: skip
    p.set_defaults(func=cmd_build)
    p = sub.add_parser("import", help="validate a YOLO ONNX, copy it into the models dir and write its card")
    p.add_argument("file", type=pathlib.Path, metavar="FILE.onnx")
    p.add_argument("--name", required=True, help="model name ([a-z0-9][a-z0-9_-]*)")
    p.add_argument("--labels", type=pathlib.Path, help="YAML {class: label} (or {labels: ..., class_names: [...]})")
    p.add_argument("--force", action="store_true", help="replace an existing model of that name")
    p.set_defaults(func=cmd_import)
    p = sub.add_parser("quantize", help="static int8 QDQ copy calibrated on the sample clip, with agreement")
    p.add_argument("name", metavar="NAME")
    p.add_argument("--clip", type=pathlib.Path, default=SAMPLE_CLIP, help="calibration video")
    p.add_argument("--calibration", type=int, default=32, help="calibration frames")
    p.add_argument("--evaluation", type=int, default=16, help="frames for agreement and latency")
    p.set_defaults(func=cmd_quantize)
    add_push(sub)
