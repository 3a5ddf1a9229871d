"""`FileCache` and `DirConfigSource`: a config file is parsed once per change; invalid files keep the last good one."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest

from pipelines.config import source
from pipelines.config.camera import CameraConfig, load_camera_config
from pipelines.config.source import DirConfigSource, FileCache

CAMERA = 'id: {id}\nsite: s\nname: "{name}"\nstreams: {{detect: "rtsp://cam1.example/live"}}\n'


def test_file_cache_recomputes_only_when_the_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "a.yaml"
    path.write_text("one")
    reads: list[str] = []

    def load(p: Path) -> str:
        reads.append(p.read_text())
        return reads[-1]

    cache: FileCache[str] = FileCache(load)
    assert cache.get(path) == ("one", True)
    assert cache.get(path) == ("one", False)
    stat = path.stat()
    replacement = tmp_path / ".a.tmp"
    replacement.write_text("two")
    os.utime(replacement, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same size and mtime: only the inode differs
    os.replace(replacement, path)
    assert cache.get(path) == ("two", True)
    assert reads == ["one", "two"]
    cache.keep_only([])
    assert cache.get(path) == ("two", True) and len(reads) == 3


def test_dir_source_parses_once_per_change_and_keeps_the_last_good_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    parsed: list[str] = []

    def counting(path: Path) -> CameraConfig:
        parsed.append(path.name)
        return load_camera_config(path)

    monkeypatch.setattr(source, "load_camera_config", counting)
    path = tmp_path / "cam.yaml"
    path.write_text(CAMERA.format(id="cam", name="first"))
    watched = DirConfigSource(tmp_path)
    for _ in range(3):
        assert watched.cameras()["cam"].name == "first"
    assert parsed == ["cam.yaml"]
    path.write_text(CAMERA.format(id="cam", name="first") + "colour: red\n")
    with caplog.at_level(logging.ERROR, logger=source.__name__):
        for _ in range(3):
            assert watched.cameras()["cam"].name == "first"  # the last good config keeps running
    assert len(parsed) == 4  # an invalid file is retried every poll (a stream file may appear later) …
    assert len([r for r in caplog.records if "colour" in r.getMessage()]) == 1  # … and logged once per change
    path.write_text(CAMERA.format(id="cam", name="second"))
    assert watched.cameras()["cam"].name == "second"
    path.unlink()
    assert watched.cameras() == {}
