"""Finding 6 (keys at rest): a weak `SAFEWATCH_EVIDENCE_KEY` stops `safewatch run` at startup with exit 2 and a
message naming the variable and what it needs, before anything is signed with it; the key itself is never echoed."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from tests.security.conftest import ROOT

WEAK = ["changeme", secrets.token_hex(16), "c2FmZXdhdGNoLWRlbW8ta2V5LTEyMzQ1Njc4OTA="]  # 16, 16 and 29 bytes


@pytest.mark.parametrize("key", WEAK)
def test_weak_evidence_key_stops_the_service(tmp_path: Path, key: str) -> None:
    env = {**os.environ, "SAFEWATCH_EVIDENCE_KEY": key, "SAFEWATCH_MODELS_DIR": str(ROOT / "models")}
    cmd = [sys.executable, "-m", "cli.main", "run", "--config-dir", str(ROOT / "camera_configs")]
    cmd += ["--data-dir", str(tmp_path / "data"), "--host", "127.0.0.1", "--port", "1"]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "SAFEWATCH_EVIDENCE_KEY" in done.stderr and "at least 32 bytes" in done.stderr
    assert "Traceback" not in done.stderr and key not in done.stdout + done.stderr
    assert not (tmp_path / "data").exists()  # nothing started
