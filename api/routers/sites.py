"""Sites and their maps (安全风险"一张图", issue 15 part 4): a plan image per site with its cameras placed on it, each
camera's state and open incidents by severity.

Sites are known from the camera configs (and from stored maps whose cameras are gone). A site-scoped key sees and
writes only its sites: another site is 404, as one that does not exist. Viewers read; operators place cameras and
upload the plan. The plan is an uploaded PNG/JPEG, decoded under the limits of `POST /v1/detect` and re-encoded
(`api.site_plans`), or with `?from_camera=ID` that camera's current picture (as `GET /v1/cameras/{id}/frame.jpg`).

A camera's `state` on the map is `streaming` when a worker runs it (as `GET /v1/workers` lists it) and no
camera_offline incident of it is open, `offline` otherwise; `unknown` when the worker status cannot be read
(distributed mode with Redis down).
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from datetime import datetime
from typing import Annotated, Literal
from urllib.parse import quote

import numpy as np
import numpy.typing as npt
import redis
from fastapi import APIRouter, HTTPException, Query, Request, Response, status
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, ConfigDict, Field

from api.context import AppContext
from api.deps import CtxDep, OperatorKey, Principal, ViewerKey
from api.jsontypes import Responses
from api.routers.cameras import CameraId, load_camera_for
from api.routers.frames import first_frame
from api.schemas import Problem, ValidationProblems
from api.site_plans import MAX_BYTES, PlanRefused, plan_from_frame, plan_from_upload
from api.store import site_maps
from api.store.site_maps import Marker, Plan, StoredMap
from api.uploads import UploadError, read_upload
from pipelines.config.camera import CameraConfig, is_url

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/sites", tags=["sites"])

SiteName = Annotated[str, PathParam(min_length=1, max_length=128, description="Site name (a camera config's `site`)")]
CameraState = Literal["streaming", "offline", "unknown"]
NOT_FOUND: Responses = {404: {"model": Problem, "description": "Unknown site, or a site outside the key's sites"}}
MAX_MARKERS = 1000


class MarkerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    camera_id: str = Field(pattern=r"^[a-z0-9_-]+$", min_length=1, max_length=64, description="A camera of the site")
    x: float = Field(ge=0.0, le=1.0, allow_inf_nan=False, description="0 = the plan's left edge, 1 = its right edge")
    y: float = Field(ge=0.0, le=1.0, allow_inf_nan=False, description="0 = the plan's top edge, 1 = its bottom edge")


class MarkersIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    markers: list[MarkerIn] = Field(max_length=MAX_MARKERS, description="Every placed camera (replaces the stored)")


class MarkerOut(BaseModel):
    camera_id: str
    x: float
    y: float


class PlanOut(BaseModel):
    url: str = Field(description="The image (viewer key); changes with the image")
    sha256: str
    content_type: str
    width: int
    height: int


class CameraOnMap(BaseModel):
    id: str
    name: str | None
    state: CameraState = Field(description="streaming | offline | unknown (worker status unreadable)")
    open: dict[str, int] = Field(description="Open incidents by severity (critical, warning, info)")
    timezone: str | None = Field(description="The camera's schedule time zone (IANA), if it has one")


class SiteMapOut(BaseModel):
    site: str
    plan: PlanOut | None = Field(description="Null until a plan is uploaded")
    markers: list[MarkerOut]
    cameras: list[CameraOnMap] = Field(description="Every camera of the site, placed or not")
    updated_at: datetime | None
    updated_by: str | None = Field(description="Id of the key that last changed the map")


class SiteOut(BaseModel):
    site: str
    cameras: int
    has_plan: bool
    markers: int
    open_incidents: int


def _not_found(site: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"site {site!r} not found")


def _site_cameras(ctx: AppContext, site: str) -> list[CameraConfig]:
    stored, _problems = ctx.cameras.scan()
    return sorted((s.config for s in stored if s.config.site == site), key=lambda c: c.id)


def _check_site(ctx: AppContext, site: str, key: Principal) -> list[CameraConfig]:
    """The site's cameras; 404 for a site outside the key's scope or one with neither cameras nor a map."""
    if not key.sees(site):
        raise _not_found(site)
    cameras = _site_cameras(ctx, site)
    if not cameras:
        with ctx.store.read() as session:
            if site_maps.get_map(session, site) is None:
                raise _not_found(site)
    return cameras


def _running(ctx: AppContext) -> set[str] | None:
    """Cameras a worker runs (None: unknown, Redis unreachable)."""
    try:
        return {camera for worker in ctx.workers() for camera in worker.cameras}
    except redis.RedisError as exc:
        log.warning("site map: worker heartbeats unavailable: %s", exc)
        return None


def _map_out(ctx: AppContext, site: str, cameras: list[CameraConfig]) -> SiteMapOut:
    ids = [c.id for c in cameras]
    running = _running(ctx)
    with ctx.store.read() as session:
        stored = site_maps.get_map(session, site)
        counts = site_maps.open_by_severity(session, site, ids)
        offline = site_maps.offline_cameras(session, site)

    def state(camera: str) -> CameraState:
        if running is None:
            return "unknown"
        return "streaming" if camera in running and camera not in offline else "offline"

    out = SiteMapOut(
        site=site,
        plan=None,
        markers=[],
        cameras=[
            CameraOnMap(
                id=c.id,
                name=c.name,
                state=state(c.id),
                open=counts.get(c.id, {}),
                timezone=c.schedule.timezone if c.schedule is not None else None,
            )
            for c in cameras
        ],
        updated_at=None,
        updated_by=None,
    )
    return out if stored is None else _with_stored(out, stored, set(ids))


def _with_stored(out: SiteMapOut, stored: StoredMap, cameras: set[str]) -> SiteMapOut:
    """`out` with the stored plan and the markers of the site's current cameras (a removed camera's, or one moved to
    another site, is left out: the next save drops it)."""
    plan = stored.plan
    return out.model_copy(
        update={
            "plan": None
            if plan is None
            else PlanOut(
                url=f"/v1/sites/{quote(out.site, safe='')}/map/image?v={plan.sha256[:16]}",
                sha256=plan.sha256,
                content_type=plan.content_type,
                width=plan.width,
                height=plan.height,
            ),
            "markers": [
                MarkerOut(camera_id=m.camera_id, x=m.x, y=m.y) for m in stored.markers if m.camera_id in cameras
            ],
            "updated_at": stored.updated_at,
            "updated_by": stored.updated_by,
        }
    )


@router.get("", response_model=list[SiteOut])
def list_sites(key: ViewerKey, ctx: CtxDep) -> list[SiteOut]:
    """The sites of the key's scope: those of the camera configs, and those with a stored map."""
    stored, _problems = ctx.cameras.scan()
    per_site = Counter(s.config.site for s in stored if key.sees(s.config.site))
    out: list[SiteOut] = []
    with ctx.store.read() as session:
        sites = sorted(set(per_site) | {s for s in site_maps.map_sites(session) if key.sees(s)})
        for site in sites:
            found = site_maps.get_map(session, site)
            cameras = [s.config.id for s in stored if s.config.site == site]
            counts = site_maps.open_by_severity(session, site, cameras)
            out.append(
                SiteOut(
                    site=site,
                    cameras=per_site.get(site, 0),
                    has_plan=found is not None and found.plan is not None,
                    markers=0 if found is None else sum(m.camera_id in cameras for m in found.markers),
                    open_incidents=sum(n for c in counts.values() for n in c.values()),
                )
            )
    return out


