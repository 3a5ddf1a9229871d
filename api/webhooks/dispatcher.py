"""Webhook dispatcher: claims due outbox rows with a lease, POSTs them signed, records the outcome.

State lives in the DB (outbox rows), so a restart resumes where it left off; the lease keeps two dispatchers
(two API processes, or an old and a new one) from sending the same delivery at the same time. Delivery is
at-least-once (a crash between the POST and recording its outcome re-sends after the lease expires): receivers
de-duplicate with `X-Safewatch-Event-Id`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket

import httpx

from api.metrics import Metrics
from api.settings import Settings
from api.store.db import Store
from api.store.outbox import BackoffFn, Claimed, Outcome, claim_due, record_outcome
from api.webhooks.formats import render
from api.webhooks.signing import delivery_headers
from vision.redact import redact_url

log = logging.getLogger(__name__)


class Dispatcher:
    def __init__(self, store: Store, settings: Settings, metrics: Metrics) -> None:
        self.store = store
        self.settings = settings
        self.metrics = metrics
        self.owner = f"{socket.gethostname()[:30]}-{os.getpid()}-{secrets.token_hex(4)}"
        self.backoff = BackoffFn(settings.webhook_backoff_base_s, settings.webhook_backoff_max_s)
        self._wake = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    def wake(self) -> None:
        """Thread-safe: new outbox rows were committed."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake.set)

    async def run(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        log.info("webhook dispatcher started", extra={"owner": self.owner})
        async with httpx.AsyncClient(timeout=self.settings.webhook_timeout_s, follow_redirects=False) as client:
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
        log.info("webhook dispatcher stopped", extra={"owner": self.owner})

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
            return claim_due(session, self.owner, lease_s=s.webhook_lease_s, batch=s.webhook_batch)

    async def _send(self, client: httpx.AsyncClient, c: Claimed) -> Outcome:
        try:
            body = render(c.format, c.payload, self.settings.base_url)
            headers = delivery_headers(c.secret, body, c.event_key)
            resp = await client.post(c.url, content=body, headers=headers)
        except (httpx.HTTPError, OSError, ValueError) as exc:
            return Outcome(ok=False, response_code=None, error=redact_url(f"{type(exc).__name__}: {exc}")[:500])
        if 200 <= resp.status_code < 300:
            return Outcome(ok=True, response_code=resp.status_code, error=None)
        return Outcome(ok=False, response_code=resp.status_code, error=f"HTTP {resp.status_code}: {resp.text[:200]}")

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
            "webhook delivery failed",
            extra={
                "delivery": claimed.delivery_id,
                "event_key": claimed.event_key,
                "status": status,
                "error": outcome.error,
            },
        )
