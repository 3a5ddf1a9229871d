"""Service benchmark: GET /v1/incidents with 50 concurrent clients over 100k incidents; decision-to-webhook latency.

Per backend (SQLite file, then PostgreSQL in a throw-away schema when 127.0.0.1:5432 answers):
1. Data: realistic incidents (4 sites × 6 cameras, 6 rules with uneven rates, spread over 30 days, ~2 % still open,
   the rest opened + closed). A sample goes through the store's own `apply_event` (timed); the rest is bulk-inserted
   with SQLAlchemy core into the same tables (incident rows exactly as `apply_event` leaves them, plus every event
   row). A sample of both kinds is checked through `GET /v1/incidents/{id}` against its events.
2. The real app (`create_app`) is served by uvicorn in a subprocess, as `safewatch api` does; httpx clients send
   filtered `GET /v1/incidents` queries (8 templates) and follow `next_cursor` for up to 4 pages. A 1-client pass
   gives the service time per query, then 50 concurrent clients give p50/p99 and throughput; the server's CPU per
   request comes from /proc. An in-process breakdown (query + ORM load, IncidentOut building, JSON) and the plan of
   the slowest query say what dominates.
3. The app runs in this process (uvicorn in a thread) with an InProcessBus, default dispatcher settings, and a webhook
   subscription (`POST /v1/webhooks`) pointing at a receiver on 127.0.0.1 that checks every signature. Events are
   published onto the bus (the "decision" time, recorded here) paced like cameras, then as one burst; each signed
   delivery's arrival is timed.

Run: .venv/bin/python -m bench.bench_api [--incidents 100000] [--requests 2000] → bench/results/api.md
The parts live in bench/apibench/ (data, load, webhooks, report); this module runs them per backend.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import random
import secrets
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from api.store.db import Store
from api.store.keys import create_key
from bench.apibench.data import load_data, make_incident, verify_sample
from bench.apibench.load import (
    CAPPED_TOKENS,
    PAGES,
    ROOT,
    breakdown,
    measured,
    query_plan,
    query_templates,
    run_load,
    serve,
    served,
)
from bench.apibench.report import render
from bench.apibench.webhooks import webhook_bench
from pipelines.events import IncidentEvent

RESULTS = ROOT / "bench" / "results" / "api.md"
RAW = Path(tempfile.gettempdir()) / "safewatch-bench-api.json"
PG_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@contextmanager
def postgres_schema() -> Iterator[tuple[str | None, str]]:
    """(URL in a fresh schema, "") — or (None, why) when PostgreSQL is unreachable. The schema is dropped after."""
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=0.5):
            pass
        admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            version = str(conn.execute(text("SHOW server_version")).scalar()).split()[0]
    except Exception as exc:
        yield None, f"PostgreSQL on 127.0.0.1:5432 (database test) unusable: {type(exc).__name__}: {exc}"
        return
    schema = f"bench_api_{secrets.token_hex(5)}"
    with admin.connect() as conn:
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    try:
        yield f"{PG_ADMIN_URL}?options=-csearch_path%3D{schema}", version
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


def run_backend(name: str, url: str, data_dir: Path, incidents: list[list[IncidentEvent]], args: Any) -> dict[str, Any]:
    """Load the data, serve it, measure the list endpoint, break the cost down, then the webhook latency."""
    out: dict[str, Any] = {"backend": name}
    store = Store(url)
    out["data"] = load_data(store, incidents, args.sample)
    if store.engine.dialect.name == "postgresql":
        with store.engine.begin() as conn:
            conn.execute(text("ANALYZE"))  # what autovacuum does within a minute of a load this size
    with store.session() as session:
        _row, key = create_key(session, role="viewer", name="bench-viewer")
    templates, n = query_templates(args.now), args.clients
    with served(url, data_dir) as (base, pid):
        out["verified"] = verify_sample(base, key, incidents, args.sample)
        serial = len(templates) * PAGES * 4
        out["serial"] = measured(pid, run_load(base, key, templates, clients=1, total=serial, max_s=60))
        out["load"] = measured(pid, run_load(base, key, templates, clients=n, total=args.requests, max_s=args.max_s))
        floor = run_load(base, key, [("healthz", {})], clients=n, total=500, max_s=30, path="/healthz")
        out["floor"] = measured(pid, floor)  # no auth, no incidents: SELECT 1
    with served(url, data_dir, thread_tokens=CAPPED_TOKENS) as (base, pid):
        capped = run_load(base, key, templates, clients=n, total=args.requests, max_s=args.max_s)
        out["capped"] = measured(pid, capped)
    out["breakdown"] = {n: breakdown(store, key, q) for n, q in templates}
    slowest = max(templates, key=lambda t: statistics.median(ms for n, ms in out["serial"]["samples"] if n == t[0]))
    out["plan"] = {"query": slowest[0], "lines": query_plan(store, slowest[1])}
    store.dispose()
    out["webhooks"] = webhook_bench(url, data_dir, args.webhook_events, args.webhook_rate)
    return out


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.bench_api", description=__doc__.splitlines()[0] if __doc__ else ""
    )
    p.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    p.add_argument("--thread-tokens", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--incidents", type=int, default=100_000)
    p.add_argument("--sample", type=int, default=300, help="incidents stored through apply_event (timed)")
    p.add_argument("--requests", type=int, default=2000, help="requests of the concurrent run (per backend)")
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--max-s", type=float, default=90.0, help="time bound of the concurrent run")
    p.add_argument("--webhook-events", type=int, default=200)
    p.add_argument("--webhook-rate", type=float, default=20.0, help="events/s of the paced webhook run")
    p.add_argument("--no-postgres", action="store_true")
    p.add_argument("--render", action="store_true", help=f"only rewrite the results file from {RAW}")
    args = p.parse_args(argv)
    if args.serve is not None:
        serve(args.serve, args.thread_tokens)
        return 0
    if args.render:
        RESULTS.write_text(render(json.loads(RAW.read_text())), encoding="utf-8")
        return 0
    raw: dict[str, Any] = {"load_before": os.getloadavg(), "cpu": cpu_model(), "cores": os.cpu_count()}
    fast = {m: importlib.util.find_spec(m) is not None for m in ("uvloop", "httptools")}
    raw["uvicorn"] = f"{'uvloop' if fast['uvloop'] else 'asyncio'} + {'httptools' if fast['httptools'] else 'h11'}"
    raw.update(incidents=args.incidents, webhook_events=args.webhook_events, webhook_rate=args.webhook_rate)
    t0 = time.perf_counter()
    args.now = datetime.now(UTC).replace(microsecond=0)
    rng = random.Random(2025)
    incidents = [make_incident(rng, args.now) for _ in range(args.incidents)]
    results = []
    with tempfile.TemporaryDirectory(prefix="safewatch-bench-api-") as tmp:
        sqlite_dir = Path(tmp) / "sqlite"
        results.append(run_backend("SQLite", f"sqlite:///{sqlite_dir}/safewatch.db", sqlite_dir, incidents, args))
        if args.no_postgres:
            raw["skipped"] = "--no-postgres"
        else:
            with postgres_schema() as (url, note):
                if url is None:
                    raw["skipped"] = note
                else:
                    results.append(run_backend(f"PostgreSQL {note}", url, Path(tmp) / "pg", incidents, args))
    raw.update(results=results, load_after=os.getloadavg(), wall_s=time.perf_counter() - t0)
    RAW.write_text(json.dumps(raw), encoding="utf-8")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(render(raw), encoding="utf-8")
    sys.stdout.write(f"wrote {RESULTS} (raw numbers: {RAW}) in {raw['wall_s']:.0f} s\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
