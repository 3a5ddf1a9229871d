"""Server-Sent Events of IncidentEvents: one shared feed per app, resumable from the store with `Last-Event-ID`.

Each SSE `id:` is the store event number (monotonically increasing). One background task per app (`EventFeed.run`)
reads the store when a commit wakes it (or every `sse_poll_interval_s`) and fans each new event out to every
connected stream whose key may see the event's site; streams never poll the store themselves. A stream reads the
store only to catch up: once when it resumes after `Last-Event-ID`, and again if it fell `QUEUE` events behind.
A stream starts at the newest event when it connects (only new events) unless it resumes.

Handling actions (ack / resolve / false-positive, `api.store.handling`) are sent too, as `event: handling` with
`{id, site, camera_id, handling, action, actor, at}` and no `id:` line: they are live only (a resumed stream does
not replay them; a client that reconnects reloads what it shows), so the web console updates every open list.

Streams are capped per key (`sse_max_per_key`) and in total (`sse_max_total`): a stream holds its slot until the
client disconnects, and a connection over a cap is refused (429) before it streams.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Set
from dataclasses import dataclass, field
from typing import Protocol

from sqlalchemy import func, select
from sse_starlette import ServerSentEvent

from api.links import public_event, signed_links
from api.settings import Settings
from api.store.db import Store
from api.store.incidents import events_after, last_event_number
from api.store.models import HandlingAction, Incident, IncidentEventRow

PAGE = 200
#: Events a stream may fall behind the feed before it catches up from the store instead.
QUEUE = 1000


class Waker(Protocol):
    async def wait(self, timeout: float) -> None: ...


@dataclass(frozen=True)
class FeedEvent:
    number: int  # the store event number (a `handling` event: the action's id, not sent)
    type: str
    site: str
    data: str  # the public IncidentEvent JSON (`handling`: see the module docs), serialised once for every stream
    live: bool = False  # a `handling` event: no SSE id, never replayed

    def sse(self) -> ServerSentEvent:
        return ServerSentEvent(data=self.data, event=self.type, id=None if self.live else str(self.number))


class StreamsFull(Exception):
    """A new stream would exceed a cap; the message says which."""


@dataclass(eq=False)
class Subscription:
    """One connected stream: what the feed gives it, and where it started."""

    key_id: str
    sites: frozenset[str] | None
    start: int  # the feed's position when the stream connected
    queue: asyncio.Queue[FeedEvent] = field(default_factory=lambda: asyncio.Queue(QUEUE))
    lagged: bool = False  # the queue overflowed: catch up from the store

    def offer(self, event: FeedEvent) -> None:
        if self.sites is not None and event.site not in self.sites:
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.lagged = True


class EventFeed:
    """The app's one reader of new store events and the registry of connected streams (single event loop)."""

    def __init__(self, store: Store, settings: Settings, waker: Waker) -> None:
        self._store = store
        self._settings = settings
        self._waker = waker
        self._subs: set[Subscription] = set()
        self.position = 0  # number of the newest event handed to the streams
        self.action_position = 0  # id of the newest handling action handed to the streams

    @property
    def streams(self) -> int:
        return len(self._subs)

    def subscribe(self, key_id: str, sites: Set[str] | None) -> Subscription:
        """A slot for a new stream of key `key_id`, or `StreamsFull`."""
        if len(self._subs) >= self._settings.sse_max_total:
            raise StreamsFull(f"the server has {self._settings.sse_max_total} event streams open (the maximum)")
        if sum(1 for s in self._subs if s.key_id == key_id) >= self._settings.sse_max_per_key:
            raise StreamsFull(f"this key has {self._settings.sse_max_per_key} event streams open (the maximum)")
        sub = Subscription(key_id, None if sites is None else frozenset(sites), self.position)
        self._subs.add(sub)
        return sub

    def release(self, sub: Subscription) -> None:
        self._subs.discard(sub)

    async def prime(self) -> None:
        """Start at the newest stored event (before the app serves: a stream must not begin at 0)."""
        self.position = await asyncio.to_thread(self._latest)
        self.action_position, _ = await asyncio.to_thread(self._handled, None)

    async def run(self, stop: asyncio.Event) -> None:
        """Until `stop`: read what was committed after `position` and offer it to every stream."""
        while not stop.is_set():
            if not self._subs:  # nobody listens: only keep the position current
                self.position = max(self.position, await asyncio.to_thread(self._latest))
                self.action_position, _ = await asyncio.to_thread(self._handled, None)
            else:
                events = await asyncio.to_thread(self._read, self.position)
                for event in events:
                    for sub in list(self._subs):
                        sub.offer(event)
                    self.position = event.number
                self.action_position, handled = await asyncio.to_thread(self._handled, self.action_position)
                for event in handled:
                    for sub in list(self._subs):
                        sub.offer(event)
                if len(events) == PAGE:
                    continue
            await self._waker.wait(self._settings.sse_poll_interval_s)

    def _latest(self) -> int:
        with self._store.read() as session:
            return last_event_number(session)

    def _read(self, after: int) -> list[FeedEvent]:
        query = (
            select(IncidentEventRow.number, IncidentEventRow.type, IncidentEventRow.payload, Incident.site)
            .join(Incident, Incident.id == IncidentEventRow.incident_id)
            .where(IncidentEventRow.number > after, IncidentEventRow.shadow.is_(False))  # shadow runs: never pushed
            .order_by(IncidentEventRow.number)
            .limit(PAGE)
        )
        base = signed_links(self._settings)
        with self._store.read() as session:
            return [
                FeedEvent(number, kind, site, json.dumps(public_event(payload, base), ensure_ascii=False))
                for number, kind, payload, site in session.execute(query)
            ]

    def _handled(self, after: int | None) -> tuple[int, list[FeedEvent]]:
        """Handling actions after action id `after` as `handling` events (None: none, only the newest id)."""
        newest = select(func.coalesce(func.max(HandlingAction.id), 0))
        query = (
            select(HandlingAction, Incident.site, Incident.camera_id)
            .join(Incident, Incident.id == HandlingAction.incident_id)
            .where(HandlingAction.id > (after or 0), Incident.shadow.is_(False))
            .order_by(HandlingAction.id)
            .limit(PAGE)
        )
        with self._store.read() as session:
            if after is None:
                return int(session.scalar(newest) or 0), []
            events, position = [], after
            for action, site, camera_id in session.execute(query):
                position = action.id
                data = {
                    "id": action.incident_id,
                    "site": site,
                    "camera_id": camera_id,
                    "handling": action.to_status,
                    "action": action.action,
                    "actor": action.actor,
                    "at": action.at.isoformat(),
                }
                events.append(FeedEvent(action.id, "handling", site, json.dumps(data, ensure_ascii=False), live=True))
            return position, events

    def backlog(self, after: int, sites: Set[str] | None) -> list[FeedEvent]:
        """Up to PAGE stored events after `after` of `sites` (a resuming or lagging stream catching up)."""
        base = signed_links(self._settings)
        with self._store.read() as session:
            return [
                FeedEvent(r.number, r.type, "", json.dumps(public_event(r.payload, base), ensure_ascii=False))
                for r in events_after(session, after, PAGE, sites=sites)
            ]


async def event_stream(feed: EventFeed, sub: Subscription, after: int | None) -> AsyncIterator[ServerSentEvent]:
    """The events after `after` (None: from when `sub` connected) that `sub` may see, until the client leaves;
    the slot is released when the stream ends."""
    try:
        last = sub.start if after is None else after
        catch_up = after is not None
        while True:
            if catch_up or sub.lagged:
                sub.lagged = False
                while not sub.queue.empty():  # what the queue holds is re-read from the store
                    sub.queue.get_nowait()
                while rows := await asyncio.to_thread(feed.backlog, last, sub.sites):
                    for event in rows:
                        last = event.number
                        yield event.sse()
                    if len(rows) < PAGE:
                        break
                catch_up = False
            event = await sub.queue.get()
            if event.live:  # a handling event
                yield event.sse()
            elif event.number > last:  # already sent while catching up
                last = event.number
                yield event.sse()
    finally:
        feed.release(sub)
