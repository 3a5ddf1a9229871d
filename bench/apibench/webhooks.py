"""Decision → webhook latency: events published on the app's bus, deliveries timed at a signature-checking receiver."""

from __future__ import annotations

import contextlib
import random
import secrets
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from sqlalchemy import select

from api.app import create_app
from api.settings import Settings
from api.store.db import Store
from api.store.keys import create_key
from api.store.models import IncidentEventRow
from api.webhooks.signing import EVENT_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from bench.apibench.data import make_incident
from bench.apibench.load import free_port, wait_until
from pipelines.bus.base import InProcessBus


class _Backlog(ThreadingHTTPServer):
    request_queue_size = 128  # listen backlog; the default 5 drops connects when the dispatcher sends 20 at once
    daemon_threads = True


class Receiver:
    """A webhook receiver on 127.0.0.1 that stamps each delivery's arrival (time.time) and checks its signature."""

    def __init__(self, secret: str) -> None:
        self.arrivals: dict[str, float] = {}
        self.bad_signatures = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                at = time.time()
                ok = verify(secret, self.headers[TIMESTAMP_HEADER], body, self.headers[SIGNATURE_HEADER])
                with receiver.lock:
                    if ok:
                        receiver.arrivals.setdefault(self.headers[EVENT_ID_HEADER], at)
                    else:
                        receiver.bad_signatures += 1
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = _Backlog(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def got(self, keys: list[str]) -> int:
        with self.lock:
            return sum(1 for k in keys if k in self.arrivals)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def publish_and_time(
    bus: InProcessBus, store: Store, receiver: Receiver, scenario: str, n: int, rate: float | None
) -> dict[str, Any]:
    """Publish `n` new incidents' `opened` events (`rate` per second, or all at once) and time their deliveries."""
    rng, bad_before = random.Random(scenario), receiver.bad_signatures
    events = [make_incident(rng, datetime.now(UTC), started=datetime.now(UTC))[0] for _ in range(n)]
    sent: dict[str, float] = {}
    next_at = time.perf_counter()
    for ev in events:
        if rate:
            time.sleep(max(0.0, next_at - time.perf_counter()))
            next_at += 1 / rate
        sent[ev.event_key] = time.time()
        bus.publish(ev)
    keys = list(sent)
    with contextlib.suppress(RuntimeError):  # missing deliveries are reported
        wait_until(lambda: receiver.got(keys) == n, 60, f"{n} webhook deliveries")
    with store.read() as session:
        rows = session.execute(
            select(IncidentEventRow.incident_id, IncidentEventRow.received_at).where(
                IncidentEventRow.incident_id.in_([e.id for e in events])
            )
        ).all()
    stored = {f"{iid}:0": at.timestamp() for iid, at in rows}
    arrivals = dict(receiver.arrivals)
    return {
        "scenario": scenario,
        "rate": rate,
        "events": n,
        "delivered": sum(1 for k in keys if k in arrivals),
        "bad_signatures": receiver.bad_signatures - bad_before,
        "total_ms": [(arrivals[k] - sent[k]) * 1000 for k in keys if k in arrivals],
        "stored_ms": [  # publish → event row written (received_at, set in the store transaction)
            (stored[k] - sent[k]) * 1000 for k in keys if k in stored
        ],
        "dispatch_ms": [(arrivals[k] - stored[k]) * 1000 for k in keys if k in arrivals and k in stored],
    }


def webhook_bench(url: str, data_dir: Path, n: int, rate: float) -> list[dict[str, Any]]:
    """The app in this process (uvicorn thread) with an InProcessBus; paced run, then a burst of `n`."""
    port, secret = free_port(), secrets.token_hex(16)
    settings = Settings(
        database_url=url,
        data_dir=data_dir / "hooks",
        config_dir=data_dir / "cameras",
        host="127.0.0.1",
        port=port,
        webhook_allow_hosts="127.0.0.1",  # the receiver runs on loopback (the webhook address guard refuses it)
    )
    bus = InProcessBus()
    store = Store(settings.database_url)
    app = create_app(settings, store=store, bus=bus)
    with store.session() as session:
        _row, key = create_key(session, role="admin", name="bench-admin")
    receiver = Receiver(secret)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started, 60, "the in-process API")
        resp = httpx.post(
            f"http://127.0.0.1:{port}/v1/webhooks",
            json={"url": receiver.url, "secret": secret, "format": "json"},
            headers={"X-API-Key": key},
        )
        resp.raise_for_status()
        return [
            publish_and_time(bus, store, receiver, f"paced, {rate:g} events/s", n, rate),
            publish_and_time(bus, store, receiver, f"burst of {n}", n, None),
        ]
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        bus.close()
        receiver.stop()
