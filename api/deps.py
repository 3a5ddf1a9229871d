"""FastAPI dependency aliases (`Annotated[..., Depends(...)]`), as in the full-stack-fastapi-template."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request

from api.auth import AdminKey, OperatorKey, PlatformKey, Principal, ViewerKey
from api.context import AppContext
from api.metrics import Metrics
from api.settings import Settings
from api.store.db import Store


def get_ctx(request: Request) -> AppContext:
    return cast(AppContext, request.app.state.ctx)


def get_store(request: Request) -> Store:
    return get_ctx(request).store


def get_settings(request: Request) -> Settings:
    return get_ctx(request).settings


def get_metrics(request: Request) -> Metrics:
    return get_ctx(request).metrics


CtxDep = Annotated[AppContext, Depends(get_ctx)]
StoreDep = Annotated[Store, Depends(get_store)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]

__all__ = [
    "AdminKey",
    "CtxDep",
    "MetricsDep",
    "OperatorKey",
    "PlatformKey",
    "Principal",
    "SettingsDep",
    "StoreDep",
    "ViewerKey",
]
