"""Evidence export for inspectors (`safewatch evidence export`, `GET /v1/incidents/{id}/evidence.zip`): one
incident's bundle (`vision/media/bundle.py`), recorded in the incident's audit trail (a `handling_actions` row with
action `export`, the handling state unchanged, and the principal: the API key, or the local user of the CLI).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import IO

from api.settings import Settings
from api.store.db import Store
from api.store.handling import Actor, IncidentNotFound
from api.store.incidents import get_incident
from api.store.models import HandlingAction, utcnow
from pipelines.worker.evidence_chain import trusted_keys
from vision.media.bundle import BundleError, BundleInfo, write_bundle
from vision.media.store import MediaStore

log = logging.getLogger(__name__)

EXPORT_ACTION = "export"


class NoEvidence(Exception):
    """The incident exists but has no complete evidence to export (still open, or its evidence was deleted)."""


@dataclass(frozen=True, slots=True)
class Exported:
    info: BundleInfo
    sha256: str
    size: int


class _Hashing:
    """A write-only binary sink that hashes what passes to `out` (zipfile needs only write/tell/flush)."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.size += len(data)
        return self.out.write(data)

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        self.out.flush()


def export_incident(store: Store, settings: Settings, incident_id: str, actor: Actor, out: IO[bytes]) -> Exported:
    """Write the bundle of `incident_id` to `out` and record the export. An incident outside the actor's sites is
    `IncidentNotFound`, like an unknown one; `NoEvidence` when there is nothing complete to export."""
    with store.read() as session:
        row = get_incident(session, incident_id, sites=actor.sites)
        if row is None:
            raise IncidentNotFound(incident_id)
        handling = row.handling
    folder = MediaStore(settings.media_dir).find(incident_id)
    if folder is None:
        raise NoEvidence(f"incident {incident_id!r} has no evidence folder (not written, or deleted by retention)")
    sink = _Hashing(out)
    try:
        info = write_bundle(sink, folder.path, settings.media_dir, trusted_keys(settings))  # type: ignore[arg-type]
    except BundleError as exc:
        raise NoEvidence(f"incident {incident_id!r}: {exc}") from None
    exported = Exported(info, sink.digest.hexdigest(), sink.size)
    with store.session() as session:
        session.add(
            HandlingAction(
                incident_id=incident_id,
                action=EXPORT_ACTION,
                from_status=handling,
                to_status=handling,
                actor=actor.name,
                note=f"evidence bundle exported ({exported.size} bytes, sha256 {exported.sha256})",
                at=utcnow(),
                key_id=actor.key_id,
                key_name=actor.key_name,
            )
        )
    log.info("evidence of incident %s exported by %s (sha256 %s)", incident_id, actor.name, exported.sha256)
    return exported
