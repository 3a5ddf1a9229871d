"""The list endpoint under load: the app served in a subprocess, concurrent httpx clients, CPU accounting, and the
in-process breakdown and query plan of what one request costs."""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import anyio.to_thread
import httpx
import uvicorn
from sqlalchemy import event

from api.app import create_app
from api.schemas import IncidentOut, IncidentPage
from api.settings import Settings
from api.store.db import Store
from api.store.incidents import IncidentFilter, list_incidents
from api.store.keys import find_key

ROOT = Path(__file__).resolve().parents[2]
PAGES = 4
LIMIT = 50
LIST_PATH = "/v1/incidents"
CAPPED_TOKENS = 4


def query_templates(now: datetime) -> list[tuple[str, dict[str, str]]]:
    def ago(days: float) -> str:
        return (now - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")

    templates: list[tuple[str, dict[str, str]]] = [
        (
            "site+rule+status=closed, 7 d",
            {"site": "sip-plot-12", "rule": "no_helmet", "status": "closed", "since": ago(7)},
        ),
        ("site+rule (12 %), 30 d", {"site": "pudong-dc-3", "rule": "exit_blocked", "since": ago(30)}),
        ("camera, 3 d", {"camera": "sip-plot-12-cam-2", "since": ago(3)}),
        ("status=open (2 %)", {"status": "open"}),
        ("rule=smoke_fire (3 %)", {"rule": "smoke_fire"}),
        ("newest, no filter", {}),
        ("site+status=new, 1 d", {"site": "wuxi-warehouse", "status": "new", "since": ago(1)}),
        ("site+rule, 27–20 d ago", {"site": "hq-campus", "rule": "intrusion", "since": ago(27), "until": ago(20)}),
    ]
    return [(name, {**q, "limit": str(LIMIT)}) for name, q in templates]


def page_ok(params: dict[str, str], body: dict[str, Any]) -> bool:
    """The page respects the query: size, equality filters, status, time window, newest-first order."""
    items = body.get("items")
    if not isinstance(items, list) or len(items) > int(params["limit"]):
        return False
    for field, key in (("site", "site"), ("rule", "rule"), ("camera", "camera_id")):
        if field in params and any(it[key] != params[field] for it in items):
            return False
    status = params.get("status")
    if status and any(it["status" if status in ("open", "closed") else "handling"] != status for it in items):
        return False
    if not items:
        return True
    first, last = datetime.fromisoformat(items[0]["started_at"]), datetime.fromisoformat(items[-1]["started_at"])
    if first < last:
        return False
    if "since" in params and last < datetime.fromisoformat(params["since"]):
        return False
    return not ("until" in params and first >= datetime.fromisoformat(params["until"]))


async def run_load(
    base: str,
    key: str,
    templates: list[tuple[str, dict[str, str]]],
    *,
    clients: int,
    total: int,
    max_s: float,
    path: str = LIST_PATH,
) -> dict[str, Any]:
    """`clients` concurrent tasks, each walking a query's pages (≤ PAGES) then the next query, until `total`
    requests or `max_s`. Every request's latency is kept with its query name. Other paths: checked for 200 only."""
    issued, sessions = itertools.count(), itertools.count()
    samples: list[tuple[str, float]] = []
    errors: list[str] = []
    deadline = time.monotonic() + max_s
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def client_task(client: httpx.AsyncClient) -> None:
        while time.monotonic() < deadline:
            name, params = templates[next(sessions) % len(templates)]
            cursor: str | None = None
            for _page in range(PAGES):
                if next(issued) >= total:
                    return
                t0 = time.perf_counter()
                try:
                    resp = await client.get(path, params={**params, "cursor": cursor} if cursor else params)
                except httpx.TransportError as exc:  # counted, not fatal: a dropped connection is a failed request
                    errors.append(f"{name}: {type(exc).__name__}")
                    break
                samples.append((name, (time.perf_counter() - t0) * 1000))
                body = resp.json() if resp.status_code == 200 else {}
                if not (page_ok(params, body) if path == LIST_PATH else resp.status_code == 200):
                    errors.append(f"{name}: HTTP {resp.status_code} {resp.text[:120]}")
                    break
                cursor = body.get("next_cursor")
                if not cursor:
                    break

    async with httpx.AsyncClient(base_url=base, headers={"X-API-Key": key}, limits=limits, timeout=60) as client:
        t0, c0 = time.perf_counter(), time.process_time()
        await asyncio.gather(*(client_task(client) for _ in range(clients)))
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"clients": clients, "samples": samples, "errors": errors, "wall_s": wall, "client_cpu_s": cpu}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_until(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@contextmanager
def served(url: str, data_dir: Path, thread_tokens: int | None = None) -> Iterator[tuple[str, int]]:
    """The app under uvicorn in a subprocess (`--serve`, settings from SAFEWATCH_* like the CLI): (base URL, pid)."""
    port = free_port()
    env = {**os.environ, "SAFEWATCH_DATABASE_URL": url, "SAFEWATCH_DATA_DIR": str(data_dir)}
    env["SAFEWATCH_CONFIG_DIR"] = str(data_dir / "cameras")
    cmd = [sys.executable, "-m", "bench.bench_api", "--serve", str(port)]
    cmd += ["--thread-tokens", str(thread_tokens)] if thread_tokens else []
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env)
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"the API subprocess exited with {proc.returncode}")
        return _healthy(base)

    try:
        wait_until(up, 60, "the API subprocess")
        yield base, proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def serve(port: int, thread_tokens: int | None) -> None:
    """`--serve PORT`: what `safewatch api` does minus Redis (uvicorn.Server, log_level warning).
    `--thread-tokens N` (what-if): cap anyio's threadpool, which runs the sync endpoints, at N threads (default 40)."""
    server = uvicorn.Server(uvicorn.Config(create_app(Settings()), host="127.0.0.1", port=port, log_level="warning"))
    if thread_tokens is None:
        server.run()
        return

    async def capped() -> None:
        anyio.to_thread.current_default_thread_limiter().total_tokens = thread_tokens
        await server.serve()

    asyncio.run(capped())


