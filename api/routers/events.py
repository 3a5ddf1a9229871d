"""`GET /v1/events`: Server-Sent Events of IncidentEvent (viewer role: site managers' consoles are live), resumable
with `Last-Event-ID`; a site-scoped key receives only its sites' events. Streams are capped per key and in total
(429, `api.sse`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, HTTPException, Query, status
from sse_starlette import EventSourceResponse
from starlette.background import BackgroundTask

from api.deps import CtxDep, ViewerKey
from api.schemas import Problem
from api.sse import StreamsFull, event_stream

#: Retry-After of a 429 (too many streams): a client that left frees its slot at once.
RETRY_AFTER_S = 5

router = APIRouter(prefix="/v1", tags=["events"])


@router.get(
    "/events",
    response_class=EventSourceResponse,
    responses={
        200: {"content": {"text/event-stream": {}}},
        400: {"model": Problem},
        429: {"model": Problem, "description": "Too many open streams for this key or in all; see Retry-After"},
    },
)
async def events(
    key: ViewerKey,
    ctx: CtxDep,
    last_event_id: Annotated[str | None, Header(description="Resume after this store event number")] = None,
    after: Annotated[
        int | None, Query(ge=0, description="Same as Last-Event-ID, for clients that cannot set it")
    ] = None,
) -> EventSourceResponse:
    """The stream: `event:` = opened|updated|closed, `id:` = store event number, `data:` = IncidentEvent JSON."""
    start = after
    if last_event_id is not None and last_event_id.strip():
        try:
            start = int(last_event_id)
        except ValueError as exc:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, "Last-Event-ID must be a store event number") from exc
        if start < 0:
            raise HTTPException(status.HTTP_400_BAD_REQUEST, "Last-Event-ID must be >= 0")
    try:
        sub = ctx.feed.subscribe(key.key_id, key.sites)
    except StreamsFull as exc:
        raise HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, str(exc), {"Retry-After": str(RETRY_AFTER_S)}) from None
    return EventSourceResponse(
        event_stream(ctx.feed, sub, start),
        ping=int(max(ctx.settings.sse_ping_s, 1)),
        background=BackgroundTask(ctx.feed.release, sub),  # also when the stream never started
    )
