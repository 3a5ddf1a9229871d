"""Evidence for inspectors: the public keys evidence is signed with, and one incident's evidence bundle.

`GET /v1/evidence/public-key` is public: anyone who verifies evidence needs the keys, and they are no secret. It
lists the current key and those kept from earlier rotations (the `*.pub.pem` beside the signing key), so evidence
signed before a rotation stays verifiable. `GET /v1/incidents/{id}/evidence.zip` needs an operator key (a site-scoped
key gets 404 for another site's incident, like an unknown one) and is recorded in the incident's audit trail.
"""

from __future__ import annotations

import os
import tempfile

from fastapi import APIRouter, HTTPException, status
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask

from api.deps import OperatorKey, SettingsDep, StoreDep
from api.evidence_export import NoEvidence, export_incident
from api.jsontypes import Responses
from api.schemas import Problem
from api.store.handling import Actor, IncidentNotFound
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
