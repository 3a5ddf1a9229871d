"""API keys (admin for all sites): create (the key is shown once), list, delete.

Managing keys is a fleet-wide power: a site-scoped key, even an admin one, gets 403 here, so a site manager can never
mint a key for another site or widen its own scope. The last admin key for all sites cannot be deleted (409): without
it nobody could manage keys through the API.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, HTTPException, Response, status
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from api.auth import Role
from api.deps import AllSitesAdminKey, StoreDep
from api.schemas import Problem
from api.store import keys
from api.store.models import ApiKey

router = APIRouter(prefix="/v1/keys", tags=["keys"])

SiteName = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f]+$")]


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role
    name: str = Field(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f]+$")
    sites: list[SiteName] | None = Field(
        default=None,
        min_length=1,
        max_length=1000,
        description="Sites the key may see (its scope); leave out for every site. An empty list is refused, so a "
        "client cannot widen a key to every site by sending nothing by mistake.",
    )


class KeyOut(BaseModel):
    id: str
    name: str
    role: str
    sites: list[str] | None = Field(description="The key's sites; null = every site")
    prefix: str = Field(description="First characters of the key, to recognise it")
    created_at: datetime

    @classmethod
    def of(cls, row: ApiKey) -> KeyOut:
        return cls(
            id=row.id, name=row.name, role=row.role, sites=row.sites, prefix=row.prefix, created_at=row.created_at
        )


class KeyCreated(KeyOut):
    key: str = Field(description="The API key. Shown only in this response; store it now")


@router.post("", response_model=KeyCreated, status_code=status.HTTP_201_CREATED)
def create(body: KeyCreate, _key: AllSitesAdminKey, store: StoreDep) -> KeyCreated:
    with store.session() as session:
        row, plain = keys.create_key(session, role=body.role.value, name=body.name, sites=body.sites)
        return KeyCreated(**KeyOut.of(row).model_dump(), key=plain)


@router.get("", response_model=list[KeyOut])
def list_(_key: AllSitesAdminKey, store: StoreDep) -> list[KeyOut]:
    with store.read() as session:
        return [KeyOut.of(r) for r in keys.list_keys(session)]


@router.delete(
    "/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={404: {"model": Problem}, 409: {"model": Problem, "description": "The last admin key for all sites"}},
)
def delete(key_id: str, _key: AllSitesAdminKey, store: StoreDep) -> Response:
    """Revoke a key at once. An admin may delete its own key only while another admin key for all sites remains."""
    try:
        with store.session() as session:
            found = keys.delete_key(session, key_id)
    except keys.LastAdminKey as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    if not found:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"key {key_id!r} not found")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
