"""`POST /v1/detect`: one uploaded image → detections, and with `camera_id` the violations of that camera's rules.

The body is multipart/form-data: `file` (the image; at most `max_upload_bytes`, refused with 413 while it streams
in, and received within `detect_upload_timeout_s`, else 408), and optional text fields `camera_id`, `model`, `conf`.
Models: `model` when given, else the models the camera's rules need (`pipelines.camera.assemble.resolve_models`), else
the registry's default person model. Detectors are loaded once per app (cached in the app's `ModelRegistry`). Rules
are evaluated with single-frame semantics (`pipelines.camera.single_frame`), which the response states.

Load: the request takes a slot of the app's `DetectPool` before its body is read, and decoding, model choice and
inference run on the pool's own threads, never on the event loop nor on the thread pool the other routes share;
with every slot taken the answer is 429 with `Retry-After`. Images larger than `detect_max_side` are decoded reduced
(`vision.detect.images.decode_image`) and every box is scaled back to the uploaded image's pixels; what is decoded
is capped at `detect_max_pixels`. Any decoder failure is a 4xx, never a 500.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Request, status
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api.context import AppContext
from api.deps import CtxDep, PlatformKey, Principal
from api.detect_pool import DetectBusy
from api.jsontypes import Responses
from api.routers.cameras import load_camera_for
from api.schemas import Problem
from api.settings import Settings
from api.uploads import Upload, UploadError, read_upload
from pipelines.camera.assemble import PipelineConfigError, resolve_models
from pipelines.camera.single_frame import NOTE, detect_image, detections_json, evaluate_single_frame, violations_json
from pipelines.config.camera import CameraConfig
from vision.detect.errors import ImageError, ModelError
from vision.detect.images import DecodedImage, decode_image
from vision.detect.registry import ModelRegistry
from vision.types import Detections

router = APIRouter(prefix="/v1", tags=["detect"])

_ERRORS: Responses = {
    400: {"model": Problem, "description": "Empty or malformed upload"},
    404: {"model": Problem, "description": "Unknown camera_id, or a camera outside a site-scoped key's sites"},
    408: {"model": Problem, "description": "The body was not received within detect_upload_timeout_s"},
    409: {"model": Problem, "description": "The camera's config file is invalid"},
    413: {"model": Problem, "description": "Upload larger than max_upload_bytes"},
    415: {"model": Problem, "description": "Not multipart/form-data, or the file is not an image"},
    422: {"description": "Bad form field, truncated/corrupt image, image with too many pixels, unusable model"},
    429: {"model": Problem, "description": "Every detect slot is busy; retry after the `Retry-After` seconds"},
    503: {"model": Problem, "description": "No usable detection model on this server"},
}
_FORM: dict[str, Any] = {  # FastAPI's type of `openapi_extra` (invariant dict, so Any must match)
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {"type": "string", "format": "binary", "description": "JPEG, PNG, WebP, BMP, …"},
                        "camera_id": {
                            "type": "string",
                            "pattern": "^[a-z0-9_-]*$",
                            "maxLength": 64,
                            "description": "Apply this camera's zones and rules (empty = absent, as an HTML form "
                            "sends an unfilled field)",
                        },
                        "model": {
                            "type": "string",
                            "maxLength": 128,
                            "description": "Model name (`safewatch models list`; empty = absent)",
                        },
                        "conf": {"type": "number", "minimum": 0, "maximum": 1, "description": "Confidence threshold"},
                    },
                }
            }
        },
    }
}


class DetectParams(BaseModel):
    """The text fields of the form."""

    model_config = ConfigDict(extra="forbid")

    camera_id: Annotated[str, Field(pattern=r"^[a-z0-9_-]+$", max_length=64)] | None = None
    model: Annotated[str, Field(min_length=1, max_length=128)] | None = None
    conf: Annotated[float, Field(ge=0.0, le=1.0)] | None = None


class ImageOut(BaseModel):
    width: int
    height: int
    filename: str | None = None


class DetectionOut(BaseModel):
    label: str
    class_name: str
    confidence: float
    box: list[float] = Field(description="[x1, y1, x2, y2] in pixels of the image as uploaded (EXIF-rotated)")


class ViolationOut(BaseModel):
    rule: str = Field(description="Rule type")
    rule_key: str = Field(description="The rule's name, or `<index>:<type>`")
    zone: str | None = Field(description="Zone name; null = the whole frame")
    labels: list[str]
    track_ids: list[int] | None = Field(default=None, description="Only when tracked (never on a single image)")
    confidence: float
    boxes: list[list[float]] = Field(description="Evidence boxes [x1, y1, x2, y2]")


class RuleOut(BaseModel):
    rule_key: str
    rule: str
    evaluated: bool
    note: str | None


class DetectResponse(BaseModel):
    image: ImageOut
    models: list[str]
    detections: list[DetectionOut]
    camera_id: str | None = None
    violations: list[ViolationOut] | None = Field(default=None, description="With camera_id only")
    rules: list[RuleOut] | None = Field(default=None, description="With camera_id: how each rule was evaluated")
    note: str | None = Field(default=None, description="With camera_id: the single-frame semantics")


def _params(fields: dict[str, str]) -> DetectParams:
    try:
        return DetectParams.model_validate({k: v for k, v in fields.items() if v != ""})
    except ValidationError as exc:
        detail = [
            {"path": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors(include_url=False)
        ]
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail) from None


def _check_model(registry: ModelRegistry, name: str) -> str:
    try:
        built = registry.is_built(name)
    except ModelError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    if not built:
        reason = f"model {name!r} is not built; build it with `safewatch models build {name}`"
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, reason)
    return name


def choose_models(registry: ModelRegistry, camera: CameraConfig | None, model: str | None) -> list[str]:
    """`model`, else the models the camera's rules need, else the default person model (HTTP errors when unusable)."""
    if model is not None:
        return [_check_model(registry, model)]
    if camera is not None:
        try:
            names = resolve_models(camera, registry)
        except PipelineConfigError as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "; ".join(exc.problems)) from None
        if names:
            return names
    try:
        name = registry.default_model("person")
    except ModelError as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, str(exc)) from None
    if not registry.is_built(name):
        reason = f"the default model {name!r} is not built; run `safewatch models build {name}` on the server"
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, reason)
    return [name]


