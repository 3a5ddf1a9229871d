"""Soak: the embedded service on two looping cameras with low retention limits; RSS, fds, disk and database over time.

    .venv/bin/python -m bench.soak --minutes 20 --out bench/results

Starts the real `safewatch run --demo` (files paced in real time and looped, as `make demo`) as a subprocess with its
own temporary data and config directories, two cameras over sample_media/vtest.mp4 whose intrusion rules open and close
an incident every few seconds (~0.9 MB of evidence each), `SAFEWATCH_RETENTION_MAX_BYTES` (default 32 MiB), a short
`SAFEWATCH_RETENTION_INTERVAL_S` and, when this build has it, `SAFEWATCH_RETENTION_DB_DAYS` (default 0.002 days, about
3 minutes). Looping comes from `safewatch run` itself: camera YAML has no source options (`loop` is a `SourceConfig`
field the worker sets for files when it runs in real time).

Every `--interval` seconds it samples, from outside the service: RSS, open file descriptors, threads and CPU of the
service's process tree (/proc), the media directory's bytes and files, the SQLite size (pages, free pages, WAL file)
and row counts (read-only connection), incidents opened so far and open now (`GET /metrics` with the admin key the
service prints), and evidence deleted by retention (its log). Each sample also exercises the API (`GET /v1/incidents`,
a ranged read of the newest clip) so leaks on the HTTP path show too. Results: `<out>/soak.csv` (every sample) and
`<out>/soak.md` (parameters, verdicts, samples; a `<!-- summary -->` line as bench/assemble.py reads).

Verdicts use the second half of the run (the first half is warm-up: models load, caches fill, retention reaches its
cap): a Theil-Sen slope (median of pairwise slopes: robust to one-off spikes) times the half's length is the growth,
compared with a stated tolerance. Flat RSS: growth <= max(8 MiB, 2% of the half's median). Flat fds: growth <= 3.
Bounded media: the cap was reached (retention had work to do), the maximum stays <= 1.5x the cap and growth <= 20% of
the cap (between two retention runs the cameras add a few MiB above it, so samples scatter around the cap). Bounded
database: size (SQLite pages, WAL content included) growth <= max(0.125 MiB, 5%) and incident rows growth <= max(10,
20%). A run shorter than 20 minutes never counts as met. Ctrl-C (or SIGTERM) stops the soak early: results of the
samples so far are written and the service is stopped with SIGINT (its clean shutdown is timed and reported).

Not in `python -m bench` (it runs bench_*.py): it takes 20 minutes and wants a quiet machine. `--out bench/results`
would put soak.md among the files bench/assemble.py gathers into RESULTS.md.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

import httpx
import yaml

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "sample_media" / "vtest.mp4"
DEFAULT_OUT = ROOT / "bench" / "results"
MIB = 1 << 20
TICKS = os.sysconf("SC_CLK_TCK")
_KEY_LINE = re.compile(r"admin API key \(shown once\): (sw_\S+)")
_OPENED = re.compile(r'^safewatch_incident_events_total\{[^}]*type="opened"[^}]*\}\s+([0-9.e+]+)', re.M)
_OPEN_NOW = re.compile(r'^safewatch_incidents\{[^}]*status="open"[^}]*\}\s+([0-9.e+]+)', re.M)
# Evidence deleted by retention: one line per incident directory, or (older builds) one summary line per run.
_EVIDENCE_DELETED = re.compile(
    r"retention deleted \S+ \((?:size|age)|retention removed the evidence of (\d+) incidents"
)
TABLES = ("incidents", "incident_events", "handling_actions", "webhook_deliveries")


def _intrusion(name: str, zone: str) -> dict[str, object]:
    return {"type": "intrusion", "name": name, "zones": [zone], "clear_seconds": 3, "cooldown_seconds": 5}


def camera_yamls(analysis_fps: float) -> list[dict[str, object]]:
    """Two cameras on the sample clip; per 80 s loop (replayed): gate ~18 incidents, plaza ~28, each ~0.9 MB."""
    footpath = [[0.50, 0.515], [0.72, 0.54], [0.72, 0.72], [0.52, 0.63]]
    west = [[0.00, 0.33], [0.30, 0.33], [0.30, 0.50], [0.00, 0.42]]
    plaza = [[0.62, 0.40], [1.00, 0.45], [1.00, 0.84], [0.62, 0.66]]
    base = {"site": "soak", "streams": {"detect": str(SAMPLE)}, "analysis_fps": analysis_fps}
    return [
        {
            "id": "soak-gate",
            "name": "soak gate",
            **base,
            "zones": [
                {"name": "footpath", "kind": "forbidden", "polygon": footpath},
                {"name": "west", "polygon": west},
            ],
            "rules": [_intrusion("footpath", "footpath"), _intrusion("west", "west")],
        },
        {
            "id": "soak-plaza",
            "name": "soak plaza",
            **base,
            "zones": [{"name": "plaza_east", "polygon": plaza}],
            "rules": [_intrusion("plaza", "plaza_east")],
        },
    ]


# ---- the service ------------------------------------------------------------------------------------------------


@dataclass
class Service:
    proc: subprocess.Popen[bytes]
    base: str
    key: str
    log_path: Path
    data_dir: Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def db_days_supported() -> bool:
    """Whether this build's settings know `retention_db_days` (unknown SAFEWATCH_* variables are silently ignored)."""
    from api.settings import Settings

    return "retention_db_days" in Settings.model_fields


