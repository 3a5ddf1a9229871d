"""One call from a store session to the report page, shared by `GET /v1/reports/daily` and `safewatch report`, so
both produce the same bytes for the same store, cameras and media."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path

from sqlalchemy.orm import Session

from api.reports.daily import DailyReport, build_daily, site_known, site_zone
from api.reports.i18n import Language
from api.reports.render import render_daily
from api.reports.thumbs import thumbnail
from pipelines.config.camera import CameraConfig


class UnknownSite(LookupError):
    """No camera config names the site and the store holds no incident of it."""


def site_report(session: Session, site: str, day: date, cameras: Sequence[CameraConfig]) -> DailyReport:
    """The numbers of `site` on `day` in the site's zone; `UnknownSite` for a site nobody knows."""
    if not any(c.site == site for c in cameras) and not site_known(session, site):
        raise UnknownSite(f"site {site!r} not found: no camera config names it and no incident of it is stored")
    names = {c.id: c.name for c in cameras if c.site == site}
    return build_daily(session, site, day, site_zone(cameras, site), names)


def daily_page(
    session: Session, site: str, day: date, cameras: Sequence[CameraConfig], media_root: Path, lang: Language
) -> str:
    """The report page (HTML) of `site` on `day`; thumbnails from the annotated snapshots under `media_root`."""
    report = site_report(session, site, day, cameras)
    return render_daily(report, lang, lambda i: thumbnail(media_root, i.snapshot_path))
