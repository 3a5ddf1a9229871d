"""Stream entries of the Redis bus: how an event (or a lease grant) is written to and read from `<prefix>:events`.

- an event: `id <incident id> seq <seq> event <IncidentEvent JSON>` (`id` and `seq` for inspection with redis-cli);
- a lease grant: `fence <camera id> token <n>`, appended by the lease's Lua script in the same step as the grant
  (pipelines/distributed/fencing.py), read back as a `FenceGrant`: from that entry on, the store refuses events of
  the camera whose fencing token is older than `n`.
"""

from __future__ import annotations

import json
import logging

from pydantic import ValidationError
from redis.typing import EncodableT, FieldT

from pipelines.events import FenceGrant, IncidentEvent

log = logging.getLogger(__name__)

GRANT_CAMERA, GRANT_TOKEN = b"fence", b"token"  # the fields of a lease grant entry (the Lua script writes them)


def fields_of(event_id: str, seq: int, event_json: str) -> dict[FieldT, EncodableT]:
    """The stream entry of one event: `id` and `seq` for inspection with redis-cli, `event` for consumers."""
    return {"id": event_id, "seq": str(seq), "event": event_json}


def fields_from_json(line: str) -> dict[FieldT, EncodableT] | None:
    """The stream entry of a spooled event JSON line, or None when the line is unreadable."""
    try:
        obj = json.loads(line)
        return fields_of(str(obj["id"]), int(obj["seq"]), line)
    except (ValueError, KeyError, TypeError):
        return None


def decode_entry(entry_id: bytes, fields: dict[bytes, bytes]) -> IncidentEvent | FenceGrant | None:
    """The event or lease grant in a stream entry, or None (logged) when the entry is neither."""
    if GRANT_CAMERA in fields:
        try:
            return FenceGrant(camera_id=fields[GRANT_CAMERA].decode(), token=int(fields.get(GRANT_TOKEN, b"")))
        except (ValueError, ValidationError) as exc:
            log.error("stream entry is not a valid lease grant", extra={"entry": entry_id.decode(), "error": str(exc)})
            return None
    raw = fields.get(b"event")
    if raw is None:
        log.error("stream entry without an event field", extra={"entry": entry_id.decode()})
        return None
    try:
        return IncidentEvent.model_validate_json(raw)
    except ValidationError as exc:
        log.error("stream entry is not a valid IncidentEvent", extra={"entry": entry_id.decode(), "error": str(exc)})
        return None


def droppable_event(line: str) -> str | None:
    """The spool's drop policy: "updated" for an `updated` event (the cap may drop it), else None (never dropped)."""
    try:
        return "updated" if json.loads(line).get("type") == "updated" else None
    except (ValueError, AttributeError):
        return None
