"""The digest scheduler: one thread in the process that owns the store (`safewatch run`, `safewatch api`) that sends
each subscription's daily digest once per day, after its local time.

Schedule. A subscription with `local_time` HH:MM in `timezone` is *due* for local date D from D at HH:MM on; the
digest sent for D covers the site's previous day, D-1 (a complete day, so the report it links to is final).
`last_sent_date` records D once the receiver accepted it (2xx): a restart never sends D again. A subscription starts
with `last_sent_date` = the date due when it was created, so the first digest comes at the next local time.

Missed days. When the service was down past one or more local times, the next round sends one digest: the latest
due day's, which also links the reports of the days whose digest was never sent (at most 7, older ones counted).
Each missed day is thus announced once, never as a burst of old messages.

Sending. A digest is claimed with a lease on its row (`api/store/reports.py`), so several API processes on one
store do not both send it; it goes out like a webhook delivery: the host is checked by the webhooks' SSRF guard and
the POST connects to the checked address (`WebhookGuard.pin`), signed with the subscription's secret
(`X-Safewatch-Signature`, event id `digest:<id>:<date>`, event type `report.digest`). A failed POST is retried
every `RETRY_S`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import httpx

from api.camera_store import CameraStore
from api.media_links import link_signer
from api.reports.daily import site_backlog
from api.reports.digest import Digest
from api.reports.links import report_link
from api.reports.page import UnknownSite, site_report
from api.settings import Settings
from api.store.db import Store
from api.store.models import ReportSubscription
from api.store.reports import claim_digest, list_subscriptions, record_digest
from api.webhooks.guard import ForbiddenAddress, RefusedUrl, UnresolvedHost, WebhookGuard
from api.webhooks.signing import delivery_headers
from vision.redact import redact_url

log = logging.getLogger(__name__)

LEASE_S = 120.0
RETRY_S = 300.0
Clock = Callable[[], float]


def due_date(now: float, local_time: str, zone: str) -> date:
    """The latest local date whose `local_time` has passed at `now` (unix seconds)."""
    local = datetime.fromtimestamp(now, ZoneInfo(zone))
    hour, minute = (int(part) for part in local_time.split(":"))
    return local.date() if (local.hour, local.minute) >= (hour, minute) else local.date() - timedelta(days=1)


class DigestScheduler:
    """`start()` / `stop()` the thread; `run_once()` is one round (what the thread does every `interval_s`)."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        clock: Clock = time.time,
        interval_s: float = 30.0,
        guard: WebhookGuard | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.interval_s = interval_s
        self.guard = guard or WebhookGuard(settings.webhook_allow)
        self.cameras = CameraStore(settings.config_dir)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="report-digests", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # the store may be briefly unavailable: try again next round
                log.exception("report digest round failed")
            self._stop.wait(self.interval_s)

    def run_once(self) -> int:
        """Send every digest that is due and not yet sent; returns how many were sent."""
        now = self.clock()
        with self.store.read() as session:
            subscriptions = list(list_subscriptions(session))
            for row in subscriptions:
                session.expunge(row)
        sent = 0
        for sub in subscriptions:
            due = due_date(now, sub.local_time, sub.timezone)
            if sub.last_sent_date is not None and sub.last_sent_date >= due.isoformat():
                continue
            with self.store.session() as session:
                if not claim_digest(session, sub.id, due.isoformat(), datetime.fromtimestamp(now, UTC), LEASE_S):
                    continue
            sent += self._send(sub, due, now)
        return sent

    def _send(self, sub: ReportSubscription, due: date, now: float) -> int:
        try:
            body = self._digest(sub, due, now).body(sub.format)
            event_key = f"digest:{sub.id}:{due.isoformat()}"
            code = self._post(sub.url, body, delivery_headers(sub.secret, body, event_key, kind="report.digest"))
            error = None if 200 <= code < 300 else f"http_{code}"
        except (RefusedUrl, UnresolvedHost, httpx.HTTPError, OSError, UnknownSite) as exc:
            error = _error_class(exc)
        retry_at = datetime.fromtimestamp(now + RETRY_S, UTC)
        with self.store.session() as session:
            record_digest(session, sub.id, due.isoformat(), error=error, retry_at=retry_at)
        if error is not None:
            log.warning("daily digest %s of site %s to %s failed: %s", sub.id, sub.site, redact_url(sub.url), error)
            return 0
        log.info("daily digest %s of site %s for %s sent", sub.id, sub.site, due - timedelta(days=1))
        return 1

    def _digest(self, sub: ReportSubscription, due: date, now: float) -> Digest:
        cameras = [c.config for c in self.cameras.scan()[0]]
        signer = link_signer(self.settings)
        base = self.settings.base_url
        with self.store.read() as session:
            report = site_report(session, sub.site, due - timedelta(days=1), cameras)
            backlog = site_backlog(session, sub.site)
        missed: list[tuple[date, str]] = []
        if sub.last_sent_date is not None:
            day = date.fromisoformat(sub.last_sent_date)  # due L covered L-1: the missed dues L+1 … D-1 cover L … D-2
            while day < due - timedelta(days=1):
                missed.append((day, report_link(base, signer, sub.site, day, now)))
                day += timedelta(days=1)
        link = report_link(base, signer, sub.site, report.day, now)
        return Digest(report, backlog, link, missed, "en" if sub.language == "en" else "zh-CN")

    def _post(self, url: str, body: bytes, headers: dict[str, str]) -> int:
        """POST to a just-checked address of the URL's host (the next one only when connecting fails)."""
        pins = self.guard.pin(url)
        transport = httpx.HTTPTransport(limits=httpx.Limits(max_keepalive_connections=0))
        timeout = self.settings.webhook_timeout_s
        with httpx.Client(transport=transport, timeout=timeout, follow_redirects=False) as client:
            for n, pin in enumerate(pins):
                request = client.build_request(
                    "POST", pin.url, content=body, headers={**headers, "Host": pin.host}, extensions=pin.extensions
                )
                try:
                    response = client.send(request, stream=True)
                except httpx.ConnectError:
                    if n == len(pins) - 1:
                        raise
                    continue
                response.close()
                return response.status_code
        raise UnresolvedHost(f"no address for {redact_url(url)}")


def _error_class(exc: Exception) -> str:
    classes: tuple[tuple[type[Exception], str], ...] = (
        (ForbiddenAddress, "forbidden_address"),
        (RefusedUrl, "invalid_url"),
        (UnresolvedHost, "dns_error"),
        (UnknownSite, "unknown_site"),
        (httpx.TimeoutException, "timeout"),
        (httpx.ConnectError, "connect_error"),
    )
    return next((name for kind, name in classes if isinstance(exc, kind)), "request_error")
