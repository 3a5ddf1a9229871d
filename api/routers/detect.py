"""`POST /v1/detect`: one uploaded image → detections, and with `camera_id` the violations of that camera's rules.

The body is multipart/form-data: `file` (the image; at most `max_upload_bytes`, refused with 413 while it streams
in), and optional text fields `camera_id`, `model`, `conf`. Models: `model` when given, else the models the camera's
rules need (`pipelines.camera.assemble.resolve_models`), else the registry's default person model. Detectors are loaded
once per app (cached in the app's `ModelRegistry`); decoding and inference run in the thread pool, never on the
event loop. Rules are evaluated with single-frame semantics (`pipelines.camera.single_frame`), which the response
states.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Request, status
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from api.deps import CamerasDep, MetricsDep, PlatformKey, RegistryDep, SettingsDep
from api.jsontypes import Responses
from api.metrics import Metrics
from api.routers.cameras import load_camera
from api.schemas import Problem
from api.uploads import Upload, UploadError, read_upload
from pipelines.camera.assemble import PipelineConfigError, resolve_models
from pipelines.camera.single_frame import NOTE, detect_image, detections_json, evaluate_single_frame, violations_json
from pipelines.config.camera import CameraConfig
from vision.detect.errors import ImageError, ModelError
from vision.detect.images import load_image
from vision.detect.registry import ModelRegistry

router = APIRouter(prefix="/v1", tags=["detect"])

_ERRORS: Responses = {
    400: {"model": Problem, "description": "Empty or malformed upload"},
    404: {"model": Problem, "description": "Unknown camera_id"},
    409: {"model": Problem, "description": "The camera's config file is invalid"},
    413: {"model": Problem, "description": "Upload larger than max_upload_bytes"},
    415: {"model": Problem, "description": "Not multipart/form-data, or the file is not an image"},
    422: {"description": "Bad form field, truncated/corrupt image, image with too many pixels, unusable model"},
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
                            "pattern": "^[a-z0-9_-]+$",
                            "description": "Apply this camera's zones and rules",
                        },
                        "model": {"type": "string", "description": "Model name (`safewatch models list`)"},
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


def analyse(
    registry: ModelRegistry,
    names: list[str],
    upload: Upload,
    params: DetectParams,
    camera: CameraConfig | None,
    metrics: Metrics,
) -> DetectResponse:
    """Decode, detect, evaluate (blocking: run it in the thread pool)."""
    image = load_image(upload.data, name=upload.filename or "upload")
    detectors = [registry.detector(name) for name in names]
    det = detect_image(detectors, image, params.conf, on_inference=metrics.observe_inference)
    response = DetectResponse(
        image=ImageOut(width=int(image.shape[1]), height=int(image.shape[0]), filename=upload.filename),
        models=names,
        detections=[DetectionOut.model_validate(d) for d in detections_json(det)],
    )
    if camera is not None:
        violations, reports = evaluate_single_frame(camera, image, det)
        response.camera_id = camera.id
        response.violations = [ViolationOut.model_validate(v) for v in violations_json(violations)]
        response.rules = [
            RuleOut(rule_key=r.rule_key, rule=r.rule, evaluated=r.evaluated, note=r.note) for r in reports
        ]
        response.note = NOTE
    return response


@router.post(
    "/detect",
    response_model=DetectResponse,
    response_model_exclude_unset=True,
    responses=_ERRORS,
    openapi_extra=_FORM,
)
async def detect(
    request: Request,
    _key: PlatformKey,
    settings: SettingsDep,
    registry: RegistryDep,
    cameras: CamerasDep,
    metrics: MetricsDep,
) -> DetectResponse:
    """Detections in one image; with `camera_id`, the violations its rules report on this image alone."""
    try:
        upload = await read_upload(request, max_bytes=settings.max_upload_bytes)
    except UploadError as exc:
        raise HTTPException(exc.status_code, exc.reason) from None
    if not upload.data:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "the uploaded file is empty (0 bytes)")
    params = _params(upload.fields)
    camera = None
    if params.camera_id is not None:
        camera = (await run_in_threadpool(load_camera, cameras, params.camera_id)).config
    names = await run_in_threadpool(choose_models, registry, camera, params.model)
    try:
        return await run_in_threadpool(analyse, registry, names, upload, params, camera, metrics)
    except ImageError as exc:
        raise _image_error(exc) from None
    except ModelError as exc:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, f"cannot load the model: {exc}") from None
