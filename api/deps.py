"""FastAPI dependency aliases (`Annotated[..., Depends(...)]`), as in the full-stack-fastapi-template."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, HTTPException, Query, Request, Security, status
from fastapi.security import HTTPAuthorizationCredentials

from api.auth import (
    AdminKey,
    AllSitesAdminKey,
    AllSitesViewerKey,
    OperatorKey,
    PlatformKey,
    Principal,
    Role,
    ViewerKey,
    api_key_header,
    bearer,
    require,
)
from api.camera_store import CameraStore
from api.context import AppContext
from api.media_links import MAX_SIG_CHARS, LinkRefused, link_signer
from api.metrics import Metrics
from api.settings import Settings
from api.store.db import Store
from vision.detect.registry import ModelRegistry


def get_ctx(request: Request) -> AppContext:
    return cast(AppContext, request.app.state.ctx)


def get_store(request: Request) -> Store:
    return get_ctx(request).store


def get_settings(request: Request) -> Settings:
    return get_ctx(request).settings


def get_metrics(request: Request) -> Metrics:
    return get_ctx(request).metrics


def get_registry(request: Request) -> ModelRegistry:
    return get_ctx(request).registry


def get_cameras(request: Request) -> CameraStore:
    return get_ctx(request).cameras


#: Who opened a media route or the mobile page with a signed link (`api.media_links`): it is scoped to the one
#: incident the signature names, which the route checks against its path, so `sites` can stay None.
SIGNED_LINK = Principal(key_id="", name="signed link", role=Role.viewer)


def media_access(
    request: Request,
    incident_id: str,
    x_api_key: Annotated[str | None, Security(api_key_header)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)],
    exp: Annotated[int | None, Query(description="Signed link: expiry (unix seconds)")] = None,
    sig: Annotated[str | None, Query(max_length=MAX_SIG_CHARS, description="Signed link: signature")] = None,
) -> Principal:
    """An incident's media and page: a viewer key, or a signed link for this very incident (`exp` and `sig`; 403 when
    tampered with, for another incident, incomplete or expired). A key, when one is sent, decides alone (a client that
    stored a signed link keeps fetching it with its key after `exp`); without one, a signed link is needed."""
    if x_api_key or credentials or (exp is None and sig is None):
        return require(Role.viewer)(request, x_api_key, credentials)
    try:
        link_signer(get_settings(request)).check(incident_id, exp, sig)
    except LinkRefused as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from exc
    return SIGNED_LINK


MediaKey = Annotated[Principal, Depends(media_access)]
CtxDep = Annotated[AppContext, Depends(get_ctx)]
StoreDep = Annotated[Store, Depends(get_store)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
RegistryDep = Annotated[ModelRegistry, Depends(get_registry)]
CamerasDep = Annotated[CameraStore, Depends(get_cameras)]

__all__ = [
    "AdminKey",
    "AllSitesAdminKey",
    "AllSitesViewerKey",
    "CamerasDep",
    "CtxDep",
    "MediaKey",
    "MetricsDep",
    "OperatorKey",
    "PlatformKey",
    "Principal",
    "RegistryDep",
    "SettingsDep",
    "StoreDep",
    "ViewerKey",
]
