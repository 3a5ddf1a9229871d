"""`safewatch report --site S --date YYYY-MM-DD --out FILE.html [--lang zh-CN|en] [--database URL] [--media-root DIR]
[--config-dir DIR] [--data-dir DIR]`: a site's daily report as one self-contained HTML file (`api/reports/`), the
same page `GET /v1/reports/daily` serves.

The store is opened read-only (as `safewatch dataset export` and `safewatch evidence verify --database` do); the
site's time zone and camera names come from the camera configs. Exit 0 when written; 2 for a bad flag (the message
names it), an unknown site or a store that cannot be read; 1 when the file cannot be written.
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

from sqlalchemy.orm import Session

from api.camera_store import CameraStore
from api.reports.daily import parse_day
from api.reports.i18n import LANGUAGES
from api.reports.page import UnknownSite, daily_page
from api.settings import Settings
from api.store.evidence import StoreUnavailable, read_only_connection
from cli.common import add_data_dir_flag, read_settings

PROG = "safewatch report"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("report", help="a site's daily report as one printable HTML file")
    p.add_argument("--site", required=True, type=_site, help="the site")
    p.add_argument("--date", required=True, type=_day, metavar="YYYY-MM-DD", help="the site's local day")
    p.add_argument("--out", required=True, type=Path, metavar="FILE.html", help="where to write the report")
    p.add_argument("--lang", choices=LANGUAGES, default="zh-CN", help="zh-CN (default) or en")
    p.add_argument(
        "--database",
        metavar="URL",
        default=None,
        help="store to read (default: SAFEWATCH_DATABASE_URL, else <data dir>/safewatch.db); opened read-only",
    )
    p.add_argument(
        "--media-root", type=Path, default=None, metavar="DIR", help="evidence folder (default: <data dir>/media)"
    )
    p.add_argument("--config-dir", type=Path, default=None, help="camera configs: time zone, names (camera_configs)")
    add_data_dir_flag(p, "where the store and media are by default (default ./data)")
    p.set_defaults(func=_report)


def _site(value: str) -> str:
    if not 1 <= len(value) <= 128:
        raise argparse.ArgumentTypeError("must be 1 to 128 characters")
    return value


def _day(value: str) -> date:
    try:
        return parse_day(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _report(args: argparse.Namespace) -> int:
    values = {"media_root": args.media_root} if args.media_root is not None else {}
    settings = read_settings(Settings, args, **values)
    cameras = [c.config for c in CameraStore(settings.config_dir).scan()[0]]
    try:
        with read_only_connection(args.database or settings.database_url) as conn, Session(bind=conn) as session:
            html = daily_page(session, args.site, args.date, cameras, settings.media_dir, args.lang)
    except StoreUnavailable as exc:
        print(f"{PROG}: cannot read the store {exc} (pass --database URL)", file=sys.stderr)
        return 2
    except UnknownSite as exc:
        print(f"{PROG}: --site: {exc}", file=sys.stderr)
        return 2
    try:
        args.out.write_text(html, encoding="utf-8")
    except OSError as exc:
        print(f"{PROG}: cannot write {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    print(f"wrote the report of site {args.site} on {args.date.isoformat()} to {args.out}")
    return 0
