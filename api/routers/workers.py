"""`GET /v1/workers`: worker processes and their cameras (a provider seam: embedded mode returns one entry)."""

from __future__ import annotations

import logging

import redis
from fastapi import APIRouter, HTTPException, status

from api.deps import CtxDep, ViewerKey
from api.workers import WorkerInfo
from vision.redact import redact_url

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["workers"])


@router.get("/workers", response_model=list[WorkerInfo])
def workers(_key: ViewerKey, ctx: CtxDep) -> list[WorkerInfo]:
    try:
        found = ctx.workers()
    except redis.RedisError as exc:  # distributed mode: the heartbeats live in Redis
        log.warning("worker heartbeats unavailable: %s", exc)
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, "worker status unavailable: Redis unreachable"
        ) from exc
    return [w.model_copy(update={"cameras": [redact_url(c) for c in w.cameras]}) for w in found]
