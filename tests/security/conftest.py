"""The attack suite's target: `safewatch run` as a real subprocess on a free loopback port.

`start_service(...)` starts one (a fresh data dir, the given camera YAMLs, extra environment), waits for the admin
key it prints (`--demo`), and returns a `LiveService` with its base URL, the admin key, helpers to mint keys of any
role (optionally site-scoped) through `POST /v1/keys`, and the path of its combined stdout/stderr log, so tests can
assert that no secret ever reached a log line. Services are stopped with SIGINT at the end of the test (module) that
started them. Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "sample_media" / "vtest.mp4"
_KEY_LINE = re.compile(r"admin API key \(shown once\): (sw_\S+)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def camera_yaml(camera_id: str, site: str, detect: str | None = None, **extra: Any) -> dict[str, Any]:
    """A small valid camera config on the sample clip (under the default media root)."""
    return {
        "id": camera_id,
        "site": site,
        "name": f"{camera_id} 测试",
        "streams": {"detect": detect or str(SAMPLE)},
        "analysis_fps": 2,
        "zones": [{"name": "area", "polygon": [[0.1, 0.1], [0.9, 0.1], [0.9, 0.9], [0.1, 0.9]]}],
        "rules": [{"type": "intrusion", "zones": ["area"]}],
        **extra,
    }


@dataclass
class LiveService:
    base: str
    admin_key: str
    log_path: Path
    data_dir: Path
    config_dir: Path
    proc: subprocess.Popen[str]
    _keys: dict[tuple[str, tuple[str, ...]], str] = field(default_factory=dict)

    def url(self, path: str) -> str:
        return self.base + path

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"X-API-Key": key} if key else {}
        return httpx.Client(base_url=self.base, headers=headers, timeout=30.0, trust_env=False)

    def key(self, role: str, sites: tuple[str, ...] = ()) -> str:
        """A key of `role` (scoped to `sites` when given), minted once per (role, sites) through the API."""
        if role == "admin" and not sites:
            return self.admin_key
        wanted = (role, tuple(sorted(sites)))
        if wanted not in self._keys:
            body: dict[str, Any] = {"role": role, "name": f"{role}-{'-'.join(sites) or 'all'}"}
            if sites:
                body["sites"] = list(sites)
            with self.client(self.admin_key) as http:
                r = http.post("/v1/keys", json=body)
            assert r.status_code == 201, r.text
            self._keys[wanted] = r.json()["key"]
        return self._keys[wanted]

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


StartService = Callable[..., LiveService]


def _start(workdir: Path, cameras: list[dict[str, Any]], env: Mapping[str, str] | None) -> LiveService:
    config_dir, data_dir = workdir / "cameras", workdir / "data"
    config_dir.mkdir(parents=True)
    for cam in cameras:
        (config_dir / f"{cam['id']}.yaml").write_text(yaml.safe_dump(cam, allow_unicode=True), encoding="utf-8")
    port = free_port()
    full_env = {**os.environ, "SAFEWATCH_MODELS_DIR": str(ROOT / "models"), "PYTHONUNBUFFERED": "1", **(env or {})}
    cmd = [sys.executable, "-m", "cli.main", "run", "--demo", "--config-dir", str(config_dir)]
    cmd += ["--data-dir", str(data_dir), "--host", "127.0.0.1", "--port", str(port)]
    log_path = workdir / "service.log"
    log = log_path.open("w", encoding="utf-8")
    proc = subprocess.Popen(cmd, cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 90
    service: LiveService | None = None
    while time.monotonic() < deadline and proc.poll() is None:
        match = _KEY_LINE.search(log_path.read_text(encoding="utf-8", errors="replace"))
        if match:
            service = LiveService(f"http://127.0.0.1:{port}", match.group(1), log_path, data_dir, config_dir, proc)
            try:
                if httpx.get(service.url("/healthz"), timeout=2, trust_env=False).status_code == 200:
                    return service
            except httpx.HTTPError:
                pass
        time.sleep(0.3)
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    raise AssertionError(f"safewatch run did not come up:\n{log_path.read_text(encoding='utf-8', errors='replace')}")


@pytest.fixture
def start_service(tmp_path: Path) -> Iterator[StartService]:
    """Start `safewatch run` with `cameras` (dicts, see `camera_yaml`) and extra `env`; stopped after the test."""
    started: list[LiveService] = []

    def start(cameras: list[dict[str, Any]] | None = None, env: Mapping[str, str] | None = None) -> LiveService:
        service = _start(tmp_path / f"svc{len(started)}", cameras or [], env)
        started.append(service)
        return service

    yield start
    for service in started:
        service.stop()


@pytest.fixture(scope="module")
def two_sites(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveService]:
    """One service shared by a module: cameras `north-1` (site `north`) and `south-1` (site `south`)."""
    service = _start(
        tmp_path_factory.mktemp("two-sites"), [camera_yaml("north-1", "north"), camera_yaml("south-1", "south")], None
    )
    yield service
    service.stop()
