"""`safewatch keys`: site-scoped keys (`--site`), the list's sites column, and the last admin key kept."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from fastapi.testclient import TestClient

from tests.api.conftest import auth


def test_cli_scoped_keys_and_last_admin(tmp_path: Path, repo_root: Path) -> None:
    env = {**os.environ, "SAFEWATCH_DATA_DIR": str(tmp_path / "d")}
    base = [sys.executable, "-m", "cli.main", "keys"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*base, *args], env=env, cwd=repo_root, capture_output=True, text=True)

    created = run("create", "--role", "viewer", "--name", "north", "--site", "north", "--site", "east", "--json")
    assert created.returncode == 0, created.stderr
    info = json.loads(created.stdout)
    assert info["sites"] == ["east", "north"]
    admin = json.loads(run("create", "--role", "admin", "--json").stdout)
    listed = run("list").stdout.splitlines()
    assert [line.split("\t")[-1] for line in listed] == ["east,north", "*"]
    refused = run("delete", admin["id"])
    assert refused.returncode == 1 and "last admin key for all sites" in refused.stderr
    assert run("delete", info["id"]).returncode == 0
    assert run("create", "--role", "viewer", "--site", "").returncode == 2
    from api.app import create_app
    from api.settings import Settings

    with TestClient(create_app(Settings(data_dir=tmp_path / "d", webhook_dispatcher=False))) as client:
        assert client.get("/v1/keys", headers=auth(admin["key"])).status_code == 200
