"""`create_app(settings, ...)`: the FastAPI application factory (no module-level singletons).

The composition roots (api/service.py embedded, api/service_api.py distributed, tests, benchmarks) pass in everything
the app serves from; the app context is complete when `create_app` returns and never changes after. `ROUTERS` is the
router registry: a new resource is a module in api/routers/ plus its line here. The lifespan runs the webhook
dispatcher and, when a bus is given, the bus → store consumer (`api.consumer`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import anyio.to_thread
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError

from api.camera_store import CameraStore
from api.consumer import consume_into_store
from api.context import AppContext
from api.detect_pool import DetectPool
from api.errors import install as install_error_handlers
from api.limits import BodyLimit
from api.metrics import Metrics
from api.routers import (
    cameras,
    detect,
    events,
    evidence,
    frames,
    health,
    incidents,
    keys,
    mobile,
    models,
    report_subscriptions,
    reports,
    sites,
    stats,
    ui,
    webhooks,
    workers,
)
from api.settings import Settings
from api.store.db import Store
from api.webhooks.dispatcher import Dispatcher
from api.workers import FrameProvider, WorkersProvider, embedded_workers
from pipelines.bus.base import EventBus
from pipelines.distributed.model_catalog import LocalModelCatalog, ModelCatalog
from vision.detect.registry import ModelRegistry

log = logging.getLogger(__name__)


#: Every router of the service, in the order they are matched.
ROUTERS: tuple[APIRouter, ...] = (
    cameras.router,
    detect.router,
    events.router,
    evidence.router,
    frames.router,
    health.router,
    incidents.router,
    keys.router,
    mobile.router,
    models.router,
    report_subscriptions.router,
    reports.router,
    sites.router,
    stats.router,
    ui.router,
    webhooks.router,
    workers.router,
)


def create_app(
    settings: Settings,
    *,
    store: Store | None = None,
    metrics: Metrics | None = None,
    registry: ModelRegistry | None = None,
    bus: EventBus | None = None,
    workers: WorkersProvider = embedded_workers,
    frames: FrameProvider | None = None,
    models: ModelCatalog | None = None,
) -> FastAPI:
    """Build the service. Background tasks (dispatcher, consumer) start with the lifespan.

    `store`: the incident store (default: opened, and migrated, from `settings.database_url`).
    `metrics`: share one `Metrics` with the camera workers or with worker gauges (default: a new one on the store).
    `registry`: the model registry, shared with the cameras (default: one on `settings.models_dir`).
    `bus`: events published on it are applied to the store (consumer group "store").
    `workers`: provider for `GET /v1/workers` (default: this process, no cameras).
    `frames`: the latest analysed frame per camera (`GET /v1/cameras/{id}/frame.jpg`); None: no camera runs here.
    `models`: the catalogue of pushed models (default: a file in `settings.model_store_dir`; Redis when distributed).
    """
    settings.media_dir.mkdir(parents=True, exist_ok=True)
    store = store or Store(settings.database_url)
    metrics = metrics or Metrics(store)
    ctx = AppContext(
        settings=settings,
        store=store,
        metrics=metrics,
        registry=registry or ModelRegistry(settings.models_dir, precision=settings.precision),
        cameras=CameraStore(settings.config_dir),
        detect=DetectPool(settings.detect_concurrency, settings.detect_queue, settings.detect_retry_after_s),
        models=models or LocalModelCatalog(settings.model_store_dir / "catalog.json"),
        workers=workers,
        bus=bus,
        frames=frames,
        dispatcher=Dispatcher(store, settings, metrics) if settings.webhook_dispatcher else None,
    )
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
    for router in ROUTERS:
        app.include_router(router)
    app.add_exception_handler(OperationalError, _db_unavailable)
    app.add_middleware(BodyLimit)  # request bodies ≤ 1 MiB, POST /v1/detect excepted (api.limits)
    install_error_handlers(app)
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
    await ctx.feed.prime()
    tasks.append(asyncio.create_task(ctx.feed.run(stop), name="sse-feed"))
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
        ctx.detect.shutdown()
        ctx.store.dispose()
