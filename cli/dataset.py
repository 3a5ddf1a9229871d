"""`safewatch dataset export --out DIR [--format yolo|coco] [--site S] [--camera C] [--rule R] [--status S]
[--since T] [--until T] [--val-fraction F] [--force] [--database URL] [--media-root DIR] [--models-dir DIR]`:
the raw snapshots of stored incidents with their stored detections as pre-labels (see `api/datasets/export.py`).

Prints what was exported and, by reason, how many matching incidents were skipped. Exit 0 (also when nothing
matched); 2 for a bad flag (the message names it), an output folder that is not empty (without --force) or a store
that cannot be read; 1 when the output cannot be written.
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import get_args

from api.datasets.export import FORMATS, ExportError, ExportOptions, ExportSummary, export_dataset
from api.datasets.samples import SkipReason
from api.routers.incidents import StatusFilter
from api.settings import Settings
from api.store.evidence import StoreUnavailable
from api.store.incidents import IncidentFilter
from cli.common import add_data_dir_flag, add_models_dir_flag, read_settings

PROG = "safewatch dataset export"
STATUSES: tuple[str, ...] = get_args(StatusFilter)
SKIPPED = {
    SkipReason.no_detections: "recorded before detections were stored with the evidence",
    SkipReason.no_boxes: "nothing detected on their snapshot (camera health, static-scene evidence)",
    SkipReason.evidence_missing: "evidence missing (no snapshot stored, or its files are gone)",
    SkipReason.evidence_invalid: "evidence unusable (detections unreadable, or the raw snapshot is not theirs)",
}


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("dataset", help="training datasets from stored incidents")
    sub = parser.add_subparsers(dest="dataset_command", metavar="ACTION", required=True)
    p = sub.add_parser(
        "export",
        help="raw snapshots of incidents with their detections as pre-labels (YOLO or COCO); false positives as "
        "hard negatives",
    )
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder (new or empty)")
    p.add_argument(
        "--format",
        choices=FORMATS,
        default="yolo",
        help="yolo: images/, labels/, data.yaml (default); coco: images/, annotations/instances_{train,val}.json",
    )
    p.add_argument("--site", default=None, help="only incidents of this site")
    p.add_argument("--camera", default=None, help="only incidents of this camera id")
    p.add_argument("--rule", default=None, help="only incidents of this rule type (e.g. intrusion)")
    p.add_argument("--status", choices=STATUSES, default=None, help="lifecycle (open|closed) or handling state")
    p.add_argument(
        "--since", type=_time, default=None, metavar="T", help="started at or after T (ISO 8601; naive = UTC)"
    )
    p.add_argument("--until", type=_time, default=None, metavar="T", help="started before T (ISO 8601)")
    p.add_argument(
        "--val-fraction",
        type=_fraction,
        default=0.2,
        metavar="F",
        help="share of incidents in the val split, chosen by a hash of the incident id (default 0.2: 80/20)",
    )
    p.add_argument("--force", action="store_true", help="replace a previous export in --out")
    p.add_argument(
        "--database",
        metavar="URL",
        default=None,
        help="store to read (default: SAFEWATCH_DATABASE_URL, else <data dir>/safewatch.db); opened read-only",
    )
    p.add_argument(
        "--media-root",
        type=Path,
        default=None,
        metavar="DIR",
        help="evidence folder (default: SAFEWATCH_MEDIA_ROOT, else <data dir>/media)",
    )
    add_data_dir_flag(p, "where the store and media are by default (default ./data)")
    add_models_dir_flag(p)
    p.set_defaults(func=_export)


def _time(value: str) -> datetime:
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not an ISO 8601 date-time: {value!r} (e.g. 2024-05-01T08:00+08:00)"
        ) from None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when


def _fraction(value: str) -> float:
    try:
        share = float(value)
    except ValueError:
        share = -1.0
    if not 0.0 <= share <= 1.0:
        raise argparse.ArgumentTypeError(f"must be a number from 0 to 1, got {value!r}")
    return share


def _export(args: argparse.Namespace) -> int:
    if args.since and args.until and args.since > args.until:
        print(f"{PROG}: --since must not be after --until", file=sys.stderr)
        return 2
    values = {"media_root": args.media_root} if args.media_root is not None else {}
    settings = read_settings(Settings, args, **values)
    f = IncidentFilter(
        camera=args.camera, site=args.site, rule=args.rule, status=args.status, since=args.since, until=args.until
    )
    options = ExportOptions(args.out, args.format, f, args.val_fraction, args.force)
    try:
        summary = export_dataset(
            options,
            database_url=args.database or settings.database_url,
            media_root=settings.media_dir,
            models_dir=settings.models_dir,
        )
    except ExportError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    except StoreUnavailable as exc:
        print(f"{PROG}: cannot read the store {exc} (pass --database URL)", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"{PROG}: cannot write {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    for line in report(summary):
        print(line)
    return 0


def report(summary: ExportSummary) -> list[str]:
    images = sum(summary.images.values())
    lines = [
        f"exported {images} images to {summary.out} ({summary.format}): {summary.images['train']} train, "
        f"{summary.images['val']} val; {summary.boxes} boxes; {summary.hard_negatives} hard negatives (false "
        f"positives, boxes in hard_negatives.json)",
        f"classes: {', '.join(summary.names) or 'none'}",
    ]
    if summary.unknown_labels:
        lines.append(f"labels no model card provides (appended): {', '.join(summary.unknown_labels)}")
    for reason, ids in summary.skipped.items():
        lines.append(f"skipped {len(ids)} incidents: {SKIPPED[reason]} (listed in export.json)")
    if not images and not summary.skipped:
        lines.append("no incident matched the filters")
    return lines
