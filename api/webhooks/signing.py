"""Delivery signature: `X-Safewatch-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<raw body>")>`."""

from __future__ import annotations

import hashlib
import hmac
import time

TIMESTAMP_HEADER = "X-Safewatch-Timestamp"
SIGNATURE_HEADER = "X-Safewatch-Signature"
EVENT_ID_HEADER = "X-Safewatch-Event-Id"
EVENT_TYPE_HEADER = "X-Safewatch-Event-Type"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"sha256={mac.hexdigest()}"


def verify(secret: str, timestamp: str, body: bytes, signature: str, *, tolerance_s: int = 300) -> bool:
    """Receiver-side check (also used by the tests): valid signature and a timestamp within `tolerance_s`."""
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    if abs(time.time() - ts) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, ts, body), signature)


def delivery_headers(
    secret: str, body: bytes, event_key: str, *, now: float | None = None, kind: str | None = None
) -> dict[str, str]:
    """Headers of one delivery; `kind` (`X-Safewatch-Event-Type`): incident, incident.digest or evidence.checkpoint
    (None: no such header)."""
    ts = int(time.time() if now is None else now)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "safewatch-webhooks/1",
        TIMESTAMP_HEADER: str(ts),
        SIGNATURE_HEADER: sign(secret, ts, body),
        EVENT_ID_HEADER: event_key,
    }
    if kind is not None:
        headers[EVENT_TYPE_HEADER] = kind
    return headers
