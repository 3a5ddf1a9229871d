"""Cameras: list, read, create/replace and delete the YAML configs in the config directory (incl. zones and rules).

The files are the source of truth (`api.camera_store`); workers watch the directory and pick changes up. PUT
validates exactly as the YAML loader does (422: `detail` = list of `{path, message}` with dotted field paths, as
`safewatch config validate` prints them) and checks that the built models provide every label the rules need.
Responses never contain stream credentials. `ETag` on GET/PUT; `If-Match` on PUT/DELETE guards against lost updates.
A site-scoped key sees and writes only its sites' cameras: another site's camera is 404 (as an unknown one), and a PUT
that would create a camera in, or move one to, another site is 404 too.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Body, Header, HTTPException, Response, status
from fastapi import Path as PathParam
from pydantic import BaseModel, Field

from api.auth import Role
from api.camera_store import (
    CameraFileInvalid,
    CameraNotFound,
    CameraStore,
    Check,
    FileTaken,
    PreconditionFailed,
    StoredCamera,
)
from api.deps import CamerasDep, OperatorKey, Principal, RegistryDep, SettingsDep, ViewerKey
from api.schemas import FieldProblem, Problem, ValidationProblems
from pipelines.camera.assemble import PipelineConfigError, resolve_models
from pipelines.config.camera import CameraConfig, ConfigError, ConfigProblem, StreamPolicy
from vision.detect.registry import ModelRegistry

router = APIRouter(prefix="/v1/cameras", tags=["cameras"])

CameraId = Annotated[
    str,
    PathParam(
        pattern=r"^[a-z0-9_-]+$",
        min_length=1,
        max_length=64,
        description="Camera id: lowercase letters, digits, '-' and '_'",
    ),
]
IfMatch = Annotated[str | None, Header(description="Only act when the current file has this ETag (lost updates)")]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": Problem, "description": "Unknown camera id"}}
INVALID_FILE: dict[int | str, dict[str, Any]] = {
    409: {"model": Problem, "description": "The camera's file is invalid (hand-edited) or its name is taken"}
}
PRECONDITION: dict[int | str, dict[str, Any]] = {412: {"model": Problem, "description": "If-Match did not match"}}
_RULE_PATH = re.compile(r"^(rules\.\d+|models)\b")

EXAMPLE: dict[str, Any] = {
    "site": "sip-plot-12",
    "name": "3号门 消防通道",
    "streams": {"detect": "rtsp://user:pass@cam1.example:554/sub"},
    "analysis_fps": 5,
    "zones": [{"name": "fire_lane", "kind": "fire_exit", "polygon": [[0.1, 0.5], [0.4, 0.5], [0.4, 0.9], [0.1, 0.9]]}],
    "rules": [{"type": "exit_blocked", "zones": ["fire_lane"], "dwell_seconds": 30}],
}


class FileProblem(FieldProblem):
    file: str = Field(description="File name in the config directory")


class CameraList(BaseModel):
    items: list[dict[str, Any]] = Field(description="Valid camera configs (defaults filled in, credentials redacted)")
    problems: list[FileProblem] = Field(description="Files the workers cannot load (invalid, duplicate id)")


def _config_out(camera: CameraConfig) -> dict[str, Any]:
    return camera.redacted()


def _not_found(camera_id: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"camera {camera_id!r} not found")


def _invalid_file(camera_id: str, exc: CameraFileInvalid) -> HTTPException:
    problems = "; ".join(f"{p.path}: {p.message}" if p.path else p.message for p in exc.problems)
    return HTTPException(
        status.HTTP_409_CONFLICT,
        f"camera {camera_id!r}: its config file {exc.path.name} is invalid ({problems}); "
        "fix the file or PUT a new config",
    )


def load_camera(cameras: CameraStore, camera_id: str) -> StoredCamera:
    """The stored camera, or HTTP 404 (unknown id) / 409 (its file is invalid)."""
    try:
        return cameras.get(camera_id)
    except CameraNotFound:
        raise _not_found(camera_id) from None
    except CameraFileInvalid as exc:
        raise _invalid_file(camera_id, exc) from None


def load_camera_for(cameras: CameraStore, camera_id: str, key: Principal) -> StoredCamera:
    """`load_camera` for `key`: 404 also when the camera is outside the key's sites. A scoped key gets 404 rather
    than 409 for an invalid file too: the site written in a file that does not load cannot be trusted."""
    try:
        stored = cameras.get(camera_id)
    except CameraNotFound:
        raise _not_found(camera_id) from None
    except CameraFileInvalid as exc:
        raise (_not_found(camera_id) if key.scoped else _invalid_file(camera_id, exc)) from None
    if not key.sees(stored.config.site):
        raise _not_found(camera_id)
    return stored


def _check_put_scope(cameras: CameraStore, camera_id: str, body: dict[str, Any], key: Principal) -> None:
    """A scoped key may replace only its sites' cameras and may not create or move one into another site (404)."""
    if not key.scoped:
        return
    try:
        current = cameras.get(camera_id).config.site
    except CameraNotFound:
        current = None  # a new camera: only its new site counts
    except CameraFileInvalid:
        raise _not_found(camera_id) from None
    site = body.get("site")
    if current is not None and not key.sees(current):
        raise _not_found(camera_id)
    if isinstance(site, str) and not key.sees(site):  # a missing or mistyped site fails validation (422)
        raise _not_found(camera_id)


