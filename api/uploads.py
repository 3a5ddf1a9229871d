"""Reading one file upload (multipart/form-data) with a size limit enforced while the body streams in.

FastAPI's `UploadFile` parameters parse the whole body (spooling it to disk) before the endpoint, and before its
auth dependency, runs; so the detect endpoint reads the body itself, after authentication: a declared
Content-Length over the limit is refused before a byte is read, and a body that streams past the limit (chunked,
or lying about its length) is cut off at the limit. Starlette's own `MultiPartParser` does the parsing; file data
spools to a temporary file past 1 MB.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field

from fastapi import Request, status
from python_multipart.multipart import parse_options_header
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

#: Room for the multipart boundaries, part headers and the small text fields, on top of the file size limit.
FORM_OVERHEAD_BYTES = 64 * 1024
MAX_FIELD_BYTES = 1024
MAX_FIELDS = 16


class UploadError(Exception):
    """The upload cannot be accepted; `status_code` and a reason for the client."""

    def __init__(self, status_code: int, reason: str) -> None:
        super().__init__(reason)
        self.status_code = status_code
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Upload:
    data: bytes
    filename: str | None
    fields: dict[str, str] = field(default_factory=dict)


class BodyTooLarge(Exception):
    """A streamed body passed its byte limit (`limited_stream`)."""


async def limited_stream(stream: AsyncIterator[bytes], limit: int) -> AsyncGenerator[bytes, None]:
    seen = 0
    async for chunk in stream:
        seen += len(chunk)
        if seen > limit:
            raise BodyTooLarge
        yield chunk


def _too_large(max_bytes: int) -> UploadError:
    return UploadError(
        status.HTTP_413_CONTENT_TOO_LARGE, f"upload too large: the limit is {max_bytes} bytes (max_upload_bytes)"
    )


def _check_headers(request: Request, max_bytes: int) -> None:
    media_type, _params = parse_options_header(request.headers.get("content-type", ""))
    if media_type != b"multipart/form-data":
        raise UploadError(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            "send the image as multipart/form-data with the image in the field `file`",
        )
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > max_bytes + FORM_OVERHEAD_BYTES:
        raise _too_large(max_bytes)


async def read_upload(request: Request, *, max_bytes: int, file_field: str = "file") -> Upload:
    """The file in `file_field` (at most `max_bytes`) and the text fields of a multipart request. Raises UploadError."""
    _check_headers(request, max_bytes)
    parser = MultiPartParser(
        request.headers,
        limited_stream(request.stream(), max_bytes + FORM_OVERHEAD_BYTES),
        max_files=1,
        max_fields=MAX_FIELDS,
        max_part_size=MAX_FIELD_BYTES,
    )
    try:
        form = await parser.parse()
    except BodyTooLarge:
        raise _too_large(max_bytes) from None
    except MultiPartException as exc:
        raise UploadError(status.HTTP_400_BAD_REQUEST, f"malformed multipart body: {exc.message}") from None
    try:
        upload = form.get(file_field)
        if not isinstance(upload, UploadFile):
            reason = (
                f"form field `{file_field}` must be a file part (with a filename)"
                if upload is not None
                else f"missing form field `{file_field}` (the image)"
            )
            raise UploadError(status.HTTP_422_UNPROCESSABLE_CONTENT, reason)
        if upload.size is not None and upload.size > max_bytes:
            raise _too_large(max_bytes)
        data = await upload.read()
        fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
        return Upload(data=data, filename=upload.filename, fields=fields)
    finally:
        await form.close()