def service_env(args: argparse.Namespace, *, db_days: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SAFEWATCH_")}  # hermetic: only ours
    env |= {
        "SAFEWATCH_MODELS_DIR": str(ROOT / "models"),
        "SAFEWATCH_RETENTION_MAX_BYTES": str(int(args.cap_mib * MIB)),
        "SAFEWATCH_RETENTION_INTERVAL_S": str(args.retention_interval),
        "PYTHONUNBUFFERED": "1",
    }
    if db_days:
        env["SAFEWATCH_RETENTION_DB_DAYS"] = str(args.db_days)
    return env


def start_service(workdir: Path, env: dict[str, str], analysis_fps: float) -> Service:
    config_dir, data_dir = workdir / "cameras", workdir / "data"
    config_dir.mkdir(parents=True, exist_ok=True)
    for cam in camera_yamls(analysis_fps):
        (config_dir / f"{cam['id']}.yaml").write_text(yaml.safe_dump(cam, allow_unicode=True), encoding="utf-8")
    exe = Path(sys.executable).parent / "safewatch"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "cli.main"]
    port = free_port()
    cmd += ["run", "--demo", "--config-dir", str(config_dir), "--data-dir", str(data_dir)]
    cmd += ["--host", "127.0.0.1", "--port", str(port)]
    log_path = workdir / "service.log"
    with log_path.open("wb") as log:
        # Own session: a Ctrl-C at the terminal reaches only this script, which then stops the service once, cleanly
        # (a second SIGINT would make the service exit at once).
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        return _wait_ready(proc, port, log_path, data_dir)
    except BaseException:
        stop_service(proc)
        raise


def _wait_ready(proc: subprocess.Popen[bytes], port: int, log_path: Path, data_dir: Path) -> Service:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        match = _KEY_LINE.search(log_path.read_text(encoding="utf-8", errors="replace"))
        if match:
            svc = Service(proc, f"http://127.0.0.1:{port}", match.group(1), log_path, data_dir)
            try:
                if httpx.get(svc.base + "/healthz", timeout=2, trust_env=False).status_code == 200:
                    return svc
            except httpx.HTTPError:
                pass
        time.sleep(0.5)
    raise RuntimeError(f"safewatch run did not come up:\n{log_path.read_text(encoding='utf-8', errors='replace')}")


def stop_service(proc: subprocess.Popen[bytes]) -> tuple[int, float]:
    """SIGINT (clean stop: cameras, drain, HTTP), a second one after 60 s, SIGKILL after 10 more: (exit code, s)."""
    start = time.monotonic()
    for sig, wait in ((signal.SIGINT, 60.0), (signal.SIGINT, 10.0), (signal.SIGKILL, 10.0)):
        if proc.poll() is not None:
            break
        proc.send_signal(sig)
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
    return proc.wait(), time.monotonic() - start


# ---- probes -----------------------------------------------------------------------------------------------------


