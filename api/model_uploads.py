"""Reading a model upload (`POST /v1/models`, multipart/form-data): the ONNX file in `file`, the card YAML in `card`
(a file part), an optional `sha256` text field (what the sender computed, so bytes changed on the way are refused).

Like `api.uploads` (the detect upload) the body is read after authentication, a declared Content-Length over the
limit is refused before a byte is read, and a body that streams past it is cut off. Starlette's parser spools file
parts to disk past 1 MB, and the ONNX part is copied to a temporary file in `dest_dir` (the model store's directory,
so the stored file is a rename away): a model is never held in memory whole.
"""

from __future__ import annotations

import pathlib
import shutil
import tempfile
from dataclasses import dataclass

import anyio.to_thread
from fastapi import Request, status
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser

from api.uploads import FORM_OVERHEAD_BYTES, MAX_FIELD_BYTES, MAX_FIELDS, BodyTooLarge, UploadError, limited_stream

MAX_CARD_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class ModelUpload:
    onnx: pathlib.Path  # a temporary file: the caller moves or deletes it
    card: str
    sha256: str | None


def _too_large(max_bytes: int) -> UploadError:
    return UploadError(
        status.HTTP_413_CONTENT_TOO_LARGE, f"upload too large: the limit is {max_bytes} bytes (max_model_bytes)"
    )


def _check_headers(request: Request, limit: int, max_bytes: int) -> None:
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise UploadError(
            status.HTTP_415_UNSUPPORTED_MEDIA_TYPE,
            "send multipart/form-data: the ONNX file in the field `file`, the model card YAML in the field `card`",
        )
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise _too_large(max_bytes)


def _part(form_value: object, name: str, what: str) -> UploadFile:
    if not isinstance(form_value, UploadFile):
        missing = form_value is None
        reason = f"missing form field `{name}` ({what})" if missing else f"form field `{name}` must be a file part"
        raise UploadError(status.HTTP_422_UNPROCESSABLE_CONTENT, reason)
    return form_value


async def read_model_upload(request: Request, *, max_bytes: int, dest_dir: pathlib.Path) -> ModelUpload:
    """The upload (module docs); raises UploadError (413, 415, 400, 422)."""
    limit = max_bytes + MAX_CARD_BYTES + FORM_OVERHEAD_BYTES
    _check_headers(request, limit, max_bytes)
    parser = MultiPartParser(
        request.headers,
        limited_stream(request.stream(), limit),
        max_files=2,
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
        onnx = _part(form.get("file"), "file", "the ONNX model")
        card = _part(form.get("card"), "card", "the model card YAML")
        if onnx.size is not None and onnx.size > max_bytes:
            raise _too_large(max_bytes)
        if card.size is not None and card.size > MAX_CARD_BYTES:
            raise UploadError(status.HTTP_413_CONTENT_TOO_LARGE, f"card too large: the limit is {MAX_CARD_BYTES} bytes")
        try:
            text = (await card.read()).decode("utf-8")
        except UnicodeDecodeError:
            raise UploadError(status.HTTP_422_UNPROCESSABLE_CONTENT, "card: not UTF-8 text") from None
        sha = form.get("sha256")
        await onnx.seek(0)
        path = await anyio.to_thread.run_sync(_spool, onnx, dest_dir)
        return ModelUpload(path, text, sha.strip().lower() if isinstance(sha, str) else None)
    finally:
        await form.close()


def _spool(part: UploadFile, dest_dir: pathlib.Path) -> pathlib.Path:
    dest_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=dest_dir, prefix=".upload-", suffix=".onnx", delete=False) as out:
        shutil.copyfileobj(part.file, out, 1 << 20)
    return pathlib.Path(out.name)
