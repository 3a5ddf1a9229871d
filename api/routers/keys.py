"""API keys (admin): create (the key is shown once), list, delete."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, HTTPException, Response, status
from pydantic import BaseModel, ConfigDict, Field

from api.auth import Role
from api.deps import AdminKey, StoreDep
from api.schemas import Problem
from api.store import keys
from api.store.models import ApiKey

router = APIRouter(prefix="/v1/keys", tags=["keys"])


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role
    name: str = Field(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f]+$")


class KeyOut(BaseModel):
    id: str
    name: str
    role: str
    prefix: str = Field(description="First characters of the key, to recognise it")
    created_at: datetime

    @classmethod
    def of(cls, row: ApiKey) -> KeyOut:
        return cls(id=row.id, name=row.name, role=row.role, prefix=row.prefix, created_at=row.created_at)


class KeyCreated(KeyOut):
    key: str = Field(description="The API key. Shown only in this response; store it now")


@router.post("", response_model=KeyCreated, status_code=status.HTTP_201_CREATED)
def create(body: KeyCreate, _key: AdminKey, store: StoreDep) -> KeyCreated:
    with store.session() as session:
        row, plain = keys.create_key(session, role=body.role.value, name=body.name)
        return KeyCreated(**KeyOut.of(row).model_dump(), key=plain)


@router.get("", response_model=list[KeyOut])
def list_(_key: AdminKey, store: StoreDep) -> list[KeyOut]:
    with store.read() as session:
        return [KeyOut.of(r) for r in keys.list_keys(session)]


@router.delete("/{key_id}", status_code=status.HTTP_204_NO_CONTENT, responses={404: {"model": Problem}})
def delete(key_id: str, _key: AdminKey, store: StoreDep) -> Response:
    with store.session() as session:
        if not keys.delete_key(session, key_id):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"key {key_id!r} not found")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
