"""The two central data types of the perception stage: `Frame` and `Detections`.

`Frame` is what a video source yields; `Detections` is what every later stage (detector, tracker, zones, rules,
annotators) takes and returns. `Detections` is column-oriented, in the style of supervision: one numpy array per
field, all of the same length, with boolean-mask / index / slice selection returning a new `Detections`.
Nothing here mutates its input.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

# numpy array aliases, one name per dtype, for every module of the project (defined here only).
FloatArray = npt.NDArray[np.float32]  # boxes and scores: the detection dtype
Float64Array = npt.NDArray[np.float64]  # geometry, Kalman states, cost matrices
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]
StrArray = npt.NDArray[np.str_]
ImageArray = npt.NDArray[np.uint8]  # pixels: RGB frames, grayscale planes


@dataclass(frozen=True, slots=True)
class Frame:
    """One decoded frame kept for analysis.

    `pts` is the presentation time in seconds since the source was opened (media time for files, so replays are
    reproducible); `wall_time` is the Unix time at which the frame was captured/decoded. `image` is RGB, HxWx3 uint8.
    """

    camera_id: str
    seq: int
    pts: float
    wall_time: float
    image: ImageArray

    def __post_init__(self) -> None:
        img = self.image
        if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            raise ValueError(f"Frame.image must be HxWx3 uint8 RGB, got shape {img.shape} dtype {img.dtype}")

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def height(self) -> int:
        return int(self.image.shape[0])


def _empty_str() -> StrArray:
    return np.empty(0, dtype=np.str_)


@dataclass(frozen=True, slots=True, eq=False)
class Detections:
    """Column arrays describing N detected objects in one frame, in frame pixel coordinates.

    - `xyxy`: (N, 4) float32, x1 y1 x2 y2 in pixels
    - `confidence`: (N,) float32
    - `class_id`: (N,) int64, the model's own class index
    - `label`: (N,) str, the semantic label from the model card (person, helmet, truck, ...)
    - `tracker_id`: (N,) int64, -1 where not tracked
    - `data`: extra per-detection columns, each of length N (e.g. "model", "class_name")
    """

    xyxy: FloatArray
    confidence: FloatArray
    class_id: IntArray
    label: StrArray = field(default_factory=_empty_str)
    tracker_id: IntArray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    data: Mapping[str, npt.NDArray[Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = self.xyxy.shape[0] if self.xyxy.ndim == 2 else -1
        if self.xyxy.ndim != 2 or self.xyxy.shape[1] != 4:
            raise ValueError(f"xyxy must have shape (N, 4), got {self.xyxy.shape}")
        object.__setattr__(self, "xyxy", np.asarray(self.xyxy, dtype=np.float32))
        object.__setattr__(self, "confidence", np.asarray(self.confidence, dtype=np.float32))
        object.__setattr__(self, "class_id", np.asarray(self.class_id, dtype=np.int64))
        if len(self.label) == 0 and n > 0:
            object.__setattr__(self, "label", np.full(n, "", dtype="<U1"))
        else:
            object.__setattr__(self, "label", np.asarray(self.label, dtype=np.str_))
        if len(self.tracker_id) == 0 and n > 0:
            object.__setattr__(self, "tracker_id", np.full(n, -1, dtype=np.int64))
        else:
            object.__setattr__(self, "tracker_id", np.asarray(self.tracker_id, dtype=np.int64))
        object.__setattr__(self, "data", {k: np.asarray(v) for k, v in self.data.items()})
        for name in ("confidence", "class_id", "label", "tracker_id"):
            col = getattr(self, name)
            if col.shape != (n,):
                raise ValueError(f"{name} must have shape ({n},), got {col.shape}")
        for key, col in self.data.items():
            if col.shape[:1] != (n,):
                raise ValueError(f"data[{key!r}] must have length {n}, got shape {col.shape}")

    @classmethod
    def empty(cls) -> Detections:
        return cls(
            xyxy=np.empty((0, 4), dtype=np.float32),
            confidence=np.empty(0, dtype=np.float32),
            class_id=np.empty(0, dtype=np.int64),
        )

    @classmethod
    def merge(cls, parts: list[Detections]) -> Detections:
        """Concatenate detections (e.g. from several models on the same frame). Data keys must agree."""
        parts = [p for p in parts if len(p)]
        if not parts:
            return cls.empty()
        keys = set(parts[0].data)
        if any(set(p.data) != keys for p in parts):
            raise ValueError("cannot merge Detections with different data columns")
        return cls(
            xyxy=np.concatenate([p.xyxy for p in parts]),
            confidence=np.concatenate([p.confidence for p in parts]),
            class_id=np.concatenate([p.class_id for p in parts]),
            label=np.concatenate([p.label for p in parts]),
            tracker_id=np.concatenate([p.tracker_id for p in parts]),
            data={k: np.concatenate([p.data[k] for p in parts]) for k in keys},
        )

    def __len__(self) -> int:
        return int(self.xyxy.shape[0])

    def is_empty(self) -> bool:
        return len(self) == 0

    def __getitem__(self, index: int | slice | BoolArray | IntArray | list[int]) -> Detections:
        """Select rows by boolean mask, integer index array, slice or a single int (kept as a 1-row Detections)."""
        if isinstance(index, int | np.integer):
            index = [int(index)]
        if isinstance(index, np.ndarray) and index.dtype == np.bool_ and index.shape != (len(self),):
            raise IndexError(f"boolean mask of shape {index.shape} does not match {len(self)} detections")
        return Detections(
            xyxy=self.xyxy[index].reshape(-1, 4),
            confidence=np.atleast_1d(self.confidence[index]),
            class_id=np.atleast_1d(self.class_id[index]),
            label=np.atleast_1d(self.label[index]),
            tracker_id=np.atleast_1d(self.tracker_id[index]),
            data={k: v[index] for k, v in self.data.items()},
        )

    def __iter__(self) -> Iterator[Detections]:
        for i in range(len(self)):
            yield self[i]

    def with_tracker_ids(self, tracker_id: IntArray) -> Detections:
        """A copy with `tracker_id` replaced (trackers return this; they never mutate their input)."""
        return Detections(self.xyxy, self.confidence, self.class_id, self.label, tracker_id, self.data)

    def with_data(self, **columns: npt.NDArray[Any]) -> Detections:
        return Detections(
            self.xyxy, self.confidence, self.class_id, self.label, self.tracker_id, {**self.data, **columns}
        )

    def has_label(self, *labels: str) -> BoolArray:
        """Boolean mask of the rows whose semantic label is one of `labels`."""
        return np.isin(self.label, np.asarray(labels, dtype=np.str_))

    @property
    def area(self) -> FloatArray:
        w = np.clip(self.xyxy[:, 2] - self.xyxy[:, 0], 0, None)
        h = np.clip(self.xyxy[:, 3] - self.xyxy[:, 1], 0, None)
        out: FloatArray = (w * h).astype(np.float32)
        return out

    def anchors(self, anchor: str = "bottom_center") -> FloatArray:
        """(N, 2) anchor points in pixels: bottom_center (default, feet on the ground) or center."""
        x = (self.xyxy[:, 0] + self.xyxy[:, 2]) * np.float32(0.5)
        if anchor == "bottom_center":
            y = self.xyxy[:, 3]
        elif anchor == "center":
            y = (self.xyxy[:, 1] + self.xyxy[:, 3]) * np.float32(0.5)
        else:
            raise ValueError(f"unknown anchor {anchor!r} (bottom_center | center)")
        return np.stack([x, y], axis=1).astype(np.float32)

    def __repr__(self) -> str:
        rows = ", ".join(
            f"{lbl or cid}#{tid}@{conf:.2f}"
            for lbl, cid, tid, conf in zip(self.label, self.class_id, self.tracker_id, self.confidence, strict=True)
        )
        return f"Detections(n={len(self)}: {rows})"
