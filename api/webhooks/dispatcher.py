"""Webhook dispatcher: claims due outbox rows with a lease, POSTs them signed, records the outcome.

State lives in the DB (outbox rows), so a restart resumes where it left off; the lease keeps two dispatchers
(two API processes, or an old and a new one) from sending the same delivery at the same time. Delivery is
at-least-once (a crash between the POST and recording its outcome re-sends after the lease expires): receivers
de-duplicate with `X-Safewatch-Event-Id`.

Every attempt resolves the URL's host again and connects only to addresses `WebhookGuard` has just checked
(`api/webhooks/guard.py`: DNS rebinding). An attempt's outcome is a status code and a short error class
(`http_503`, `timeout`, `forbidden_address`, …): response bodies are never read, so nothing an internal server
answers can come back through the deliveries API.

Subscriptions with push rate control are claimed through `api.store.pacing` (digests per camera and rule, a rate
limit; one dispatcher at a time holds such a subscription). Chat messages are worded in the subscription's language
with the camera's name and time zone (`api.webhooks.cameras`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket

import httpx

from api.links import signed_links
from api.metrics import Metrics
from api.settings import Settings
from api.store.db import Store
from api.store.outbox import BackoffFn, Claimed, Outcome, claim_due, record_outcome
from api.store.pacing import Limits, claim_paced, release
from api.webhooks.cameras import CameraDirectory
from api.webhooks.formats import render
from api.webhooks.guard import ForbiddenAddress, InvalidUrl, Pin, RefusedUrl, UnresolvedHost, WebhookGuard
from api.webhooks.messages import Camera
from api.webhooks.signing import delivery_headers
from vision.redact import redact_url

log = logging.getLogger(__name__)


class Dispatcher:
    def __init__(self, store: Store, settings: Settings, metrics: Metrics, guard: WebhookGuard | None = None) -> None:
        self.store = store
        self.settings = settings
        self.metrics = metrics
        self.guard = guard or WebhookGuard(settings.webhook_allow)
        self.owner = f"{socket.gethostname()[:30]}-{os.getpid()}-{secrets.token_hex(4)}"
        self.backoff = BackoffFn(settings.webhook_backoff_base_s, settings.webhook_backoff_max_s)
        self.limits = Limits(settings.webhook_lease_s, settings.webhook_batch, settings.webhook_rate_window_s)
        self.cameras = CameraDirectory(settings.config_dir)
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def wake(self) -> None:
        """Thread-safe: new outbox rows were committed."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake.set)

    async def run(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        log.info("webhook dispatcher started", extra={"owner": self.owner})
        async with self.http_client() as client:
            while not stop.is_set():
                try:
                    sent = await self.run_once(client)
                except Exception:
                    if stop.is_set():  # shutting down: the executor may already be gone; rows stay in the outbox
                        break
                    log.exception("webhook dispatcher round failed")
                    sent = 0
                if sent:
                    continue
                self._wake.clear()
                waiters = {asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())}
                _done, pending = await asyncio.wait(
                    waiters, timeout=self.settings.webhook_poll_interval_s, return_when=asyncio.FIRST_COMPLETED
                )
                for task in pending:
                    task.cancel()
        await asyncio.to_thread(self._release)
        log.info("webhook dispatcher stopped", extra={"owner": self.owner})

    def _release(self) -> None:
        try:
            with self.store.session() as session:
                release(session, self.owner)
        except Exception:  # the store is going away too: the leases expire by themselves
            log.warning("webhook dispatcher could not release its paced subscriptions", exc_info=True)

    def http_client(self) -> httpx.AsyncClient:
        """The client deliveries go through. Redirects are not followed (a 3xx is a failed attempt). An explicit
        transport: no proxy from the environment, which would resolve the host itself, past the guard. No keep-alive:
        pooled connections are keyed by address, and a TLS connection made for one host name must not carry the
        delivery of another name that resolves to the same address."""
        transport = httpx.AsyncHTTPTransport(limits=httpx.Limits(max_keepalive_connections=0))
        return httpx.AsyncClient(transport=transport, timeout=self.settings.webhook_timeout_s, follow_redirects=False)

    async def run_once(self, client: httpx.AsyncClient) -> int:
        """One round: claim due deliveries, send them concurrently, record outcomes. Returns how many were tried."""
        claimed = await asyncio.to_thread(self._claim)
        if not claimed:
            return 0
        outcomes = await asyncio.gather(*(self._send(client, c) for c in claimed))
        await asyncio.to_thread(self._record, list(zip(claimed, outcomes, strict=True)))
        return len(claimed)

    def _claim(self) -> list[Claimed]:
        s = self.settings
        with self.store.session() as session:
            claimed = claim_due(session, self.owner, lease_s=s.webhook_lease_s, batch=s.webhook_batch)
        with self.store.session() as session:
            claimed += claim_paced(session, self.owner, self.limits)
        for c in claimed:  # read camera configs here, in the worker thread: `_send` then finds them cached
            self._camera(c)
        return claimed

    def _camera(self, c: Claimed) -> Camera | None:
        """The camera a chat message is about (name, time zone); None for the generic JSON or no camera."""
        camera_id = c.payload.get("camera_id")
        return self.cameras.lookup(camera_id) if isinstance(camera_id, str) and c.format != "json" else None

    async def _send(self, client: httpx.AsyncClient, c: Claimed) -> Outcome:
        try:
            links = signed_links(self.settings)
            body = render(c.format, c.payload, links, kind=c.kind, language=c.language, camera=self._camera(c))
            headers = delivery_headers(c.secret, body, c.event_key, kind=c.kind)
            code = await self._post(client, c.url, body, headers)
        except (RefusedUrl, UnresolvedHost, httpx.HTTPError, httpx.InvalidURL, OSError, ValueError) as exc:
            return Outcome(ok=False, response_code=None, error=error_class(exc))
        if 200 <= code < 300:
            return Outcome(ok=True, response_code=code, error=None)
        return Outcome(ok=False, response_code=code, error=f"http_{code}")

    async def _post(self, client: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str]) -> int:
        """POST to a just-checked address of the URL's host (the next one only when connecting fails); the status."""
        pins = await asyncio.to_thread(self.guard.pin, url)
        for pin in pins[:-1]:
            try:
                return await _post_to(client, pin, body, headers)
            except httpx.ConnectError:
                continue
        return await _post_to(client, pins[-1], body, headers)

    def _record(self, results: list[tuple[Claimed, Outcome]]) -> None:
        with self.store.session() as session:
            for claimed, outcome in results:
                status = record_outcome(
                    session,
                    claimed,
                    self.owner,
                    outcome,
                    max_attempts=self.settings.webhook_max_attempts,
                    backoff=self.backoff,
                )
                self._count(claimed, status, outcome)

    def _count(self, claimed: Claimed, status: str, outcome: Outcome) -> None:
        if outcome.ok:
            self.metrics.webhook_deliveries.labels(claimed.format).inc()
            return
        final = status == "dead"
        self.metrics.webhook_failures.labels(claimed.format, "true" if final else "false").inc()
        log.warning(
            "webhook delivery %d of %s to %s failed (%s): %s",
            claimed.delivery_id,
            claimed.event_key,
            redact_url(claimed.url),
            status,
            outcome.error,
            extra={
                "delivery": claimed.delivery_id,
                "event_key": claimed.event_key,
                "status": status,
                "error": outcome.error,
            },
        )


async def _post_to(client: httpx.AsyncClient, pin: Pin, body: bytes, headers: dict[str, str]) -> int:
    """One POST to a pinned address with the original Host header and TLS name; the body is not read."""
    request = client.build_request(
        "POST", pin.url, content=body, headers={**headers, "Host": pin.host}, extensions=pin.extensions
    )
    response = await client.send(request, stream=True)
    await response.aclose()
    return response.status_code


#: First match wins; anything else is `request_error`.
_ERROR_CLASSES: tuple[tuple[type[Exception], str], ...] = (
    (ForbiddenAddress, "forbidden_address"),
    (UnresolvedHost, "dns_error"),
    (httpx.TimeoutException, "timeout"),
    (httpx.ConnectError, "connect_error"),
    (httpx.ProtocolError, "protocol_error"),
    (httpx.NetworkError, "network_error"),
    (InvalidUrl, "invalid_url"),
    (httpx.InvalidURL, "invalid_url"),
)


def error_class(exc: Exception) -> str:
    """The short, fixed name of a failed attempt that the deliveries API shows (`timeout`, `connect_error`, …)."""
    return next((name for kind, name in _ERROR_CLASSES if isinstance(exc, kind)), "request_error")
