"""`GET /v1/workers`: worker processes and their cameras (a provider seam: embedded mode returns one entry).

A site-scoped key sees the workers that run at least one camera of its sites, with only those cameras listed: a site
manager can tell whether its cameras run without learning other sites' camera ids. A worker's `fps` and `lag_s` stay
the worker's totals (they name no camera). Cameras are mapped to sites through the camera configs in the config
directory; a camera without a loadable config there is not shown to a scoped key.
"""

from __future__ import annotations

import logging

import redis
from fastapi import APIRouter, HTTPException, status

from api.deps import CtxDep, Principal, ViewerKey
from api.workers import WorkerInfo
from vision.redact import redact_url

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1", tags=["workers"])


def _in_scope(found: list[WorkerInfo], key: Principal, ctx: CtxDep) -> list[WorkerInfo]:
    if not key.scoped:
        return found
    stored, _problems = ctx.cameras.scan()
    visible = {s.config.id for s in stored if key.sees(s.config.site)}
    out = []
    for worker in found:
        cameras = [c for c in worker.cameras if c in visible]
        if cameras:
            out.append(worker.model_copy(update={"cameras": cameras}))
    return out


@router.get("/workers", response_model=list[WorkerInfo])
def workers(key: ViewerKey, ctx: CtxDep) -> list[WorkerInfo]:
    try:
        found = ctx.workers()
    except redis.RedisError as exc:  # distributed mode: the heartbeats live in Redis
        log.warning("worker heartbeats unavailable: %s", exc)
        raise HTTPException(
            status.HTTP_503_SERVICE_UNAVAILABLE, "worker status unavailable: Redis unreachable"
        ) from exc
    return [w.model_copy(update={"cameras": [redact_url(c) for c in w.cameras]}) for w in _in_scope(found, key, ctx)]
