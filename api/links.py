"""Public links and redaction for anything the API returns or sends (webhooks, SSE)."""

from __future__ import annotations

from api.jsontypes import EventJSON
from vision.redact import redact_url


def snapshot_link(base_url: str, incident_id: str) -> str:
    return f"{base_url}/v1/incidents/{incident_id}/snapshot.jpg"


def clip_link(base_url: str, incident_id: str) -> str:
    return f"{base_url}/v1/incidents/{incident_id}/clip.mp4"


def clips_link(base_url: str, incident_id: str, index: int) -> str:
    """One clip of an incident split into several (`clip_link` serves the first, index 0)."""
    return f"{base_url}/v1/incidents/{incident_id}/clips/{index}.mp4"


def public_event(payload: EventJSON, base_url: str) -> EventJSON:
    """The stored IncidentEvent JSON with media paths replaced by API links and credentials redacted."""
    out = dict(payload)
    if out.get("snapshot_url"):
        out["snapshot_url"] = snapshot_link(base_url, str(out["id"]))
    if out.get("clip_url"):
        out["clip_url"] = clip_link(base_url, str(out["id"]))
    for key, value in out.items():
        if isinstance(value, str):
            out[key] = redact_url(value)
    return out
