"""Credential redaction for stream URLs: `rtsp://user:pass@host/x` → `rtsp://***@host/x`.

Use `redact_url` on every URL that reaches a log line, an exception message, CLI output or an HTTP response.
"""

from __future__ import annotations

import re

_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<userinfo>[^/@\s]+)@")


def redact_url(text: str) -> str:
    """Replace the `user:password@` part of every URL in `text` with `***@`."""
    return _USERINFO.sub(lambda m: f"{m.group('scheme')}***@", text)
