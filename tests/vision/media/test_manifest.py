"""Evidence manifests over real snapshot + clip files: hashes, HMAC signatures, tamper detection, the CLI."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cli.main import main
from tests.vision.media.packets_util import demux
from vision.media.clip import select_clip_packets, write_clip
from vision.media.manifest import (
    MANIFEST_NAME,
    build_manifest,
    config_sha256,
    derive_key_id,
    verify_dir,
    write_manifest,
)
from vision.media.results import WriteResult
from vision.media.snapshot import write_snapshots
from vision.media.store import MediaStore
from vision.types import Detections

KEY = b"test-evidence-key"
T0 = datetime(2024, 5, 1, 6, 3, 22, tzinfo=UTC)


def _incident(root: Path, sample_clip: Path, incident_id: str, *, key: bytes | None = KEY) -> Path:
    out = MediaStore(root).incident_dir("gate-3", incident_id, T0)
    params, packets = demux(sample_clip)
    clip = write_clip(select_clip_packets(packets, 2.0, 5.0), params, out / "clip-000.mp4")
    frame = np.full((120, 160, 3), 90, dtype=np.uint8)
    snaps = write_snapshots(
        frame, Detections.empty(), out, zone=None, rule="exit_blocked", camera_name="消防通道", local_time=T0
    )
    gone = WriteResult.failed(out / "clip-001.mp4", "disk full (ENOSPC)")
    manifest = build_manifest(
        incident_id=incident_id,
        camera_id="gate-3",
        rule="exit_blocked",
        started_at=T0,
        ended_at=None,
        evidence_dir=out,
        files=[clip.file, *snaps.files, gone],
        models={"yolo11n": "ab" * 32},
        camera_config_sha256=config_sha256({"id": "gate-3", "name": "3号门"}),
    )
    assert not write_manifest(out, manifest, key=key).missing
    return out


def test_manifest_records_every_file_and_verifies(tmp_path: Path, sample_clip: Path) -> None:
    inc = _incident(tmp_path, sample_clip, "inc-1")
    data: dict[str, Any] = json.loads((inc / MANIFEST_NAME).read_text())
    assert set(data["files"]) == {"clip-000.mp4", "snapshot.jpg", "snapshot_raw.jpg"}
    assert data["missing"] == [{"path": "clip-001.mp4", "reason": "disk full (ENOSPC)"}]
    assert data["signature"]["alg"] == "HMAC-SHA256" and data["signature"]["key_id"] == derive_key_id(KEY)
    assert data["models"] == [{"name": "yolo11n", "sha256": "ab" * 32}] and len(data["camera_config_sha256"]) == 64
    assert verify_dir(tmp_path, KEY) == [] and verify_dir(tmp_path) == []


def _flip_byte(path: Path, offset: int) -> None:
    raw = bytearray(path.read_bytes())
    raw[offset] ^= 0x01
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize(
    ("tamper", "key", "expected"),
    [
        (lambda d: _flip_byte(d / "clip-000.mp4", 5000), None, "[clip-000.mp4]: sha256 mismatch"),
        (lambda d: (d / "snapshot.jpg").unlink(), None, "[snapshot.jpg]: file missing"),
        (lambda d: _edit(d, rule="intrusion"), KEY, "bad signature"),
        (lambda d: _edit(d, signature=None), KEY, "not signed"),
        (lambda d: None, b"another-key", "bad signature (signed with key id"),
    ],
)
def test_verify_catches_tampering(
    tmp_path: Path, sample_clip: Path, tamper: Any, key: bytes | None, expected: str
) -> None:
    inc = _incident(tmp_path, sample_clip, "inc-1")
    tamper(inc)
    problems = verify_dir(tmp_path, key)
    assert len(problems) == 1 and expected in str(problems[0]), problems


def _edit(inc: Path, **fields: Any) -> None:
    path = inc / MANIFEST_NAME
    data = json.loads(path.read_text())
    for k, v in fields.items():
        if v is None:
            data.pop(k)
        else:
            data[k] = v
    path.write_text(json.dumps(data))


def test_cli_verify_exit_codes(
    tmp_path: Path, sample_clip: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "media"
    _incident(root, sample_clip, "inc-1")
    inc2 = _incident(root, sample_clip, "inc-2")
    monkeypatch.setenv("SAFEWATCH_EVIDENCE_KEY", KEY.decode())
    assert main(["evidence", "verify", str(root), "--no-database"]) == 0
    assert capsys.readouterr().out.strip() == "2 manifests OK"

    monkeypatch.delenv("SAFEWATCH_EVIDENCE_KEY")
    assert main(["evidence", "verify", str(root), "--no-database"]) == 0
    assert "signatures not checked" in capsys.readouterr().out

    _flip_byte(inc2 / "clip-000.mp4", 3000)
    _edit(inc2, camera_id="gate-4")
    monkeypatch.setenv("MY_KEY", KEY.decode())
    assert main(["evidence", "verify", str(root), "--no-database", "--key-env", "MY_KEY"]) == 1
    out = capsys.readouterr()
    lines = out.out.strip().splitlines()
    assert len(lines) == 2 and "sha256 mismatch" in lines[0] and "bad signature" in lines[1]
    assert "1 of 2 manifests have problems" in out.err

    assert main(["evidence", "verify", str(tmp_path / "nope")]) == 2
    assert "not a directory" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["evidence", "verify", str(tmp_path / "empty")]) == 2


def test_unreadable_manifest_is_a_problem(tmp_path: Path) -> None:
    bad = tmp_path / "2024-05-01" / "cam" / "inc"
    bad.mkdir(parents=True)
    (bad / MANIFEST_NAME).write_text("{not json")
    (problem,) = verify_dir(tmp_path)
    assert "unreadable manifest" in problem.message
