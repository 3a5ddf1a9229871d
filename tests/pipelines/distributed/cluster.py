"""Real `safewatch api` / `safewatch worker` processes for the distributed tests (test_redis_outage.py,
test_fencing_pause.py): start them with logs, stop them, read what they published and what the store holds."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

ROOT = Path(__file__).resolve().parents[3]
# the busy paved area of vtest (people cross it all the time): intrusion incidents open and close every few seconds
PAVED = [[0.00, 0.33], [0.55, 0.33], [0.72, 0.30], [1.00, 0.45], [1.00, 0.84], [0.56, 0.60], [0.00, 0.42]]

Key = tuple[str, int]
T = TypeVar("T")


def busy_camera_yaml(cam_id: str, clip: Path, site: str = "outage-test") -> str:
    """A camera over the looping clip whose intrusion incidents open and close every few seconds."""
    return yaml.safe_dump(
        {
            "id": cam_id,
            "site": site,
            "name": f"camera {cam_id}",
            "streams": {"detect": str(clip)},  # a file: played in real time and looped by the worker
            "analysis_fps": 2,
            "evidence": {"enabled": False},
            "zones": [{"name": "paved", "kind": "forbidden", "polygon": PAVED}],
            "rules": [
                {
                    "type": "intrusion",
                    "zones": ["paved"],
                    "labels": ["person"],
                    "min_seconds": 0.5,
                    "clear_seconds": 1,
                    "cooldown_seconds": 0,
                }
            ],
        },
        sort_keys=False,
    )


@dataclass
class Cluster:
    tmp: Path
    env: dict[str, str]
    db: Path
    key: str = ""  # a viewer API key (GET /metrics)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @classmethod
    def with_api(cls, tmp: Path, redis_url: str, prefix: str, data: Path, cfg: Path, port: int) -> Cluster:
        """A cluster on Redis `redis_url`/`prefix` with the store in `data`, a viewer key in it, and `safewatch api`
        (cameras from `cfg`) started on `port`; start the workers with `start`."""
        from api.store.db import Store  # the test process opens the store the API process will use
        from api.store.keys import create_key

        env = {
            **os.environ,
            "SAFEWATCH_REDIS_URL": redis_url,
            "SAFEWATCH_REDIS_PREFIX": prefix,
            "SAFEWATCH_DATA_DIR": str(data),
            "SAFEWATCH_MODELS_DIR": str(ROOT / "models"),
            "SAFEWATCH_WEBHOOK_DISPATCHER": "false",
            "OMP_NUM_THREADS": "1",
        }
        cluster = cls(tmp, env, data / "safewatch.db")
        store = Store(f"sqlite:///{cluster.db}")
        with store.session() as session:
            _row, cluster.key = create_key(session, role="viewer", name="test")
        store.dispose()
        cluster.start("api", "api", "--config-dir", str(cfg), "--port", str(port), "--sync-interval", "0.5")
        return cluster

    def start(self, name: str, *args: str, env: dict[str, str] | None = None) -> None:
        """`safewatch <args>` as process `name` (log in `<tmp>/<name>.log`); `env` overrides some variables."""
        out = (self.tmp / f"{name}.log").open("wb")
        cmd = [sys.executable, "-m", "cli.main", *args]
        environ = {**self.env, **(env or {})}
        self.procs[name] = subprocess.Popen(cmd, cwd=ROOT, env=environ, stdout=out, stderr=subprocess.STDOUT)

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text(errors="replace")

    def logs(self) -> str:
        return "\n".join(f"--- {n}\n{self.log(n)[-3000:]}" for n in self.procs)

    def stop(self, *names: str) -> dict[str, int]:
        """SIGTERM (after a SIGCONT, in case one is paused), then wait (kill after 20 s); the exit codes."""
        chosen = [self.procs[n] for n in names or self.procs]
        for p in chosen:
            if p.poll() is None:
                p.send_signal(signal.SIGCONT)
                p.send_signal(signal.SIGTERM)
        codes = {}
        for name, p in self.procs.items():
            if p not in chosen:
                continue
            try:
                codes[name] = p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                codes[name] = p.wait()
        return codes

    def pause(self, name: str) -> None:
        """SIGSTOP, and wait until the kernel shows the process stopped (state T)."""
        proc = self.procs[name]
        proc.send_signal(signal.SIGSTOP)
        stat = Path(f"/proc/{proc.pid}/stat")
        self.wait(f"{name} stopped", lambda: stat.read_text().rsplit(")", 1)[1].split()[0] == "T", 10)

    def resume(self, name: str) -> None:
        self.procs[name].send_signal(signal.SIGCONT)

    def published(self, worker: str) -> list[dict[str, Any]]:
        path = self.tmp / f"{worker}-events.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]

    def spooled(self, worker: str) -> int:
        """Records waiting in the worker's spool (the bus truncates the file once everything is delivered)."""
        return len(self.spool(worker))

    def spool(self, worker: str) -> list[bytes]:
        """The records (event JSON lines) waiting in the worker's spool."""
        out: list[bytes] = []
        for path in (self.tmp / "data" / "spool" / worker).glob("*.jsonl"):
            offset_file = path.with_suffix(".offset")
            offset = int(offset_file.read_text() or 0) if offset_file.exists() else 0
            out += path.read_bytes()[offset:].splitlines(keepends=True)
        return [line for line in out if line.endswith(b"\n")]

    def stored(self) -> dict[Key, dict[str, Any]]:
        """(incident id, seq) → stored event payload, read straight from the SQLite store."""
        if not self.db.exists():
            return {}
        con = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=5)
        try:
            rows = con.execute("SELECT incident_id, seq, payload FROM incident_events").fetchall()
        except sqlite3.OperationalError:  # not migrated yet
            return {}
        finally:
            con.close()
        return {(i, s): json.loads(p) for i, s, p in rows}

    def wait(self, what: str, cond: Callable[[], T | None], timeout: float) -> T:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = cond()
            if value:
                return value
            time.sleep(0.2)
        raise AssertionError(f"timed out after {timeout} s waiting for {what}\n{self.logs()}")
