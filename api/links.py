"""Public links and redaction for anything the API returns or sends (webhooks, SSE)."""

from __future__ import annotations

from dataclasses import dataclass

from api.jsontypes import EventJSON
from api.media_links import LinkSigner, link_signer
from api.settings import Settings
from vision.redact import redact_url


def snapshot_link(base_url: str, incident_id: str) -> str:
    return f"{base_url}/v1/incidents/{incident_id}/snapshot.jpg"


def clip_link(base_url: str, incident_id: str) -> str:
    return f"{base_url}/v1/incidents/{incident_id}/clip.mp4"


def clips_link(base_url: str, incident_id: str, index: int) -> str:
    """One clip of an incident split into several (`clip_link` serves the first, index 0)."""
    return f"{base_url}/v1/incidents/{incident_id}/clips/{index}.mp4"


def page_link(base_url: str, incident_id: str) -> str:
    """The mobile incident page (`api.routers.mobile`)."""
    return f"{base_url}/ui/i/{incident_id}"


@dataclass(frozen=True)
class MediaLinks:
    """Absolute links to an incident's media and page, signed (`?exp=…&sig=…`, `api.media_links`) when `signer` is
    set, so they open without an API key; plain API links (which need a key) otherwise. `query`: reuse that
    `exp=…&sig=…` instead of signing anew (a page opened by a signed link must not hand out longer-lived links)."""

    base_url: str
    signer: LinkSigner | None = None
    query: str | None = None

    def _sign(self, url: str, incident_id: str) -> str:
        if self.query is not None:
            return f"{url}?{self.query}"
        return f"{url}?{self.signer.query(incident_id)}" if self.signer is not None else url

    def snapshot(self, incident_id: str) -> str:
        return self._sign(snapshot_link(self.base_url, incident_id), incident_id)

    def clip(self, incident_id: str) -> str:
        return self._sign(clip_link(self.base_url, incident_id), incident_id)

    def clips(self, incident_id: str, index: int) -> str:
        return self._sign(clips_link(self.base_url, incident_id, index), incident_id)

    def page(self, incident_id: str) -> str:
        return self._sign(page_link(self.base_url, incident_id), incident_id)


def signed_links(settings: Settings) -> MediaLinks:
    """This deployment's signed links (`SAFEWATCH_PUBLIC_BASE_URL`, `SAFEWATCH_LINK_KEY`, `SAFEWATCH_LINK_TTL_S`)."""
    return MediaLinks(settings.base_url, link_signer(settings))


def public_event(payload: EventJSON, links: MediaLinks | str) -> EventJSON:
    """The stored IncidentEvent JSON with media paths replaced by links and credentials redacted.

    With signed `MediaLinks` the snapshot and clip links are signed (absolute, they open without a key); a plain base
    URL gives API links that need a key. The fields stay those of `IncidentEvent` (its JSON forbids extra keys): the
    chat formats add the mobile page's link themselves (`MediaLinks.page`).
    """
    links = MediaLinks(links) if isinstance(links, str) else links
    out = {key: redact_url(value) if isinstance(value, str) else value for key, value in payload.items()}
    incident = str(out["id"])
    if out.get("snapshot_url"):  # after the redaction, which would mask the signature
        out["snapshot_url"] = links.snapshot(incident)
    if out.get("clip_url"):
        out["clip_url"] = links.clip(incident)
    return out
