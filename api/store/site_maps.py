"""Site maps (migration 0007): a plan image per site and where its cameras sit on it, plus the open incidents per
camera and severity that the map's markers show.

A map row exists once a site got markers or a plan; markers are replaced as a whole (the editor saves what it shows),
the plan separately (it is large and changes rarely). Coordinates are normalised to 0..1 of the plan, so a replaced
plan of another resolution keeps them. Validation (ranges, cameras of the site) is the router's job; this module only
stores what it is given.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from api.store.models import Incident, IncidentStatus, SiteMap, SiteMapMarker, utcnow


@dataclass(frozen=True, slots=True)
class Marker:
    camera_id: str
    x: float
    y: float


@dataclass(frozen=True, slots=True)
class PlanInfo:
    """What is known of a stored plan without its bytes."""

    sha256: str
    content_type: str
    width: int
    height: int


@dataclass(frozen=True, slots=True)
class StoredMap:
    site: str
    plan: PlanInfo | None
    markers: list[Marker]
    updated_at: datetime
    updated_by: str | None


@dataclass(frozen=True, slots=True)
class Plan:
    """A plan image as stored (already checked and re-encoded)."""

    data: bytes
    sha256: str
    content_type: str
    width: int
    height: int


def _plan_info(row: SiteMap) -> PlanInfo | None:
    if row.image_sha256 is None or row.content_type is None or row.width is None or row.height is None:
        return None
    return PlanInfo(row.image_sha256, row.content_type, row.width, row.height)


def get_map(session: Session, site: str) -> StoredMap | None:
    """The site's map (without the image bytes), or None when the site has none."""
    row = session.get(SiteMap, site)
    if row is None:
        return None
    markers = session.scalars(
        select(SiteMapMarker).where(SiteMapMarker.site == site).order_by(SiteMapMarker.camera_id)
    ).all()
    return StoredMap(
        site=row.site,
        plan=_plan_info(row),
        markers=[Marker(m.camera_id, m.x, m.y) for m in markers],
        updated_at=row.updated_at,
        updated_by=row.updated_by,
    )


def _row(session: Session, site: str, key_id: str | None) -> SiteMap:
    row = session.get(SiteMap, site)
    if row is None:
        row = SiteMap(site=site, updated_at=utcnow(), updated_by=key_id)
        session.add(row)
        session.flush()
    else:
        row.updated_at = utcnow()
        row.updated_by = key_id
    return row


def put_markers(session: Session, site: str, markers: Sequence[Marker], *, key_id: str | None) -> None:
    """Replace the site's markers (creating its map row when needed)."""
    _row(session, site, key_id)
    session.execute(delete(SiteMapMarker).where(SiteMapMarker.site == site))
    session.add_all(SiteMapMarker(site=site, camera_id=m.camera_id, x=m.x, y=m.y) for m in markers)


def put_plan(session: Session, site: str, plan: Plan, *, key_id: str | None) -> None:
    """Store (or replace) the site's plan image; its markers stay."""
    row = _row(session, site, key_id)
    row.image = plan.data
    row.image_sha256 = plan.sha256
    row.content_type = plan.content_type
    row.width = plan.width
    row.height = plan.height


def get_plan(session: Session, site: str) -> Plan | None:
    """The site's plan image with its bytes, or None."""
    row = session.get(SiteMap, site)
    info = None if row is None else _plan_info(row)
    if row is None or info is None or row.image is None:
        return None
    return Plan(row.image, info.sha256, info.content_type, info.width, info.height)


def map_sites(session: Session) -> list[str]:
    """Sites that have a map row."""
    return list(session.scalars(select(SiteMap.site).order_by(SiteMap.site)))


def open_by_severity(session: Session, site: str, cameras: Collection[str]) -> dict[str, dict[str, int]]:
    """camera id → severity → number of open incidents of that camera at `site` (cameras without any left out; a
    shadow run's incidents are not counted: they are a candidate model's, kept for comparison only)."""
    if not cameras:
        return {}
    query = (
        select(Incident.camera_id, Incident.severity, func.count())
        .where(
            Incident.status == IncidentStatus.open.value,
            Incident.site == site,
            Incident.camera_id.in_(sorted(cameras)),
            Incident.shadow.is_(False),
        )
        .group_by(Incident.camera_id, Incident.severity)
    )
    out: dict[str, dict[str, int]] = {}
    for camera, severity, count in session.execute(query):
        out.setdefault(camera, {})[severity] = int(count)
    return out


def offline_cameras(session: Session, site: str) -> set[str]:
    """Cameras of `site` with an open camera_offline incident (their health rule says no frames arrive)."""
    query = select(Incident.camera_id).where(
        Incident.status == IncidentStatus.open.value,
        Incident.site == site,
        Incident.rule == "camera_offline",
        Incident.shadow.is_(False),
    )
    return set(session.scalars(query))
