"""Media root layout, retention by age and size (oldest first, protected incidents kept), and write errors on a
genuinely full (1 MiB tmpfs) and a read-only file system."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import pytest

from tests.vision.media.packets_util import demux
from vision.media.clip import write_clip
from vision.media.config import RetentionConfig
from vision.media.results import write_bytes_atomic
from vision.media.retention import apply_retention
from vision.media.snapshot import write_snapshots
from vision.media.store import MediaStore
from vision.types import Detections

NOW = 1_750_000_000.0
DAY = 86400.0


def _make(store: MediaStore, day: str, cam: str, inc: str, size: int, age_days: float) -> Path:
    d = store.incident_dir(cam, inc, date.fromisoformat(day))
    d.mkdir(parents=True)
    for name in ("snapshot.jpg", "manifest.json"):
        f = d / name
        f.write_bytes(b"x" * (size // 2))
        os.utime(f, (NOW - age_days * DAY, NOW - age_days * DAY))
    return d


def test_layout_and_id_validation(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    assert store.incident_dir("gate-3", "inc_01", date(2024, 5, 1)) == tmp_path / "2024-05-01" / "gate-3" / "inc_01"
    _make(store, "2024-05-01", "gate-3", "inc_01", 10, 1)
    found = store.find("inc_01")
    assert found is not None and found.camera_id == "gate-3" and found.day == date(2024, 5, 1)
    for bad in ("../etc", "a/b", "", ".hidden", "x" * 200):
        with pytest.raises(ValueError, match="invalid"):
            store.incident_dir("cam", bad, date(2024, 5, 1))


def test_retention_by_age_skips_protected(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    _make(store, "2024-04-01", "cam-a", "old-open", 100, 40)
    _make(store, "2024-04-02", "cam-a", "old", 100, 39)
    _make(store, "2024-04-03", "cam-b", "old-keep", 100, 38)
    _make(store, "2024-05-01", "cam-a", "new", 100, 2)
    deleted = apply_retention(store, RetentionConfig(max_age_days=30), {"old-open", "old-keep"}, now=NOW)
    assert [(d.incident_id, d.reason) for d in deleted] == [("old", "age")]
    assert not (tmp_path / "2024-04-02").exists()  # emptied day directories go too
    assert sorted(i.incident_id for i in store.incidents()) == ["new", "old-keep", "old-open"]


def test_retention_by_size_evicts_oldest_first(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    for i, age in enumerate([5, 4, 3, 2, 1]):
        _make(store, f"2024-05-0{i + 1}", "cam", f"inc-{i}", 1000, age)
    cfg = RetentionConfig(max_age_days=None, max_total_bytes=3000)
    deleted = apply_retention(store, cfg, lambda inc: inc == "inc-1", now=NOW)
    assert [(d.incident_id, d.reason, d.bytes) for d in deleted] == [("inc-0", "size", 1000), ("inc-2", "size", 1000)]
    assert [i.incident_id for i in store.incidents()] == ["inc-1", "inc-3", "inc-4"]
    assert apply_retention(store, cfg, lambda inc: inc == "inc-1", now=NOW) == []


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A genuinely size-limited directory: a 1 MiB tmpfs (needs root and mount permission, else skipped)."""
    mnt = tmp_path / "full"
    mnt.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.strip() or res.returncode}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_disk_full_reports_missing_without_raising(small_fs: Path, sample_clip: Path) -> None:
    noise = np.random.default_rng(0).integers(0, 256, (1200, 1600, 3), dtype=np.uint8)  # JPEG > 1 MiB
    snaps = write_snapshots(
        noise, Detections.empty(), small_fs / "inc", zone=None, rule="r", camera_name="c", local_time=datetime.now(UTC)
    )
    assert any(f.missing for f in snaps.files)
    assert all(f.reason == "disk full (ENOSPC)" for f in snaps.files if f.missing)
    params, packets = demux(sample_clip)
    clip = write_clip(packets[:400], params, small_fs / "inc" / "clip-000.mp4")  # ~2 MB of packets
    assert clip.file.missing and clip.file.reason == "disk full (ENOSPC)"
    assert not (small_fs / "inc" / "clip-000.mp4").exists()
    assert [p.name for p in (small_fs / "inc").iterdir() if p.name.startswith(".")] == []  # no temp files left


def test_read_only_fs_reports_missing(small_fs: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], check=True)
    result = write_bytes_atomic(small_fs / "x" / "manifest.json", b"{}")
    assert result.missing and result.reason == "read-only file system (EROFS)"


def test_permission_denied_is_reported(tmp_path: Path) -> None:
    if os.geteuid() == 0:
        target = Path("/proc/1/evidence.jpg")  # not writable even for root
        result = write_bytes_atomic(target, b"x")
        assert result.missing and result.reason is not None
    else:
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        result = write_bytes_atomic(ro / "a.jpg", b"x")
        assert result.missing and result.reason == "permission denied (EACCES)"
