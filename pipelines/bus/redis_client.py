"""The one place that builds Redis clients: the stream bus, the leases, the config and state stores and the API's
heartbeat reader all get theirs from `redis_client` (or `connect`, which also checks that Redis answers).

It lives in `bus`, the lowest pipelines package that talks to Redis, so `distributed` (above it) and `api` share it.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from vision.redact import redact_url

SCHEMES = ("redis", "rediss", "unix")


class RedisUnavailable(RuntimeError):
    """Redis could not be reached at start-up (the message names the redacted URL)."""


def check_url(url: str) -> None:
    """ValueError (with the redacted URL) unless `url` is a redis://, rediss:// or unix:// URL."""
    if urlsplit(url).scheme not in SCHEMES:
        raise ValueError(f"redis url {redact_url(url)!r}: scheme must be redis://, rediss:// or unix://")


def redis_client(
    url: str,
    *,
    decode_responses: bool = True,
    timeout_s: float | None = None,
    connect_timeout_s: float | None = None,
    retry_once: bool = False,
    resp2: bool = False,
) -> redis.Redis:
    """A client for `url` (no I/O yet).

    `decode_responses`: str replies (what the lease, config and state helpers parse) or bytes (the stream bus).
    `timeout_s` bounds every command, `connect_timeout_s` (default: `timeout_s`) the TCP connect; None = no bound,
    as redis-py. `retry_once`: one immediate retry without backoff, which reconnects a pooled socket gone stale
    while Redis restarted yet still fails within the timeouts during an outage. `resp2`: speak RESP2, whose reply
    shapes the stream bus parses (redis-py 8 defaults to RESP3).
    """
    return redis.Redis.from_url(
        url,
        decode_responses=decode_responses,
        socket_timeout=timeout_s,
        socket_connect_timeout=connect_timeout_s if connect_timeout_s is not None else timeout_s,
        **({"retry": Retry(NoBackoff(), 1)} if retry_once else {}),
        **({"protocol": 2} if resp2 else {}),
    )


def connect(url: str, *, timeout_s: float | None = None) -> redis.Redis:
    """A decoding client that answered PING; RedisUnavailable (with the redacted URL) when Redis does not answer.

    `timeout_s` bounds every command and connect (default: none); the API sets it so a hung Redis fails
    `GET /v1/workers`, `/metrics` and the config sync instead of blocking their threads.
    """
    try:
        client = redis_client(url, timeout_s=timeout_s)
        client.ping()
    except (redis.RedisError, ValueError) as exc:
        raise RedisUnavailable(f"cannot reach Redis at {redact_url(url)}: {exc}") from None
    return client
