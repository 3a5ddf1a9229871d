"""`GET /v1/workers`: worker processes and their cameras (a provider seam: embedded mode returns one entry)."""

from __future__ import annotations

from fastapi import APIRouter

from api.context import WorkerInfo
from api.deps import CtxDep, ViewerKey
from vision.redact import redact_url

router = APIRouter(prefix="/v1", tags=["workers"])


@router.get("/workers", response_model=list[WorkerInfo])
def workers(_key: ViewerKey, ctx: CtxDep) -> list[WorkerInfo]:
    return [w.model_copy(update={"cameras": [redact_url(c) for c in w.cameras]}) for w in ctx.workers()]