@dataclass
class Sample:
    t_s: float
    utc: str
    rss_mib: float
    fds: int
    threads: int
    procs: int
    cpu_pct: float
    media_mib: float
    media_files: int
    db_mib: float  # SQLite page_count x page_size: the database as it is after a checkpoint (WAL content included)
    db_free_mib: float  # of which free pages (reused before the file grows)
    wal_mib: float  # the -wal file on disk
    incidents: int  # rows now
    events: int
    actions: int
    deliveries: int
    opened_total: int  # incidents opened since the start (metrics counter)
    open_now: int
    evidence_deleted: int  # incident evidence directories retention deleted so far (service log)
    retention_lines: int  # every log line that mentions retention (evidence and database) so far
    api_errors: int  # so far: 5xx or transport errors of the exercising requests
    load1: float


def process_tree(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def tree_stats(pid: int) -> tuple[int, int, int, int, int]:
    """(RSS bytes, open fds, threads, CPU ticks, processes) summed over the process tree of `pid`."""
    rss = fds = threads = ticks = n = 0
    for p in process_tree(pid):
        try:
            status = Path(f"/proc/{p}/status").read_text()
            stat = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            nfd = len(os.listdir(f"/proc/{p}/fd"))
        except OSError:
            continue
        fields_ = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        rss += int(fields_.get("VmRSS", "0 kB").split()[0]) * 1024
        threads += int(fields_.get("Threads", "0"))
        ticks += int(stat[11]) + int(stat[12])  # utime + stime
        fds += nfd
        n += 1
    return rss, fds, threads, ticks, n


def fd_kinds(pid: int, data_dir: Path) -> dict[str, int]:
    """Open fds of the tree by kind (socket, pipe, anon_inode:…, database, media, model, other file), to tell a leak
    from a pool that grew once."""
    kinds: dict[str, int] = {}
    for p in process_tree(pid):
        try:
            names = os.listdir(f"/proc/{p}/fd")
        except OSError:
            continue
        for name in names:
            try:
                target = os.readlink(f"/proc/{p}/fd/{name}")
            except OSError:
                continue
            if not target.startswith("/"):
                kind = target.split(":[", 1)[0] if target.startswith(("socket", "pipe")) else target
            elif target.startswith(str(data_dir / "media")):
                kind = "media file"
            elif target.startswith(str(data_dir / "safewatch.db")):
                kind = "database file"
            elif target.endswith(".onnx"):
                kind = "model file"
            else:
                kind = "other file" if not target.startswith("/dev/") else target
            kinds[kind] = kinds.get(kind, 0) + 1
    return dict(sorted(kinds.items()))


def dir_usage(root: Path) -> tuple[int, int]:
    total = files = 0
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            try:
                total += os.lstat(os.path.join(dirpath, name)).st_size
                files += 1
            except OSError:  # deleted by retention while walking
                pass
    return total, files


@dataclass(frozen=True)
class DbStats:
    bytes: int  # page_count x page_size
    free: int  # freelist_count x page_size
    wal: int  # size of the -wal file
    rows: dict[str, int]


def db_stats(path: Path) -> DbStats:
    """Size and row counts through a read-only connection (it sees the WAL's committed pages as the file will)."""
    wal_path = path.with_name(path.name + "-wal")
    wal = wal_path.stat().st_size if wal_path.exists() else 0
    rows = dict.fromkeys(TABLES, -1)
    if not path.exists():
        return DbStats(0, 0, wal, rows)
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        page = int(conn.execute("PRAGMA page_size").fetchone()[0])
        pages = int(conn.execute("PRAGMA page_count").fetchone()[0])
        free = int(conn.execute("PRAGMA freelist_count").fetchone()[0])
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        for table in TABLES:
            if table in names:
                rows[table] = int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
    finally:
        conn.close()
    return DbStats(pages * page, free * page, wal, rows)


class Prober:
    """Samples the service; keeps the state deltas need (CPU ticks, log offset, error count)."""

    def __init__(self, svc: Service, start: float) -> None:
        self.svc, self.start = svc, start
        self.http = httpx.Client(base_url=svc.base, headers={"X-API-Key": svc.key}, timeout=30, trust_env=False)
        self.last_ticks: tuple[float, int] | None = None
        self.log_offset = 0
        self.evidence_deleted = self.retention_lines = self.api_errors = 0
        self.fds_first: dict[str, int] = {}
        self.fds_last: dict[str, int] = {}

    def close(self) -> None:
        self.http.close()

    def _get(self, path: str, **kw: object) -> httpx.Response | None:
        try:
            r = self.http.get(path, **kw)  # type: ignore[arg-type]
        except httpx.HTTPError:
            self.api_errors += 1
            return None
        self.api_errors += r.status_code >= 500
        return r

    def _exercise(self) -> tuple[int, int]:
        """List incidents and read the start of the newest closed one's clip; the metrics counters."""
        page = self._get("/v1/incidents", params={"limit": 20})
        if page is not None and page.status_code == 200:
            closed = [i for i in page.json().get("items", []) if i.get("status") == "closed"]
            if closed:
                self._get(f"/v1/incidents/{closed[0]['id']}/clip.mp4", headers={"Range": "bytes=0-65535"})
        metrics = self._get("/metrics")
        text = metrics.text if metrics is not None and metrics.status_code == 200 else ""
        opened = sum(float(v) for v in _OPENED.findall(text))
        open_now = sum(float(v) for v in _OPEN_NOW.findall(text))
        return int(opened), int(open_now)

    def _scan_log(self) -> None:
        with self.svc.log_path.open("rb") as f:
            f.seek(self.log_offset)
            chunk = f.read()
        end = chunk.rfind(b"\n") + 1  # whole lines only
        self.log_offset += end
        text = chunk[:end].decode("utf-8", "replace")
        self.evidence_deleted += sum(int(n) if n else 1 for n in _EVIDENCE_DELETED.findall(text))
        self.retention_lines += sum("retention" in line for line in text.splitlines())

    def sample(self) -> Sample:
        now = time.monotonic()
        opened, open_now = self._exercise()
        rss, fds, threads, ticks, procs = tree_stats(self.svc.proc.pid)
        cpu = 0.0
        if self.last_ticks is not None and now > self.last_ticks[0]:
            cpu = 100.0 * (ticks - self.last_ticks[1]) / TICKS / (now - self.last_ticks[0])
        self.last_ticks = (now, ticks)
        media, files = dir_usage(self.svc.data_dir / "media")
        db = db_stats(self.svc.data_dir / "safewatch.db")
        rows = db.rows
        self._scan_log()
        self.fds_last = fd_kinds(self.svc.proc.pid, self.svc.data_dir)
        self.fds_first = self.fds_first or self.fds_last
        return Sample(
            t_s=round(now - self.start, 1),
            utc=datetime.now(UTC).strftime("%H:%M:%S"),
            rss_mib=round(rss / MIB, 1),
            fds=fds,
            threads=threads,
            procs=procs,
            cpu_pct=round(cpu, 1),
            media_mib=round(media / MIB, 2),
            media_files=files,
            db_mib=round(db.bytes / MIB, 3),
            db_free_mib=round(db.free / MIB, 3),
            wal_mib=round(db.wal / MIB, 3),
            incidents=rows["incidents"],
            events=rows["incident_events"],
            actions=rows["handling_actions"],
            deliveries=rows["webhook_deliveries"],
            opened_total=opened,
            open_now=open_now,
            evidence_deleted=self.evidence_deleted,
            retention_lines=self.retention_lines,
            api_errors=self.api_errors,
            load1=round(os.getloadavg()[0], 2),
        )


# ---- analysis ---------------------------------------------------------------------------------------------------


def theil_sen(xs: list[float], ys: list[float]) -> float:
    """Median of the pairwise slopes (0.0 with fewer than two distinct x)."""
    slopes = sorted(
        (ys[j] - ys[i]) / (xs[j] - xs[i]) for i in range(len(xs)) for j in range(i + 1, len(xs)) if xs[j] != xs[i]
    )
    if not slopes:
        return 0.0
    mid = len(slopes) // 2
    return slopes[mid] if len(slopes) % 2 else (slopes[mid - 1] + slopes[mid]) / 2


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


@dataclass(frozen=True)
class Check:
    name: str
    unit: str
    median: float  # second half
    slope_per_h: float
    growth: float  # slope x length of the second half
    tolerance: float
    ok: bool
    note: str = ""


def second_half(samples: list[Sample]) -> list[Sample]:
    end = samples[-1].t_s
    return [s for s in samples if s.t_s >= end / 2]


def _trend(name: str, unit: str, half: list[Sample], values: list[float], tol: float, note: str = "") -> Check:
    xs = [s.t_s for s in half]
    slope = theil_sen(xs, values)
    growth = slope * (xs[-1] - xs[0])
    return Check(name, unit, _median(values), slope * 3600, growth, tol, growth <= tol, note)


def analyse(samples: list[Sample], cap_mib: float, *, db_retention: bool = True) -> list[Check]:
    """The verdicts of the module docs, on the second half of `samples` (needs at least two samples)."""
    half = second_half(samples)
    rss = [s.rss_mib for s in half]
    media = [s.media_mib for s in half]
    db = [s.db_mib for s in half]
    rows = [float(s.incidents) for s in half]
    peak = max(s.media_mib for s in samples)
    reached = peak >= cap_mib * 0.9 or samples[-1].evidence_deleted > 0
    media_check = _trend("media (evidence) size", "MiB", half, media, 0.20 * cap_mib)
    media_ok = media_check.ok and reached and peak <= 1.5 * cap_mib
    media_note = f"max {peak:.1f} MiB = {peak / cap_mib:.2f}x the {cap_mib:g} MiB cap" + (
        "" if reached else "; cap never reached: inconclusive"
    )
    db_note = "" if db_retention else "no database retention in this run"
    return [
        _trend("RSS (process tree)", "MiB", half, rss, max(8.0, 0.02 * _median(rss))),
        _trend("open file descriptors", "fds", half, [float(s.fds) for s in half], 3.0),
        Check(**{**asdict(media_check), "ok": media_ok, "note": media_note}),
        _trend("database size (pages)", "MiB", half, db, max(0.125, 0.05 * _median(db)), db_note),
        _trend("incident rows", "rows", half, rows, max(10.0, 0.20 * _median(rows)), db_note),
        _trend("threads (informational)", "threads", half, [float(s.threads) for s in half], 2.0),
    ]


def met(checks: list[Check], minutes: float) -> bool:
    return minutes >= 20 and all(c.ok for c in checks if "informational" not in c.name)


# ---- report -----------------------------------------------------------------------------------------------------

_BARS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float]) -> str:
    lo, hi = min(values), max(values)
    if hi - lo <= 1e-9:
        return _BARS[3] * len(values)
    return "".join(_BARS[min(7, int((v - lo) / (hi - lo) * 8))] for v in values)


