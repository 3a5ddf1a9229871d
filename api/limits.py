"""Request body size limit: every request body but the detect upload is at most 1 MiB (413 otherwise).

The API takes small JSON documents (a camera config, a webhook, an incident note); without a limit one request could
make the server buffer and parse any amount of JSON. `BodyLimit` is a plain ASGI middleware, so it acts before
routing, authentication and JSON parsing: a declared `Content-Length` over the limit is refused before a byte of the
body is read; a body without one (`Transfer-Encoding: chunked`) is read up to the limit and refused as soon as it
goes past it, or handed to the app unchanged. `POST /v1/detect`, `PUT /v1/sites/{site}/map/image` and
`POST /v1/models` are exempt: they stream their multipart uploads under their own, larger limits (`api.uploads`,
`api.model_uploads`). The refusal has the API's usual problem shape (`api.schemas.Problem`).
"""

from __future__ import annotations

import logging
import re

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024
#: (method, path) of the routes that read and limit their bodies themselves.
EXEMPT: frozenset[tuple[str, str]] = frozenset({("POST", "/v1/detect"), ("POST", "/v1/models")})
#: The same for routes with a path parameter: (method, full-match pattern of the path).
EXEMPT_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (("PUT", re.compile(r"/v1/sites/[^/]+/map/image")),)


class BodyLimit:
    """ASGI middleware refusing request bodies over `max_bytes` with 413 (see the module docs)."""

    def __init__(
        self, app: ASGIApp, *, max_bytes: int = MAX_BODY_BYTES, exempt: frozenset[tuple[str, str]] = EXEMPT
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (scope["method"], scope["path"]) in self.exempt or _exempt_pattern(scope):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if declared is not None and declared.strip().isdigit():
            if int(declared) > self.max_bytes:
                await self._refuse(scope, receive, send, f"declared Content-Length {int(declared)}")
                return
            await self.app(scope, receive, send)
            return
        if b"transfer-encoding" not in headers:  # no body at all
            await self.app(scope, receive, send)
            return
        buffered, size = await self._read_up_to_limit(receive)
        if size > self.max_bytes:
            await self._refuse(scope, receive, send, "streamed body")
            return
        await self.app(scope, _replay(buffered, receive), send)

    async def _read_up_to_limit(self, receive: Receive) -> tuple[list[Message], int]:
        """The body's messages until it ends or passes the limit, and the bytes seen."""
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":  # the client went away
                return messages, size
            size += len(message.get("body", b""))
            if size > self.max_bytes or not message.get("more_body", False):
                return messages, size

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, what: str) -> None:
        log.warning(
            "refused %s %s: %s over the %d-byte body limit (413)", scope["method"], scope["path"], what, self.max_bytes
        )
        detail = f"request body too large: at most {self.max_bytes} bytes ({self.max_bytes // 1024} KiB)"
        response = JSONResponse({"detail": detail}, status_code=413, headers={"Connection": "close"})
        await response(scope, receive, send)


def _exempt_pattern(scope: Scope) -> bool:
    return any(scope["method"] == m and p.fullmatch(scope["path"]) for m, p in EXEMPT_PATTERNS)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A `receive` that returns the buffered messages first, then the server's (disconnect detection)."""
    pending = list(messages)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed
