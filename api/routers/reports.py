"""`GET /v1/reports/daily?site=S&date=YYYY-MM-DD[&lang=en]`: a site's day as one printable HTML page
(`api/reports/`): charts, numbers and the incidents with thumbnails.

A viewer key for the site (another site's report is 404, as an unknown site is), or a signed link for that one site
and day (`&exp=…&sig=…`, `api/reports/links.py`, what the daily digest pushes; 403 when tampered with, for another
site or day, or expired). A key, when one is sent, decides alone, as on the media routes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Security, status
from fastapi.responses import HTMLResponse
from fastapi.security import HTTPAuthorizationCredentials

from api.auth import Principal, Role, api_key_header, bearer, require
from api.deps import CamerasDep, SettingsDep, StoreDep
from api.jsontypes import Responses
from api.media_links import MAX_SIG_CHARS, LinkRefused, link_signer
from api.reports.daily import parse_day
from api.reports.i18n import Language
from api.reports.links import check_report_link
from api.reports.page import UnknownSite, daily_page

router = APIRouter(prefix="/v1/reports", tags=["reports"])

HEADERS = {
    "Content-Security-Policy": "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "private, no-store",
    "X-Content-Type-Options": "nosniff",
}
_PROBLEM = {"application/json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
RESPONSES: Responses = {
    200: {"content": {"text/html": {}}, "description": "The report page (self-contained: inline CSS, SVG, images)"},
    403: {"content": _PROBLEM, "description": "Signed link tampered with, for another site or day, or expired"},
    404: {"content": _PROBLEM, "description": "Unknown site, or a site outside the key's scope"},
    422: {"description": "Bad site, date or language (`detail` says why)"},
}


@dataclass(frozen=True, slots=True)
class ReportAccess:
    """Who opens which report: the key's principal (or the signed link's), the site and its local day."""

    principal: Principal
    site: str
    day: date


def report_access(
    request: Request,
    x_api_key: Annotated[str | None, Security(api_key_header)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
    site: Annotated[str, Query(min_length=1, max_length=128, description="The site")],
    date_: Annotated[str, Query(alias="date", description="The site's local day, YYYY-MM-DD")],
    exp: Annotated[int | None, Query(description="Signed link: expiry (unix seconds)")] = None,
    sig: Annotated[str | None, Query(max_length=MAX_SIG_CHARS, description="Signed link: signature")] = None,
) -> ReportAccess:
    """A viewer key for the site, or a signed link for this very site and day (403 when tampered with, for another
    site or day, or expired); a key, when one is sent, decides alone. A bad date is 422 before anything else."""
    try:
        day = parse_day(date_)
    except ValueError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    if x_api_key or credentials or (exp is None and sig is None):
        return ReportAccess(require(Role.viewer)(request, x_api_key, credentials), site, day)
    try:
        check_report_link(link_signer(request.app.state.ctx.settings), site, day, exp, sig)
    except LinkRefused as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from exc
    principal = Principal(key_id="", name="signed report link", role=Role.viewer, sites=frozenset({site}))
    return ReportAccess(principal, site, day)


@router.get("/daily", response_class=HTMLResponse, responses=RESPONSES, summary="Daily report of a site (HTML)")
def daily(
    store: StoreDep,
    settings: SettingsDep,
    cameras: CamerasDep,
    access: Annotated[ReportAccess, Depends(report_access)],
    lang: Annotated[Language, Query(description="zh-CN (default) or en")] = "zh-CN",
) -> HTMLResponse:
    """The day is the site's local day (its cameras' `schedule.timezone`, else UTC; the page says which)."""
    site = access.site
    if not access.principal.sees(site):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"site {site!r} not found")
    configs = [c.config for c in cameras.scan()[0]]
    try:
        with store.read() as session:
            html = daily_page(session, site, access.day, configs, settings.media_dir, lang)
    except UnknownSite as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from None
    return HTMLResponse(html, headers=HEADERS)
