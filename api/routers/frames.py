"""`GET /v1/cameras/{id}/frame.jpg`: a camera's current picture, the zone editor's background (operator role:
the picture shows what the camera's source delivers, and who edits zones needs it).

The latest frame the camera's pipeline analysed comes from the app context's frame provider (`AppContext.frames`,
filled by `EmbeddedService` from its worker). A camera that is not running here but reads a video file shows that
file's first frame (opened like every camera source: FFmpeg limited to the file protocol), so zones can be drawn
before any worker runs; a stream URL that no worker here runs is 404 "camera not running" (a distributed API process
has no frames).
"""

from __future__ import annotations

import logging
from typing import Annotated

import av
import av.error
import numpy as np
import numpy.typing as npt
from fastapi import APIRouter, HTTPException, Query, Request, Response, status

from api.deps import CamerasDep, CtxDep, OperatorKey
from api.routers.cameras import NOT_FOUND, CameraId, load_camera, load_camera_for
from pipelines.config.camera import is_url
from vision.media.snapshot import encode_jpeg
from vision.sources import SourceConfig, SourceError
from vision.sources.media import describe, open_input

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/cameras", tags=["cameras"])

JPEG_QUALITY = 85
FRAME_SOURCE_HEADER = "X-Frame-Source"  # live (last analysed frame) | file (first frame of the video file)
_FIRST_FRAME = SourceConfig(analysis_fps=None, skip_nonref="off", ring_seconds=0)


def first_frame(path: str) -> npt.NDArray[np.uint8] | None:
    """The first decodable frame of a video file as RGB, or None when the file cannot be read."""
    try:
        container, stream = open_input(path, _FIRST_FRAME)
        with container:
            for frame in container.decode(stream):
                return np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8)
    except (SourceError, av.error.FFmpegError, OSError) as exc:
        log.warning("frame.jpg: cannot decode %s: %s", describe(path), exc)
    return None


def camera_frame(
    request: Request,
    camera_id: CameraId,
    key: OperatorKey,
    ctx: CtxDep,
    cameras: CamerasDep,
    max_side: Annotated[int | None, Query(ge=64, le=8192, description="Downscale so the longest side fits")] = None,
) -> Response:
    """The latest analysed frame of the camera (JPEG); the first frame of its video file when it is not running.

    `X-Frame-Source` says which: `live` or `file`. 404 for an unknown camera, a camera outside the key's sites and a
    stream camera no worker in this process runs. HEAD answers the headers of the GET without the picture.
    """
    if key.scoped:
        load_camera_for(cameras, camera_id, key)
    image = ctx.frames(camera_id) if ctx.frames is not None else None
    source = "live"
    if image is None:
        camera = load_camera(cameras, camera_id).config
        if is_url(camera.streams.detect) and not camera.streams.detect.lower().startswith("file:"):
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"camera {camera_id!r} not running (no frame yet)")
        image = first_frame(camera.detect_source)
        if image is None:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND,
                f"camera {camera_id!r} not running and its video file {camera.streams.detect!r} cannot be read",
            )
        source = "file"
    body = encode_jpeg(image, quality=JPEG_QUALITY, max_side=max_side)
    headers = {FRAME_SOURCE_HEADER: source, "Cache-Control": "no-store"}
    if request.method == "HEAD":  # the GET's Content-Length, no body
        return Response(media_type="image/jpeg", headers={**headers, "Content-Length": str(len(body))})
    return Response(body, media_type="image/jpeg", headers=headers)


for _method, _name in (("GET", "camera_frame"), ("HEAD", "camera_frame_head")):
    router.add_api_route(
        "/{camera_id}/frame.jpg",
        camera_frame,
        methods=[_method],
        name=_name,
        response_class=Response,
        responses={200: {"content": {"image/jpeg": {}}}, **NOT_FOUND},
    )
