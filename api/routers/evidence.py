"""Evidence for inspectors: the public keys evidence is signed with, and one incident's evidence bundle.

`GET /v1/evidence/public-key` is public: anyone who verifies evidence needs the keys, and they are no secret. It
lists the current key and those kept from earlier rotations (the `*.pub.pem` beside the signing key), so evidence
signed before a rotation stays verifiable. `GET /v1/evidence/checkpoints` lists the chain heads the store recorded
(keys for all sites). `GET /v1/incidents/{id}/evidence.zip` needs an operator key (a site-scoped
key gets 404 for another site's incident, like an unknown one) and is recorded in the incident's audit trail.
"""

from __future__ import annotations

import os
import tempfile
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field, JsonValue
from sqlalchemy import select
from starlette.background import BackgroundTask

from api.deps import AllSitesViewerKey, OperatorKey, SettingsDep, StoreDep
from api.evidence_export import NoEvidence, export_incident
from api.jsontypes import Responses
from api.schemas import Problem
from api.store.handling import Actor, IncidentNotFound
from api.store.models import EvidenceCheckpoint
from pipelines.worker.evidence_chain import trusted_keys
from vision.media.signing import ALG

router = APIRouter(tags=["evidence"])


class PublicKeyOut(BaseModel):
    key_id: str = Field(description="First 16 hex digits of the sha256 of the raw public key; manifests name it")
    alg: str = ALG
    pem: str = Field(description="SubjectPublicKeyInfo PEM, for `openssl pkeyutl -verify -pubin -inkey`")
    current: bool = Field(description="The key new evidence is signed with")


class PublicKeysOut(BaseModel):
    current: str | None = Field(description="Key id new evidence is signed with; null: no signing key is set")
    keys: list[PublicKeyOut]


@router.get("/v1/evidence/public-key", response_model=PublicKeysOut)
def public_key(settings: SettingsDep) -> PublicKeysOut:
    signer = settings.evidence_signer()
    current = signer.key_id if signer is not None else None
    keys = [PublicKeyOut(key_id=k, pem=pem, current=k == current) for k, pem in trusted_keys(settings).pems().items()]
    return PublicKeysOut(current=current, keys=keys)


class CheckpointOut(BaseModel):
    id: int
    chain: str = Field(description="The evidence chain (`main`, a worker id, `replay`)")
    seq: int = Field(description="Sequence number of the chain's head entry")
    entry_sha256: str = Field(description="sha256 of the head entry's canonical JSON")
    entry: dict[str, JsonValue] = Field(description="The head entry as written, with its Ed25519 signature")
    created_at: datetime = Field(description="When the store recorded it")


@router.get("/v1/evidence/checkpoints", response_model=list[CheckpointOut])
def checkpoints(
    _key: AllSitesViewerKey,
    store: StoreDep,
    chain: Annotated[str | None, Query(max_length=64, description="Only this chain")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[CheckpointOut]:
    """Signed heads of the evidence chains the store recorded, newest first (also sent as the webhook event
    `evidence.checkpoint`). A head entry names incidents and cameras of every site: keys for all sites only."""
    query = select(EvidenceCheckpoint).order_by(EvidenceCheckpoint.id.desc()).limit(limit)
    if chain is not None:
        query = query.where(EvidenceCheckpoint.chain == chain)
    with store.read() as session:
        return [
            CheckpointOut(
                id=r.id,
                chain=r.chain,
                seq=r.seq,
                entry_sha256=r.entry_sha256,
                entry=dict(r.entry),
                created_at=r.created_at,
            )
            for r in session.scalars(query)
        ]


ZIP_RESPONSES: Responses = {
    200: {"content": {"application/zip": {}}},
    404: {"model": Problem, "description": "Unknown incident"},
    409: {"model": Problem, "description": "No complete evidence yet (open incident) or none left (retention)"},
}


@router.get("/v1/incidents/{incident_id}/evidence.zip", response_class=FileResponse, responses=ZIP_RESPONSES)
def evidence_zip(incident_id: str, key: OperatorKey, store: StoreDep, settings: SettingsDep) -> FileResponse:
    """The incident's evidence bundle: clips, snapshots, signed manifest, public key, chain entries, README with an
    offline verification recipe. Recorded in the incident's audit trail (action `export`)."""
    actor = Actor(name=key.name, key_id=key.key_id, key_name=key.name, sites=key.sites)
    fd, path = tempfile.mkstemp(prefix="safewatch-export-", suffix=".zip")
    try:
        with os.fdopen(fd, "wb") as out:
            export_incident(store, settings, incident_id, actor, out)
    except IncidentNotFound as exc:
        os.unlink(path)
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"incident {incident_id!r} not found") from exc
    except NoEvidence as exc:
        os.unlink(path)
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    except BaseException:
        os.unlink(path)
        raise
    return FileResponse(
        path,
        media_type="application/zip",
        filename=f"evidence-{incident_id}.zip",
        background=BackgroundTask(os.unlink, path),
    )