def machine_ticks() -> tuple[int, int]:
    """(all, idle + iowait) CPU ticks of the whole machine, from /proc/stat."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(ticks), ticks[3] + ticks[4]


def measured(pid: int, load: Coroutine[Any, Any, dict[str, Any]]) -> dict[str, Any]:
    """Run a load; add the server process's CPU seconds and the machine's busy fraction meanwhile."""
    cpu0, (all0, idle0) = cpu_seconds(pid), machine_ticks()
    out = asyncio.run(load)
    all1, idle1 = machine_ticks()
    out.update(server_cpu_s=cpu_seconds(pid) - cpu0, machine_busy=1 - (idle1 - idle0) / max(all1 - all0, 1))
    return out


def _filter(params: dict[str, str]) -> IncidentFilter:
    def at(k: str) -> datetime | None:
        return datetime.fromisoformat(params[k]) if k in params else None

    return IncidentFilter(
        camera=params.get("camera"),
        site=params.get("site"),
        rule=params.get("rule"),
        status=params.get("status"),
        since=at("since"),
        until=at("until"),
    )


def breakdown(store: Store, key: str, params: dict[str, str], reps: int = 7) -> dict[str, float]:
    """Medians, in process: API-key lookup, query + ORM load (`list_incidents`), IncidentOut building, JSON."""
    f = _filter(params)
    parts: dict[str, list[float]] = {"auth_ms": [], "query_ms": [], "build_ms": [], "json_ms": []}
    for _ in range(reps):
        ta = time.perf_counter()
        with store.read() as session:
            find_key(session, key)
        t0 = time.perf_counter()
        with store.read() as session:
            rows, cursor = list_incidents(session, f, cursor=None, limit=LIMIT)
        t1 = time.perf_counter()
        page = IncidentPage(items=[IncidentOut.of(r, "http://127.0.0.1:8000") for r in rows], next_cursor=cursor)
        t2 = time.perf_counter()
        IncidentPage.model_validate(page).model_dump_json()  # what FastAPI does with a returned model
        t3 = time.perf_counter()
        for k, v in zip(parts, (t0 - ta, t1 - t0, t2 - t1, t3 - t2), strict=True):
            parts[k].append(v * 1000)
    return {k: statistics.median(v) for k, v in parts.items()}


def query_plan(store: Store, params: dict[str, str]) -> list[str]:
    """The plan of the list query as executed (SQLite: EXPLAIN QUERY PLAN; PostgreSQL: EXPLAIN ANALYZE)."""
    captured: list[tuple[str, Any]] = []

    def grab(_conn: Any, _cur: Any, statement: str, parameters: Any, _ctx: Any, _many: bool) -> None:
        if "FROM incidents" in statement:
            captured.append((statement, parameters))

    event.listen(store.engine, "before_cursor_execute", grab)
    try:
        with store.read() as session:
            list_incidents(session, _filter(params), cursor=None, limit=LIMIT)
    finally:
        event.remove(store.engine, "before_cursor_execute", grab)
    sql, bound = captured[-1]
    sqlite = store.engine.dialect.name == "sqlite"
    prefix = "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN (ANALYZE, COSTS OFF) "
    with store.engine.connect() as conn:
        rows = conn.exec_driver_sql(prefix + sql, bound).all()
    return [str(r[3] if sqlite else r[0]) for r in rows]