@router.get("/{site}/map", response_model=SiteMapOut, responses=NOT_FOUND)
def get_site_map(site: SiteName, key: ViewerKey, ctx: CtxDep) -> SiteMapOut:
    """The site's plan, markers, and every camera of the site with its state and open incidents by severity."""
    return _map_out(ctx, site, _check_site(ctx, site, key))


@router.put(
    "/{site}/map",
    response_model=SiteMapOut,
    responses={**NOT_FOUND, 422: {"model": ValidationProblems, "description": "Bad marker: range, camera, duplicate"}},
)
def put_site_map(site: SiteName, body: MarkersIn, key: OperatorKey, ctx: CtxDep) -> SiteMapOut:
    """Replace the site's markers (every placed camera, x and y in 0..1 of the plan)."""
    cameras = _check_site(ctx, site, key)
    problems = _marker_problems(body.markers, {c.id for c in cameras}, site)
    if problems:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, problems)
    with ctx.store.session() as session:
        site_maps.put_markers(session, site, [Marker(m.camera_id, m.x, m.y) for m in body.markers], key_id=key.key_id)
    return _map_out(ctx, site, cameras)


def _marker_problems(markers: list[MarkerIn], known: set[str], site: str) -> list[dict[str, str]]:
    """One `{path, message}` per marker of a camera that is not the site's, or placed twice."""
    problems, seen = [], set()
    for i, m in enumerate(markers):
        path = f"body.markers.{i}.camera_id"
        if m.camera_id not in known:
            problems.append({"path": path, "message": f"no camera {m.camera_id!r} at site {site!r}"})
        elif m.camera_id in seen:
            problems.append({"path": path, "message": f"camera {m.camera_id!r} placed twice"})
        seen.add(m.camera_id)
    return problems


