"""FastAPI dependency aliases (`Annotated[..., Depends(...)]`), as in the full-stack-fastapi-template."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request

from api.auth import AdminKey, AllSitesAdminKey, AllSitesViewerKey, OperatorKey, PlatformKey, Principal, ViewerKey
from api.camera_store import CameraStore
from api.context import AppContext
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
    "MetricsDep",
    "OperatorKey",
    "PlatformKey",
    "Principal",
    "RegistryDep",
    "SettingsDep",
    "StoreDep",
    "ViewerKey",
]
