"""Where the publisher is in the store's event sequence, and the events after it.

`Cursor` persists the number of the newest event the broker acknowledged (with every event before it) in a small
file in the data dir, so a restarted process re-sends from there (at-least-once: subscribers de-duplicate on the
event's `(id, seq)`). Without the file the publisher starts at the newest stored event: MQTT gets new events only.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select

from api.links import MediaLinks, public_event
from api.store.db import Store
from api.store.incidents import last_event_number
from api.store.models import IncidentEventRow

log = logging.getLogger(__name__)


class Cursor:
    """The persisted position: `load()` once, `save(number)` after acknowledgements (atomic replace)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._saved: int | None = None

    def load(self) -> int | None:
        try:
            number = int(json.loads(self.path.read_text(encoding="utf-8"))["number"])
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("MQTT cursor %s unreadable (%s): starting at the newest event", self.path, exc)
            return None
        self._saved = number
        return number

    def save(self, number: int) -> None:
        if number == self._saved:
            return
        tmp = self.path.with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps({"number": number}), encoding="utf-8")
            os.replace(tmp, self.path)
        except OSError as exc:  # a full disk must not stop publishing; the next save tries again
            log.warning("MQTT cursor %s not saved: %s", self.path, exc)
            return
        self._saved = number


@dataclass(frozen=True, slots=True)
class StoredEvent:
    number: int
    site: str
    camera_id: str
    rule: str
    data: str  # the public IncidentEvent JSON (as webhooks send it: media links signed)


class EventReader:
    """Reads committed events by store event number (one short read transaction per call)."""

    def __init__(self, store: Store, links: MediaLinks | str) -> None:
        self._store = store
        self._links = links  # signed media links (like webhooks), or a plain base URL

    def latest(self) -> int:
        with self._store.read() as session:
            return last_event_number(session)

    def after(self, number: int, limit: int) -> list[StoredEvent]:
        query = (
            select(IncidentEventRow.number, IncidentEventRow.payload)
            .where(IncidentEventRow.number > number, IncidentEventRow.shadow.is_(False))  # shadow runs: never pushed
            .order_by(IncidentEventRow.number)
            .limit(limit)
        )
        with self._store.read() as session:
            rows = list(session.execute(query))
        out = []
        for n, payload in rows:
            body = public_event(payload, self._links)
            data = json.dumps(body, ensure_ascii=False)
            out.append(StoredEvent(n, str(body["site"]), str(body["camera_id"]), str(body["rule"]), data))
        return out

    def skip_to(self, number: int, keep: int) -> tuple[int, int]:
        """When more than `keep` events follow `number`: (the number to continue after so that `keep` remain, how
        many are skipped); else (`number`, 0)."""
        with self._store.read() as session:
            newest_skipped = session.scalar(
                select(IncidentEventRow.number)
                .where(IncidentEventRow.number > number)
                .order_by(IncidentEventRow.number.desc())
                .offset(keep)
                .limit(1)
            )
            if newest_skipped is None:
                return number, 0
            skipped = session.scalar(
                select(func.count())
                .select_from(IncidentEventRow)
                .where(IncidentEventRow.number > number, IncidentEventRow.number <= newest_skipped)
            )
        return int(newest_skipped), int(skipped or 0)

    def count_after(self, number: int) -> int:
        with self._store.read() as session:
            n = session.scalar(
                select(func.count()).select_from(IncidentEventRow).where(IncidentEventRow.number > number)
            )
        return int(n or 0)