def coverage_check(registry: ModelRegistry) -> Check:
    """The label-coverage check of `pipelines.camera.assemble.resolve_models`, as ConfigProblems (`rules.N` paths)."""

    def check(camera: CameraConfig) -> list[ConfigProblem]:
        try:
            resolve_models(camera, registry)
        except PipelineConfigError as exc:
            return [ConfigProblem("", _path_of(p), p) for p in exc.problems]
        return []

    return check


def _path_of(message: str) -> str:
    match = _RULE_PATH.match(message)
    return match.group(1) if match else ""


@router.get("", response_model=CameraList)
def list_cameras(key: ViewerKey, cameras: CamerasDep) -> CameraList:
    """Every camera in the config directory, and the problems of files the workers cannot load.

    A site-scoped key gets its sites' cameras and no problems (a file that does not load has no trustworthy site).
    """
    stored, problems = cameras.scan()
    return CameraList(
        items=[_config_out(s.config) for s in stored if key.sees(s.config.site)],
        problems=[]
        if key.scoped
        else [FileProblem(file=_file_name(p.file), path=p.path, message=p.message) for p in problems],
    )


def _file_name(file: str) -> str:
    return file.replace("\\", "/").rsplit("/", 1)[-1]


@router.get("/{camera_id}", responses={**NOT_FOUND, **INVALID_FILE})
def get_camera(camera_id: CameraId, key: ViewerKey, cameras: CamerasDep, response: Response) -> dict[str, Any]:
    """The camera's config, defaults filled in, stream credentials replaced by `***`."""
    stored = load_camera_for(cameras, camera_id, key)
    response.headers["ETag"] = stored.etag
    return _config_out(stored.config)


@router.put(
    "/{camera_id}",
    responses={
        201: {"description": "Created"},
        422: {"model": ValidationProblems, "description": "Invalid config: one entry per problem"},
        **INVALID_FILE,
        **PRECONDITION,
    },
)
def put_camera(
    camera_id: CameraId,
    body: Annotated[
        dict[str, Any],
        Body(
            description="The camera config as in camera_configs/*.yaml (`safewatch config schema`); `id` may be "
            "left out. Stream URLs sent back exactly as GET shows them (`rtsp://***@…`) keep the stored credentials.",
            examples=[EXAMPLE],
        ),
    ],
    key: OperatorKey,
    cameras: CamerasDep,
    registry: RegistryDep,
    settings: SettingsDep,
    response: Response,
    if_match: IfMatch = None,
) -> dict[str, Any]:
    """Create or replace `<config_dir>/<id>.yaml` (atomically); running workers pick the change up.

    Streams: video files under the media roots (`SAFEWATCH_MEDIA_ROOTS`) and `rtsp://`/`rtsps://` URLs; other
    schemes (http(s), rtmp, srt, tcp, udp, rtp, file) need an admin key. The camera's current streams may be kept.
    """
    _check_put_scope(cameras, camera_id, body, key)
    policy = StreamPolicy.api(settings.media_roots, admin=key.role.includes(Role.admin))
    try:
        stored, created = cameras.put(camera_id, body, policy=policy, check=coverage_check(registry), if_match=if_match)
    except ConfigError as exc:
        detail = [{"path": p.path, "message": p.message} for p in exc.problems]
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail) from None
    except PreconditionFailed:
        raise HTTPException(status.HTTP_412_PRECONDITION_FAILED, "If-Match does not match the current config") from None
    except FileTaken as exc:  # names the other camera: not for a scoped key
        raise (_not_found(camera_id) if key.scoped else HTTPException(status.HTTP_409_CONFLICT, str(exc))) from None
    response.headers["ETag"] = stored.etag
    if created:
        response.status_code = status.HTTP_201_CREATED
        response.headers["Location"] = f"/v1/cameras/{camera_id}"
    return _config_out(stored.config)


@router.delete("/{camera_id}", status_code=status.HTTP_204_NO_CONTENT, responses={**NOT_FOUND, **PRECONDITION})
def delete_camera(camera_id: CameraId, key: OperatorKey, cameras: CamerasDep, if_match: IfMatch = None) -> Response:
    """Remove the camera's file(s); its worker stops the camera."""
    if key.scoped:
        load_camera_for(cameras, camera_id, key)
    try:
        cameras.delete(camera_id, if_match=if_match)
    except CameraNotFound:
        raise _not_found(camera_id) from None
    except PreconditionFailed:
        raise HTTPException(status.HTTP_412_PRECONDITION_FAILED, "If-Match does not match the current config") from None
    return Response(status_code=status.HTTP_204_NO_CONTENT)
