"""`create_app(settings)`: the FastAPI application factory (no module-level singletons).

Routers are discovered: every module in `api/routers/` that defines `router` is included, so the cameras and detect
routers (other engineers) plug in by adding a file. `extra_routers` adds more without touching the package.
The lifespan runs the webhook dispatcher and, when a bus is given, the bus → store consumer (`api.consumer`).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import pkgutil
from collections.abc import AsyncIterator, Sequence

import anyio.to_thread
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError

import api.routers as routers_pkg
from api.camera_store import CameraStore
from api.consumer import consume_into_store
from api.context import AppContext, WorkersProvider, embedded_workers
from api.metrics import Metrics
from api.settings import Settings
from api.store.db import Store
from api.webhooks.dispatcher import Dispatcher
from pipelines.bus.base import EventBus
from vision.detect.registry import ModelRegistry

log = logging.getLogger(__name__)


def discover_routers() -> list[APIRouter]:
    """The `router` of every module in api/routers/, in name order (the router registry)."""
    found: list[APIRouter] = []
    for info in sorted(pkgutil.iter_modules(routers_pkg.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{routers_pkg.__name__}.{info.name}")
        router = getattr(module, "router", None)
        if isinstance(router, APIRouter):
            found.append(router)
    return found


def create_app(
    settings: Settings | None = None,
    *,
    bus: EventBus | None = None,
    workers: WorkersProvider | None = None,
    metrics: Metrics | None = None,
    extra_routers: Sequence[APIRouter] = (),
) -> FastAPI:
    """Build the service. The store is opened (and migrated) here; background tasks start with the lifespan.

    `bus`: events published on it are applied to the store (consumer group "store").
    `workers`: provider for `GET /v1/workers` (default: this process, no cameras).
    `metrics`: share one `Metrics` with the camera workers (default: a new one on a private registry).
    """
    settings = settings or Settings()
    settings.media_dir.mkdir(parents=True, exist_ok=True)
    store = Store(settings.database_url)
    metrics = metrics or Metrics(store)
    ctx = AppContext(settings=settings, store=store, metrics=metrics, workers=workers or embedded_workers, bus=bus)
    ctx.registry = ModelRegistry(settings.models_dir)
    ctx.cameras = CameraStore(settings.config_dir)
    if settings.webhook_dispatcher:
        ctx.dispatcher = Dispatcher(store, settings, metrics)
    store.add_listener(ctx.notifier.notify)
    if ctx.dispatcher is not None:
        store.add_listener(ctx.dispatcher.wake)

    app = FastAPI(
        title="safewatch",
        version="0.1.0",
        description="AI video safety monitoring: incidents, evidence, event stream, webhooks.",
        lifespan=_lifespan,
    )
    app.state.ctx = ctx
    for router in [*discover_routers(), *extra_routers]:
        app.include_router(router)
    app.add_exception_handler(OperationalError, _db_unavailable)
    return app


async def _db_unavailable(_request: Request, exc: Exception) -> JSONResponse:
    log.error("database unavailable: %s", type(exc).__name__)
    return JSONResponse({"detail": "database unavailable"}, status_code=503)


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    ctx: AppContext = app.state.ctx
    ctx.notifier.bind(asyncio.get_running_loop())
    anyio.to_thread.current_default_thread_limiter().total_tokens = ctx.settings.api_threads
    stop = asyncio.Event()
    tasks: list[asyncio.Task[None]] = []
    if ctx.dispatcher is not None:
        tasks.append(asyncio.create_task(ctx.dispatcher.run(stop), name="webhook-dispatcher"))
    if ctx.bus is not None:
        tasks.append(
            asyncio.create_task(consume_into_store(ctx.bus, ctx.store, ctx.metrics, stop), name="bus-consumer")
        )
    try:
        yield
    finally:
        stop.set()
        for task in tasks:
            try:
                await asyncio.wait_for(task, timeout=10)
            except (TimeoutError, asyncio.CancelledError):
                task.cancel()
        ctx.store.dispose()
