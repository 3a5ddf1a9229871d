"""`safewatch detect IMAGE... [--model NAME] [--conf C] [--json] [--annotate DIR]` — detections per image.

Every image is processed even when others fail; failures are reported per file and make the exit status 1.
`--camera FILE.yaml` applies the camera's zones and rules to each image alone (single-frame semantics, as
`POST /v1/detect`): the entries get `violations`. The per-image work is `pipelines.camera.single_frame.detect_files`;
this command loads the models, draws the annotated copies and prints.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
from typing import Any

import cv2

from cli.common import add_models_dir_flag, add_precision_flag, model_registry
from pipelines.camera.assemble import PipelineConfigError
from pipelines.camera.single_frame import detect_files, load_detectors
from pipelines.config.camera import CameraConfig, ConfigError, load_camera_config
from vision.detect.detector import Detector
from vision.detect.errors import DetectError
from vision.media.annotate import draw_detections

Entry = dict[str, Any]


def _results(
    detectors: list[Detector],
    paths: list[pathlib.Path],
    conf: float | None,
    out_dir: pathlib.Path | None,
    camera: CameraConfig | None = None,
) -> list[Entry]:
    results: list[Entry] = []
    for result in detect_files(paths, detectors, conf, camera):
        entry = result.as_json()
        if out_dir is not None and result.image is not None:
            target = out_dir / f"{result.path.stem}.jpg"
            drawn = cv2.cvtColor(draw_detections(result.image, result.detections), cv2.COLOR_RGB2BGR)
            if not cv2.imwrite(str(target), drawn):
                entry["error"] = f"{target}: cannot write annotated image"
        results.append(entry)
    return results


def _table(results: list[Entry]) -> str:
    lines = []
    for entry in results:
        if "error" in entry and not entry["detections"]:
            lines.append(f"{entry['image']}: ERROR {entry['error']}")
            continue
        lines.append(f"{entry['image']}: {len(entry['detections'])} detections")
        for d in entry["detections"]:
            box = ", ".join(f"{v:.0f}" for v in d["box"])
            lines.append(f"  {d['label'] or '-':<12} {d['class_name']:<16} {d['confidence']:.2f}  [{box}]")
        if "error" in entry:
            lines.append(f"  ERROR {entry['error']}")
    return "\n".join(lines)


def cmd_detect(args: argparse.Namespace) -> int:
    reg = model_registry(args)
    camera = None
    try:
        if args.camera is not None:
            camera = load_camera_config(args.camera, check_files=False)
        detectors = load_detectors(reg, camera, args.model, keep_unmapped=args.all_classes)
    except ConfigError as exc:
        sys.stderr.write("".join(f"{p}\n" for p in exc.problems))
        return 2
    except (DetectError, PipelineConfigError) as exc:
        sys.stderr.write(f"{exc}\n")
        return 2
    if args.annotate is not None:
        args.annotate.mkdir(parents=True, exist_ok=True)
    results = _results(detectors, args.images, args.conf, args.annotate, camera)
    if args.json:
        sys.stdout.write(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(_table(results) + "\n")
    return 1 if any("error" in r for r in results) else 0


def _confidence(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be within [0, 1], got {text}")
    return value


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("detect", help="run a detector on images")
    p.add_argument("images", nargs="+", type=pathlib.Path, metavar="IMAGE")
    p.add_argument("--model", help="model name (default: the default model providing 'person')")
    p.add_argument("--conf", type=_confidence, help="confidence threshold (default: the model card's)")
    p.add_argument("--json", action="store_true", help="JSON list, one object per image")
    p.add_argument("--annotate", type=pathlib.Path, metavar="DIR", help="write images with boxes drawn into DIR")
    p.add_argument("--all-classes", action="store_true", help="also show classes without a semantic label")
    p.add_argument(
        "--camera", type=pathlib.Path, metavar="FILE.yaml", help="apply this camera's zones and rules (violations)"
    )
    add_models_dir_flag(p)
    add_precision_flag(p)
    p.set_defaults(func=cmd_detect)
