"""YAML reading: anchors and aliases are refused before anything walks the document (no "billion laughs")."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from pipelines.config.camera import ConfigError, load_camera_config
from pipelines.config.yaml_io import read_yaml


def billion_laughs(levels: int = 9) -> str:
    """~400 bytes that expand to 9**levels strings on every walk over the document."""
    lines = ["id: cam", "site: s", "name: n", "streams: {detect: rtsp://cam1.example/sub}"]
    lines.append('l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]')
    for i in range(1, levels):
        lines.append(f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]")
    return "\n".join(lines) + "\n"


def test_billion_laughs_is_refused_fast_naming_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "laughs.yaml"
    path.write_text(billion_laughs(), encoding="utf-8")
    started = time.perf_counter()
    with pytest.raises(ConfigError) as info:
        load_camera_config(path)
    assert time.perf_counter() - started < 0.5
    [problem] = info.value.problems
    assert (problem.file, problem.path, problem.line) == (str(path), "", 5)
    assert str(problem).startswith(f"{path}: YAML anchor '&l0': anchors (&) and aliases (*) are not allowed")


def test_an_alias_without_anchor_is_named_too(tmp_path: Path) -> None:
    path = tmp_path / "alias.yaml"
    path.write_text("id: cam\nsite: *nowhere\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"YAML alias '\*nowhere'.*\(line 2, column 7\)"):
        read_yaml(path)


def test_anchor_and_ampersand_characters_inside_strings_are_fine(tmp_path: Path) -> None:
    path = tmp_path / "amp.yaml"
    path.write_text('id: cam\nname: "A & B *important*"\nsite: R&D\n', encoding="utf-8")
    data, _node = read_yaml(path)
    assert data == {"id": "cam", "name": "A & B *important*", "site": "R&D"}


def test_characters_yaml_forbids_are_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "nul.yaml"
    path.write_text("id: cam\nsite: s\x00\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"nul\.yaml: not YAML text: character U\+0000 is not allowed \(line 2\)"):
        read_yaml(path)