def write_csv(path: Path, samples: list[Sample]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=[fl.name for fl in fields(Sample)])
        writer.writeheader()
        writer.writerows(asdict(s) for s in samples)


def _thin(samples: list[Sample], rows: int) -> list[Sample]:
    step = max(1, -(-len(samples) // rows))
    picked = samples[::step]
    return picked if picked[-1] is samples[-1] else [*picked, samples[-1]]


def render(samples: list[Sample], checks: list[Check], params: dict[str, str], notes: list[str], cap_mib: float) -> str:
    minutes = samples[-1].t_s / 60
    ok = met(checks, minutes)
    last = samples[-1]
    rss, fds = checks[0], checks[1]
    result = (
        f"{minutes:.0f} min: RSS {rss.slope_per_h:+.1f} MiB/h ({rss.median:.0f} MiB), fds {fds.slope_per_h:+.1f}/h "
        f"({fds.median:.0f}), media max {max(s.media_mib for s in samples):.1f} MiB (cap {cap_mib:g} MiB), "
        f"DB {last.db_mib:.2f} MiB, {last.incidents} incident rows after {last.opened_total} opened"
    )
    goal = ">= 20 min, 2 looping cameras, low retention limits: flat RSS and fds, bounded media and database"
    lines = [
        "# Soak: embedded service, two looping cameras, low retention limits",
        "",
        f"<!-- summary: goal={goal}; result={result}; met={'yes' if ok else 'no'} -->",
        "",
        "`python -m bench.soak` (bench/soak.py docstring: what is measured and how verdicts are computed).",
        "",
        *[f"- {k}: {v}" for k, v in params.items()],
        *[f"- note: {n}" for n in notes],
        "",
        "## Verdicts (second half of the run)",
        "",
        "Growth = Theil-Sen slope x length of the second half; flat/bounded when growth <= tolerance.",
        "",
        "| metric | median | slope per hour | growth | tolerance | over time (whole run) | verdict |",
        "|---|--:|--:|--:|--:|---|---|",
    ]
    series = {
        0: [s.rss_mib for s in samples],
        1: [float(s.fds) for s in samples],
        2: [s.media_mib for s in samples],
        3: [s.db_mib for s in samples],
        4: [float(s.incidents) for s in samples],
        5: [float(s.threads) for s in samples],
    }
    for i, c in enumerate(checks):
        verdict = ("flat" if i in (0, 1, 5) else "bounded") if c.ok else "GROWS" if c.growth > c.tolerance else "NO"
        spark = f"{sparkline(series[i])} {min(series[i]):g}–{max(series[i]):g}"
        lines.append(
            f"| {c.name} | {c.median:.2f} {c.unit} | {c.slope_per_h:+.2f} | {c.growth:+.2f} | {c.tolerance:.2f} "
            f"| {spark} | {verdict}{' (' + c.note + ')' if c.note else ''} |"
        )
    lines += ["", f"Met: {'yes' if ok else 'no'}" + ("" if minutes >= 20 else " (run shorter than 20 minutes)"), ""]
    lines += _sample_table(samples)
    return "\n".join(lines) + "\n"


def _sample_table(samples: list[Sample]) -> list[str]:
    lines = [
        "## Samples",
        "",
        "Every sample is in soak.csv; up to 25 shown. Rows = rows in the store now; opened = incidents opened since "
        "the start; evidence deleted = incident folders retention deleted so far (service log); DB MiB = SQLite "
        "pages (free pages in brackets, reused before the file grows), WAL = the -wal file on disk.",
        "",
        "| t (min) | RSS MiB | fds | threads | CPU % | media MiB | files | DB MiB (free) | WAL MiB | incident rows "
        "| event rows | opened | open | evidence deleted | API errors | load |",
        "|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for s in _thin(samples, 25):
        cells = [
            f"{s.t_s / 60:.1f}",
            f"{s.rss_mib:.1f}",
            s.fds,
            s.threads,
            f"{s.cpu_pct:.0f}",
            f"{s.media_mib:.1f}",
            s.media_files,
            f"{s.db_mib:.2f} ({s.db_free_mib:.2f})",
            f"{s.wal_mib:.2f}",
            s.incidents,
            s.events,
            s.opened_total,
            s.open_now,
            s.evidence_deleted,
            s.api_errors,
            f"{s.load1:.2f}",
        ]
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    return lines


# ---- main -------------------------------------------------------------------------------------------------------


def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout
        return out.stdout.strip() + (" (with uncommitted changes)" if dirty.strip() else "")
    except OSError:
        return "?"


def _kinds(kinds: dict[str, int]) -> str:
    return ", ".join(f"{k} {n}" for k, n in kinds.items()) or "-"


def _raise_interrupt(_sig: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _start(args: argparse.Namespace, workdir: Path) -> tuple[Service, str]:
    """The service, and what became of database retention: `on`, `refused` (the service rejected the value: started
    without it, so its default applies) or `absent` (not a setting of this build)."""
    if not db_days_supported():
        return start_service(workdir / "run0", service_env(args, db_days=False), args.analysis_fps), "absent"
    try:
        return start_service(workdir / "run0", service_env(args, db_days=True), args.analysis_fps), "on"
    except RuntimeError as exc:
        if "RETENTION_DB_DAYS" not in str(exc):
            raise
    return start_service(workdir / "run1", service_env(args, db_days=False), args.analysis_fps), "refused"


def _db_retention_text(state: str, days: float) -> str:
    if state == "on":
        return f"SAFEWATCH_RETENTION_DB_DAYS={days:g} ({days * 86400:.0f} s)"
    if state == "refused":
        return (
            f"off in effect: the service refused SAFEWATCH_RETENTION_DB_DAYS={days:g}, so it ran without it (its "
            "default keeps every incident of a run this short)"
        )
    return "off: SAFEWATCH_RETENTION_DB_DAYS is not a setting of this build"


def _log_problems(log_path: Path, workdir: Path) -> list[str]:
    """WARNING/ERROR lines of the service log, counted by their text without timestamps and ids."""
    counts: dict[str, int] = {}
    for line in log_path.read_text(encoding="utf-8", errors="replace").splitlines():
        m = re.match(r"\S+ \S+ (WARNING|ERROR|CRITICAL) (.*)", line)
        if m or line.startswith("Traceback"):
            text = (f"{m.group(1)} {m.group(2)}" if m else line).replace(str(workdir), "<work>")
            key = re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}|\d+(\.\d+)?", "#", text)[:160]
            counts[key] = counts.get(key, 0) + 1
    return [f"{n}x {k}" for k, n in sorted(counts.items(), key=lambda kv: -kv[1])]


def soak(args: argparse.Namespace) -> int:
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="safewatch-soak-"))
    notes: list[str] = []
    samples: list[Sample] = []
    signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        svc, db_state = _start(args, workdir)
    except BaseException:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        raise
    sys.stdout.write(f"soak: service pid {svc.proc.pid} on {svc.base}, data in {svc.data_dir}\n")
    prober = Prober(svc, time.monotonic())
    deadline = prober.start + args.minutes * 60
    try:  # from here on, whatever happens, the service is stopped
        while True:
            if svc.proc.poll() is not None:
                notes.append(f"the service exited early with status {svc.proc.returncode}")
                break
            s = prober.sample()
            samples.append(s)
            sys.stdout.write(
                f"soak: t={s.t_s:6.0f}s rss={s.rss_mib:.0f}MiB fds={s.fds} media={s.media_mib:.1f}MiB "
                f"db={s.db_mib:.2f}MiB rows={s.incidents} opened={s.opened_total} cpu={s.cpu_pct:.0f}%\n"
            )
            sys.stdout.flush()
            if time.monotonic() >= deadline:
                break
            next_at = prober.start + len(samples) * args.interval  # fixed ticks: sampling time does not drift
            time.sleep(max(0.0, min(next_at, deadline) - time.monotonic()))
    except KeyboardInterrupt:
        notes.append("interrupted: results of the samples so far")
    finally:
        prober.close()
        code, seconds = stop_service(svc.proc)
    notes.append(f"open fds by kind, first sample: {_kinds(prober.fds_first)}; last: {_kinds(prober.fds_last)}")
    notes.append(f"shutdown (SIGINT): exit status {code} after {seconds:.1f} s")
    problems = _log_problems(svc.log_path, workdir)
    notes += [f"service log: {p}" for p in problems[:10]] or ["service log: no WARNING/ERROR lines"]
    if args.keep:
        notes.append(f"work directory kept: {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    if len(samples) < 3:
        sys.stderr.write("soak: fewer than 3 samples, nothing to analyse\n")
        return 1
    params = {
        "duration": f"{samples[-1].t_s / 60:.1f} min, a sample every {args.interval:g} s ({len(samples)} samples)",
        "cameras": f"2 (soak-gate: 2 intrusion rules, soak-plaza: 1), sample_media/vtest.mp4 looped in real time, "
        f"{args.analysis_fps:g} fps analysis",
        "media cap": f"{args.cap_mib:g} MiB (SAFEWATCH_RETENTION_MAX_BYTES), retention every "
        f"{args.retention_interval:g} s (SAFEWATCH_RETENTION_INTERVAL_S)",
        "database retention": _db_retention_text(db_state, args.db_days),
        "machine": f"{os.cpu_count()} logical cores, load average at the end {os.getloadavg()[0]:.2f}",
        "git commit": _git_commit(),
        "run": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }
    checks = analyse(samples, args.cap_mib, db_retention=db_state == "on")
    write_csv(out / "soak.csv", samples)
    (out / "soak.md").write_text(render(samples, checks, params, notes, args.cap_mib), encoding="utf-8")
    sys.stdout.write(f"soak: wrote {out / 'soak.md'} and {out / 'soak.csv'}\n")
    return 0 if met(checks, samples[-1].t_s / 60) else 3


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.soak", description=(__doc__ or "").splitlines()[0])
    p.add_argument("--minutes", type=float, default=20.0, help="how long to run (default 20)")
    p.add_argument("--interval", type=float, default=30.0, help="seconds between samples (default 30)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="directory for soak.md and soak.csv")
    p.add_argument("--cap-mib", type=float, default=32.0, help="SAFEWATCH_RETENTION_MAX_BYTES in MiB (default 32)")
    p.add_argument("--retention-interval", type=float, default=10.0, help="SAFEWATCH_RETENTION_INTERVAL_S (10)")
    p.add_argument("--db-days", type=float, default=0.002, help="SAFEWATCH_RETENTION_DB_DAYS (0.002 = 173 s)")
    p.add_argument("--analysis-fps", type=float, default=5.0, help="analysis rate of both cameras (default 5)")
    p.add_argument("--keep", action="store_true", help="keep the temporary data/config directory")
    return soak(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