def _camera_picture(ctx: AppContext, camera: CameraConfig) -> npt.NDArray[np.uint8]:
    """The camera's current picture, as `GET /v1/cameras/{id}/frame.jpg` finds it (live, else a file's first frame)."""
    image = ctx.frames(camera.id) if ctx.frames is not None else None
    if image is None and not (is_url(camera.streams.detect) and not camera.streams.detect.lower().startswith("file:")):
        image = first_frame(camera.detect_source)
    if image is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"camera {camera.id!r} has no picture (not running here)")
    return image


async def _uploaded_plan(request: Request, ctx: AppContext) -> Plan:
    limit = min(MAX_BYTES, ctx.settings.max_upload_bytes)
    try:
        async with asyncio.timeout(ctx.settings.detect_upload_timeout_s):
            upload = await read_upload(request, max_bytes=limit)
    except UploadError as exc:
        raise HTTPException(exc.status_code, exc.reason) from None
    except TimeoutError:
        raise HTTPException(status.HTTP_408_REQUEST_TIMEOUT, "the upload was not received in time") from None
    try:
        return await run_in_threadpool(
            plan_from_upload,
            upload.data,
            name=upload.filename or "plan",
            max_decoded_pixels=ctx.settings.detect_max_pixels,
        )
    except PlanRefused as exc:
        raise HTTPException(exc.status_code, exc.reason) from None


_PLAN_FORM = {
    "requestBody": {
        "required": False,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {"file": {"type": "string", "format": "binary", "description": "PNG or JPEG"}},
                }
            }
        },
    }
}


@router.put(
    "/{site}/map/image",
    response_model=SiteMapOut,
    openapi_extra=_PLAN_FORM,
    responses={
        **NOT_FOUND,
        400: {"model": Problem, "description": "Empty or malformed upload"},
        413: {"model": Problem, "description": "Upload larger than 10 MiB (or max_upload_bytes)"},
        415: {"model": Problem, "description": "Not multipart/form-data, or the file is not a PNG or JPEG"},
        422: {"description": "Corrupt image, too many pixels, camera of another site, bad `from_camera`"},
    },
)
async def put_site_plan(
    request: Request,
    site: SiteName,
    key: OperatorKey,
    ctx: CtxDep,
    from_camera: Annotated[CameraId | None, Query(description="Use this camera's current picture (no body)")] = None,
) -> SiteMapOut:
    """Upload the site's plan (multipart field `file`, PNG or JPEG), or take a camera's current picture."""
    cameras = await run_in_threadpool(_check_site, ctx, site, key)
    if from_camera is not None:
        camera = (await run_in_threadpool(load_camera_for, ctx.cameras, from_camera, key)).config
        if camera.site != site:
            reason = f"camera {from_camera!r} belongs to site {camera.site!r}, not {site!r}"
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, reason)
        plan = await run_in_threadpool(lambda: plan_from_frame(_camera_picture(ctx, camera)))
    else:
        plan = await _uploaded_plan(request, ctx)
    await run_in_threadpool(_store_plan, ctx, site, plan, key)
    log.info("site %s: plan %s %dx%d stored (key %s)", site, plan.content_type, plan.width, plan.height, key.key_id)
    return await run_in_threadpool(_map_out, ctx, site, cameras)


def _store_plan(ctx: AppContext, site: str, plan: Plan, key: Principal) -> None:
    with ctx.store.session() as session:
        site_maps.put_plan(session, site, plan, key_id=key.key_id)


@router.get(
    "/{site}/map/image",
    response_class=Response,
    responses={
        200: {"content": {"image/png": {}, "image/jpeg": {}}},
        304: {"description": "Not modified (If-None-Match)"},
        **NOT_FOUND,
    },
)
def get_site_plan(request: Request, site: SiteName, key: ViewerKey, ctx: CtxDep) -> Response:
    """The site's plan image (404 when none was uploaded). `ETag` is its sha256; `If-None-Match` answers 304."""
    _check_site(ctx, site, key)
    with ctx.store.read() as session:
        plan = site_maps.get_plan(session, site)
    if plan is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"site {site!r} has no plan image")
    etag = f'"{plan.sha256}"'
    headers = {"ETag": etag, "Cache-Control": "private, no-cache", "X-Content-Type-Options": "nosniff"}
    if etag in request.headers.get("if-none-match", ""):
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    return Response(plan.data, media_type=plan.content_type, headers=headers)
