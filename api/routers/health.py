"""`GET /healthz` (no auth: load balancers and probes) and `GET /metrics` (Prometheus text, viewer key)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel
from sqlalchemy import text

from api.deps import AllSitesViewerKey, MetricsDep, StoreDep

router = APIRouter(tags=["health"])


class Health(BaseModel):
    status: str
    database: str


@router.get("/healthz", response_model=Health, responses={503: {"model": Health}})
def healthz(store: StoreDep, response: Response) -> Health:
    try:
        with store.read() as session:
            session.execute(text("SELECT 1"))
    except Exception:
        response.status_code = 503
        return Health(status="degraded", database="unreachable")
    return Health(status="ok", database="ok")


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
def metrics(_key: AllSitesViewerKey, metrics: MetricsDep) -> Response:
    return Response(metrics.render(), media_type=CONTENT_TYPE_LATEST)