def _image_error(exc: ImageError) -> HTTPException:
    message = str(exc)
    if "not an image" in message:
        return HTTPException(status.HTTP_415_UNSUPPORTED_MEDIA_TYPE, message)
    if "empty file" in message:
        return HTTPException(status.HTTP_400_BAD_REQUEST, message)
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, message)  # truncated, corrupt, too many pixels


def analyse(ctx: AppContext, key: Principal, upload: Upload, params: DetectParams) -> DetectResponse:
    """Load the camera (404 outside `key`'s sites), choose the models, decode, detect, evaluate (blocking: run it on
    the detect pool)."""
    camera = load_camera_for(ctx.cameras, params.camera_id, key).config if params.camera_id is not None else None
    names = choose_models(ctx.registry, camera, params.model)
    try:
        image = decode_image(
            upload.data,
            name=upload.filename or "upload",
            max_side=ctx.settings.detect_max_side,
            max_decoded_pixels=ctx.settings.detect_max_pixels,
        )
        detectors = [ctx.registry.detector(name) for name in names]
    except ImageError as exc:
        raise _image_error(exc) from None
    except ModelError as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"cannot load the model: {exc}") from None
    det = detect_image(detectors, image.pixels, params.conf, on_inference=ctx.metrics.observe_inference)
    response = DetectResponse(
        image=ImageOut(width=image.width, height=image.height, filename=upload.filename),
        models=names,
        detections=[DetectionOut.model_validate(d) for d in detections_json(image.to_original(det))],
    )
    if camera is not None:
        _add_violations(response, camera, image, det)
    return response


def _add_violations(response: DetectResponse, camera: CameraConfig, image: DecodedImage, det: Detections) -> None:
    """The camera's rules on the decoded image; their evidence boxes in the uploaded image's pixels."""
    violations, reports = evaluate_single_frame(camera, image.pixels, det)
    scaled = [dataclasses.replace(v, evidence=image.to_original(v.evidence)) for v in violations]
    response.camera_id = camera.id
    response.violations = [ViolationOut.model_validate(v) for v in violations_json(scaled)]
    response.rules = [RuleOut(rule_key=r.rule_key, rule=r.rule, evaluated=r.evaluated, note=r.note) for r in reports]
    response.note = NOTE


@router.post(
    "/detect",
    response_model=DetectResponse,
    response_model_exclude_unset=True,
    responses=_ERRORS,
    openapi_extra=_FORM,
)
async def detect(request: Request, key: PlatformKey, ctx: CtxDep) -> DetectResponse:
    """Detections in one image; with `camera_id`, the violations its rules report on this image alone."""
    try:
        with ctx.detect.admit():
            upload = await _read(request, ctx.settings)
            params = _params(upload.fields)
            return await ctx.detect.run(analyse, ctx, key, upload, params)
    except DetectBusy as exc:
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS, str(exc), headers={"Retry-After": str(exc.retry_after_s)}
        ) from None


async def _read(request: Request, settings: Settings) -> Upload:
    """The upload, within `detect_upload_timeout_s`: a trickling body must not hold a detect slot for long."""
    try:
        async with asyncio.timeout(settings.detect_upload_timeout_s):
            upload = await read_upload(request, max_bytes=settings.max_upload_bytes)
    except UploadError as exc:
        raise HTTPException(exc.status_code, exc.reason) from None
    except TimeoutError:
        reason = f"the upload was not received within {settings.detect_upload_timeout_s:g} s (detect_upload_timeout_s)"
        raise HTTPException(status.HTTP_408_REQUEST_TIMEOUT, reason) from None
    if not upload.data:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "the uploaded file is empty (0 bytes)")
    return upload
