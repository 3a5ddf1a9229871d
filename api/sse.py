"""Server-Sent Events of IncidentEvents, read from the store so a client can resume with `Last-Event-ID`.

Each SSE `id:` is the store event number (monotonically increasing). A stream starts after `Last-Event-ID` when
given, else at the newest stored event (only new events). New commits wake the stream at once; it also polls.
A site-scoped key's stream reads only its sites' events (the scope is part of the query); its ids keep their gaps.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Set

from sse_starlette import ServerSentEvent

from api.context import AppContext
from api.links import public_event
from api.store.incidents import events_after, last_event_number

PAGE = 200


def _fetch(ctx: AppContext, after: int, sites: Set[str] | None) -> list[tuple[int, str, str]]:
    with ctx.store.read() as session:
        rows = events_after(session, after, PAGE, sites=sites)
        base = ctx.settings.base_url
        return [(r.number, r.type, json.dumps(public_event(r.payload, base), ensure_ascii=False)) for r in rows]


def _latest(ctx: AppContext) -> int:
    with ctx.store.read() as session:
        return last_event_number(session)


async def event_stream(
    ctx: AppContext, after: int | None, sites: Set[str] | None = None
) -> AsyncIterator[ServerSentEvent]:
    """The events after `after` (None: from now on) of `sites` (None: every site), forever."""
    last = after if after is not None else await asyncio.to_thread(_latest, ctx)
    while True:
        rows = await asyncio.to_thread(_fetch, ctx, last, sites)
        for number, kind, data in rows:
            last = number
            yield ServerSentEvent(data=data, event=kind, id=str(number))
        if len(rows) < PAGE:
            await ctx.notifier.wait(ctx.settings.sse_poll_interval_s)
