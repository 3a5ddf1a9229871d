"""Reading Darknet `.cfg` files and `.weights` files (the original YOLO release format)."""

from __future__ import annotations

import pathlib
from dataclasses import dataclass, field

import numpy as np

from vision.detect.errors import ModelError
from vision.types import FloatArray


@dataclass
class Section:
    """One `[type]` block of a cfg file, with its `key=value` options as strings."""

    type: str
    options: dict[str, str] = field(default_factory=dict)
    line: int = 0

    def get_int(self, key: str, default: int | None = None) -> int:
        return int(self._get(key, default))

    def get_float(self, key: str, default: float | None = None) -> float:
        return float(self._get(key, default))

    def get_str(self, key: str, default: str | None = None) -> str:
        return str(self._get(key, default))

    def get_ints(self, key: str) -> list[int]:
        return [int(v) for v in self._get(key, None).split(",") if v.strip()]

    def _get(self, key: str, default: object) -> str:
        if key in self.options:
            return self.options[key]
        if default is None:
            raise ModelError(f"cfg line {self.line}: [{self.type}] needs `{key}`")
        return str(default)


def parse_cfg(text: str) -> list[Section]:
    """Parse a Darknet cfg into sections; the first one is `[net]`."""
    sections: list[Section] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("[") and line.endswith("]"):
            sections.append(Section(line[1:-1].strip().lower(), line=number))
        elif "=" in line and sections:
            key, value = line.split("=", 1)
            sections[-1].options[key.strip()] = value.strip()
        else:
            raise ModelError(f"cfg line {number}: cannot parse {raw!r}")
    if not sections or sections[0].type not in {"net", "network"}:
        raise ModelError("cfg: the first section must be [net]")
    return sections


class WeightReader:
    """Sequential reader of a `.weights` file: a header (major, minor, revision, seen) then float32 arrays."""

    def __init__(self, path: pathlib.Path) -> None:
        data = path.read_bytes()
        major, minor, _revision = np.frombuffer(data[:12], dtype="<i4")
        header = 20 if major * 10 + minor >= 2 else 16
        self._values: FloatArray = np.frombuffer(data[header:], dtype="<f4").astype(np.float32)
        self._pos = 0
        self.path = path

    def take(self, count: int) -> FloatArray:
        if self._pos + count > self._values.size:
            raise ModelError(f"{self.path}: weights end early (need {count} more values at {self._pos})")
        out = self._values[self._pos : self._pos + count]
        self._pos += count
        return out

    @property
    def remaining(self) -> int:
        return int(self._values.size - self._pos)


def patch_yolo_masks(text: str, masks: list[list[int]]) -> str:
    """Rewrite the `mask = …` line of each [yolo] section, in order (a card-level correction of a shipped cfg)."""
    out: list[str] = []
    section, heads = "", 0
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1].strip()
            if section == "yolo":
                heads += 1
        if section == "yolo" and line.replace(" ", "").startswith("mask="):
            if heads > len(masks):
                raise ModelError(f"yolo_masks lists {len(masks)} heads but the cfg has more [yolo] sections")
            raw = "mask = " + ",".join(str(m) for m in masks[heads - 1])
        out.append(raw)
    if heads != len(masks):
        raise ModelError(f"yolo_masks lists {len(masks)} heads but the cfg has {heads} [yolo] sections")
    return "\n".join(out) + "\n"


def read_names(path: pathlib.Path) -> list[str]:
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
