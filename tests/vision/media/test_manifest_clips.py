"""Clip timings in the manifest (version 2) and `read_clips`, over two real clips cut from the sample clip.

The timings are covered by the signature, each must name one of the manifest's files, version 1 manifests (no
`clips`) still verify and list their clips without times, and a folder without a manifest (incident still open)
lists the clips on disk.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.vision.media.packets_util import demux
from vision.media.clip import select_clip_packets, write_clip
from vision.media.clip_plan import clip_filename, clip_index
from vision.media.manifest import (
    MANIFEST_NAME,
    ClipEntry,
    build_manifest,
    read_clips,
    sign,
    verify_dir,
    write_manifest,
)
from vision.media.results import WriteResult

KEY = b"test-evidence-key-of-32-bytes-at-least"
T0 = datetime(2024, 5, 1, 6, 3, 22, tzinfo=UTC)


def _evidence(out: Path, sample_clip: Path, *, key: bytes | None = KEY) -> list[WriteResult]:
    """clip-000.mp4 (2-6 s of the sample), clip-001.mp4 (6-9 s), a failed clip-002.mp4 and their manifest."""
    params, packets = demux(sample_clip)
    files = [
        write_clip(select_clip_packets(packets, start, end), params, out / clip_filename(i)).file
        for i, (start, end) in enumerate([(2.0, 6.0), (6.0, 9.0)])
    ]
    files.append(WriteResult.failed(out / clip_filename(2), "disk full (ENOSPC)"))
    timings = [
        ClipEntry(out / "clip-000.mp4", -5.0, 4.0),
        ClipEntry(out / "clip-001.mp4", -1.0, 3.0),
        ClipEntry(out / "clip-002.mp4", 2.0, 1.0),  # not written: not listed
    ]
    manifest = build_manifest(
        incident_id="inc-1",
        camera_id="gate-3",
        rule="exit_blocked",
        started_at=T0,
        ended_at=T0,
        evidence_dir=out,
        files=files,
        models={},
        camera_config_sha256="0" * 64,
        clips=list(reversed(timings)),
    )
    assert not write_manifest(out, manifest, key=key).missing
    return files


def _load(out: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((out / MANIFEST_NAME).read_text(encoding="utf-8"))
    return data


def _save(out: Path, data: dict[str, Any]) -> None:
    (out / MANIFEST_NAME).write_text(json.dumps(data), encoding="utf-8")


def test_manifest_records_clip_times_and_read_clips_returns_them(tmp_path: Path, sample_clip: Path) -> None:
    files = _evidence(tmp_path, sample_clip)
    data = _load(tmp_path)
    assert data["version"] == 2
    assert data["clips"] == [
        {"path": "clip-000.mp4", "index": 0, "start_offset_s": -5.0, "duration_s": 4.0},
        {"path": "clip-001.mp4", "index": 1, "start_offset_s": -1.0, "duration_s": 3.0},
    ]
    assert verify_dir(tmp_path, KEY) == []
    assert read_clips(tmp_path) == [
        ClipEntry(tmp_path / "clip-000.mp4", -5.0, 4.0, files[0].sha256),
        ClipEntry(tmp_path / "clip-001.mp4", -1.0, 3.0, files[1].sha256),
    ]


def test_the_signature_covers_the_clip_times(tmp_path: Path, sample_clip: Path) -> None:
    _evidence(tmp_path, sample_clip)
    data = _load(tmp_path)
    data["clips"][1]["start_offset_s"] = 30.0
    _save(tmp_path, data)
    (problem,) = verify_dir(tmp_path, KEY)
    assert "bad signature" in problem.message


@pytest.mark.parametrize(
    ("clips", "expected"),
    [
        ([{"path": "clip-002.mp4", "index": 2, "start_offset_s": 0, "duration_s": 1}], "names no file"),
        ([{"path": "snapshot.jpg", "index": 0}], "names no file"),
        ([{"path": "clip-001.mp4", "index": 0, "start_offset_s": 0, "duration_s": 1}], "index does not match"),
        ({"clip-000.mp4": {}}, "'clips' is not a list"),
    ],
)
def test_clip_entries_must_name_files_of_the_manifest(
    tmp_path: Path, sample_clip: Path, clips: Any, expected: str
) -> None:
    _evidence(tmp_path, sample_clip, key=None)
    data = _load(tmp_path)
    data["clips"] = clips
    _save(tmp_path, data)
    (problem,) = verify_dir(tmp_path)
    assert expected in problem.message


def test_a_version_1_manifest_verifies_and_lists_clips_without_times(tmp_path: Path, sample_clip: Path) -> None:
    files = _evidence(tmp_path, sample_clip)
    data = _load(tmp_path)
    del data["clips"]
    data["version"] = 1
    _save(tmp_path, sign(data, KEY))
    assert verify_dir(tmp_path, KEY) == []
    assert read_clips(tmp_path) == [
        ClipEntry(tmp_path / "clip-000.mp4", None, None, files[0].sha256),
        ClipEntry(tmp_path / "clip-001.mp4", None, None, files[1].sha256),
    ]


def test_without_a_manifest_the_clips_on_disk_are_listed(tmp_path: Path, sample_clip: Path) -> None:
    _evidence(tmp_path, sample_clip)
    (tmp_path / MANIFEST_NAME).unlink()
    for name in ("clip-1.mp4", "clip-0000.mp4", "clip-000.mp4.tmp", ".clip-001.x1y2.mp4", "clip-abc.mp4"):
        (tmp_path / name).write_bytes(b"not a clip of this incident")
    (tmp_path / "clip-007.mp4").mkdir()
    assert read_clips(tmp_path) == [ClipEntry(tmp_path / "clip-000.mp4"), ClipEntry(tmp_path / "clip-001.mp4")]
    assert read_clips(tmp_path / "nope") == []


def test_a_recorded_clip_that_is_gone_is_not_listed(tmp_path: Path, sample_clip: Path) -> None:
    _evidence(tmp_path, sample_clip)
    (tmp_path / "clip-000.mp4").unlink()
    assert [c.index for c in read_clips(tmp_path)] == [1]


def test_clip_names_and_indices_round_trip() -> None:
    assert [clip_filename(i) for i in (0, 7, 123, 1000)] == [
        "clip-000.mp4",
        "clip-007.mp4",
        "clip-123.mp4",
        "clip-1000.mp4",
    ]
    assert [clip_index(n) for n in ("clip-000.mp4", "clip-1000.mp4", "clip-0000.mp4", "clip-01.mp4", "x.mp4")] == [
        0,
        1000,
        None,
        None,
        None,
    ]
