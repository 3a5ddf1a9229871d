"""Pushed models (model rollout): push a version, list the catalogue and what each camera runs, delete a model.

`POST /v1/models` (admin for all sites; multipart: `file` = ONNX, `card` = model card YAML, optional `sha256`)
validates the model (`vision.detect.model_store.validate_model`: the card parses, the ONNX loads, its classes agree
with the card, one inference on a blank image runs), stores it content-addressed by sha256 in the model store
(`<media_root>/models`) and publishes it in the catalogue (`pipelines.distributed.model_catalog`); the workers
running a camera that uses the name fetch it, verify the hash and swap it in between frames. Corrupt files, class
mismatches and hash mismatches are 422 with the reason, an oversized file 413.

`GET /v1/models` (viewer for all sites): every pushed model with its versions, newest first, and which cameras run
which version (as their workers report it), plus the shipped model cards' own sha256. `DELETE /v1/models/{name}`
(admin for all sites) drops every pushed version of a name; 409 while a camera runs one of them or its config pins
one. Models are fleet-wide, so a key scoped to some sites gets 403 on all three.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any

import anyio.to_thread
from fastapi import APIRouter, HTTPException, Path, Request, Response, status
from pydantic import BaseModel, Field

from api.deps import AllSitesAdminKey, AllSitesViewerKey, CtxDep
from api.model_uploads import read_model_upload
from api.schemas import Problem
from api.uploads import UploadError
from pipelines.distributed.model_catalog import ModelVersion, new_version
from vision.detect.model_store import ModelRejected, ModelStore, validate_model

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/models", tags=["models"])

ModelName = Annotated[str, Path(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=128, description="the card's name")]


class VersionOut(BaseModel):
    sha256: str
    size: int = Field(description="bytes of the ONNX file")
    pushed_at: datetime
    provides: list[str] = Field(description="semantic labels the model emits")
    cameras: list[str] = Field(description="cameras running this version now (their workers' reports)")

    @classmethod
    def of(cls, v: ModelVersion, cameras: list[str]) -> VersionOut:
        provides = sorted(set(v.card.get("labels", {}).values()))
        return cls(sha256=v.sha256, size=v.size, pushed_at=v.pushed_at, provides=provides, cameras=cameras)


class ModelOut(BaseModel):
    name: str
    shipped_sha256: str | None = Field(description="sha256 of the models directory's own file (its card), if any")
    versions: list[VersionOut] = Field(description="pushed versions, newest first")
    errors: dict[str, str] = Field(default_factory=dict, description="camera id → why it refused a version")


_FORM: dict[str, Any] = {  # the body is read by the route itself (api/model_uploads.py), after authentication
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file", "card"],
                    "properties": {
                        "file": {"type": "string", "format": "binary", "description": "the ONNX model"},
                        "card": {"type": "string", "format": "binary", "description": "the model card (YAML)"},
                        "sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$", "description": "the file's sha256"},
                    },
                }
            }
        },
    }
}


def _store(ctx: CtxDep) -> ModelStore:
    return ModelStore(ctx.settings.model_store_dir)


@router.post(
    "",
    response_model=ModelOut,
    status_code=status.HTTP_201_CREATED,
    responses={
        400: {"model": Problem, "description": "Malformed multipart body"},
        413: {"model": Problem},
        415: {"model": Problem},
        422: {"model": Problem},
    },
    openapi_extra=_FORM,
)
async def push(request: Request, _key: AllSitesAdminKey, ctx: CtxDep) -> ModelOut:
    """Validate, store and publish a model version (module docs)."""
    store = _store(ctx)
    try:
        upload = await read_model_upload(request, max_bytes=ctx.settings.max_model_bytes, dest_dir=store.root)
    except UploadError as exc:
        raise HTTPException(exc.status_code, exc.reason) from None
    try:
        card = await anyio.to_thread.run_sync(lambda: validate_model(upload.onnx, upload.card, sha256=upload.sha256))
        assert card.sha256 is not None
        size = upload.onnx.stat().st_size
        await anyio.to_thread.run_sync(store.add, upload.onnx, card)
    except ModelRejected as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, exc.reason) from None
    finally:
        upload.onnx.unlink(missing_ok=True)
    ctx.models.publish(new_version(card.name, card.sha256, size, card.model_dump(mode="json")))
    log.info("model %s %s pushed (%d bytes)", card.name, card.sha256[:12], size)
    return _listing(ctx, only=card.name)[0]


@router.get("", response_model=list[ModelOut])
def list_(_key: AllSitesViewerKey, ctx: CtxDep) -> list[ModelOut]:
    return _listing(ctx)


@router.delete(
    "/{name}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={404: {"model": Problem}, 409: {"model": Problem, "description": "A camera runs or pins a version"}},
)
def delete(name: ModelName, _key: AllSitesAdminKey, ctx: CtxDep) -> Response:
    versions = ctx.models.versions().get(name)
    if not versions:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no pushed model {name!r}")
    users = sorted(_users(ctx, name, versions))
    if users:
        raise HTTPException(
            status.HTTP_409_CONFLICT, f"model {name!r} is in use by camera(s) {', '.join(users)}; change them first"
        )
    gone = ctx.models.remove(name)
    kept = {v.sha256 for vs in ctx.models.versions().values() for v in vs}
    store = _store(ctx)
    for v in gone:
        if v.sha256 not in kept:
            store.remove(v.sha256)
    log.info("model %s deleted (%d versions)", name, len(gone))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _users(ctx: CtxDep, name: str, versions: list[ModelVersion]) -> set[str]:
    """Cameras that run a pushed version of `name` (their workers' reports) or whose config pins one."""
    shas = {v.sha256 for v in versions}
    users = {cid for cid, r in ctx.models.running().items() if r.models.get(name) in shas}
    cameras, _problems = ctx.cameras.scan()
    for stored in cameras:
        pin = stored.config.model_pins.get(name)
        if pin is not None and any(sha.startswith(pin) for sha in shas):
            users.add(stored.config.id)
    return users


def _listing(ctx: CtxDep, only: str | None = None) -> list[ModelOut]:
    catalogue = ctx.models.versions()
    running = ctx.models.running()
    out = []
    for name in sorted(catalogue):
        if only is not None and name != only:
            continue
        shipped = ctx.registry.cards.get(name)
        versions = [
            VersionOut.of(v, sorted(c for c, r in running.items() if r.models.get(name) == v.sha256))
            for v in catalogue[name]
        ]
        marks = [name, *(v.sha256[:12] for v in catalogue[name])]
        errors = {c: r.error for c, r in running.items() if r.error and any(m in r.error for m in marks)}
        out.append(ModelOut(name=name, shipped_sha256=shipped.sha256 if shipped else None, versions=versions,
                            errors=errors))  # fmt: skip
    return out
