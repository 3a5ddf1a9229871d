"""Motion gate (skip inference on still frames) and a static-scene model (things that arrived and stayed).

Both work on a small blurred grayscale copy of the frame (default 160 px wide), take the frame's media time `pts` in
seconds and are therefore independent of the analysis fps. Pure numpy + OpenCV; a few hundred microseconds a frame.

Static-scene model (dual background, class-independent):
- the long-term background L is the "clear scene" reference: the per-pixel median of frames sampled over the first
  `learn_s` seconds (a median ignores people walking through), or an image given to `set_reference`;
- the short-term background S follows the frame with time constant `short_tau_s`;
- a pixel is a static candidate where S differs from L (|S - L| > fg_threshold) and the frame agrees with S
  (|F - S| < still_threshold, nothing moving there); it becomes static after `dwell_s` seconds as a candidate;
- where the frame agrees with S and S agrees with L the scene is back to its reference and the timer is cleared at
  once (the object left); where something moves (|F - S| ≥ still_threshold, e.g. a person passing in front of a
  parked object) the timer is held for up to `hold_s` seconds, so passers-by neither create nor erase static blobs;
- global illumination changes are compensated by scaling L with the ratio of the medians of S and L over the
  non-static pixels (a uniform gain); local lighting changes (a lamp switched on in one corner, a moving shadow that
  stays) can still read as static and are not compensated.
Anything present while the reference is learned (e.g. a van parked from the start) is part of the clear scene and is
never static: the model measures obstruction relative to the reference, so for exit_blocked the reference should be
learned (or set with `set_reference`) while the passage is clear. `absorb_after_s` optionally lets static pixels
become background after a long time; by default they never do (a blocker stays detected until it is removed).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from vision.geometry import Zone
from vision.types import BoolArray, FloatArray, ImageArray

logger = logging.getLogger(__name__)

GateReason = Literal["first", "disabled", "motion", "interval", "still"]


def small_gray(image: ImageArray, width: int) -> FloatArray:
    """RGB (or gray) uint8 image → blurred float32 grayscale `width` pixels wide (aspect kept)."""
    if image.dtype != np.uint8 or image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3):
        raise ValueError(f"image must be HxWx3 RGB or HxW gray uint8, got shape {image.shape} dtype {image.dtype}")
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
    h, w = gray.shape
    height = max(1, round(h * width / w))
    small = cv2.resize(gray, (width, height), interpolation=cv2.INTER_AREA) if (w, h) != (width, height) else gray
    return cv2.GaussianBlur(small, (3, 3), 0).astype(np.float32)


def _check_pts(pts: float) -> None:
    if not math.isfinite(pts):
        raise ValueError(f"pts must be a finite number of seconds, got {pts!r}")


class MotionGateConfig(BaseModel):
    """When to run the detector: on change since the last analysed frame, and at least every `max_interval_s`."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    enabled: bool = Field(default=True, description="False runs inference on every frame.")
    width: int = Field(default=160, ge=16, le=1280, description="Width of the downscaled grayscale frame.")
    pixel_threshold: float = Field(default=20.0, gt=0, le=255, description="Gray-level change that counts.")
    min_changed_fraction: float = Field(
        default=0.002, ge=0, le=1, description="Fraction of changed pixels (vs the last analysed frame) that is motion."
    )
    max_interval_s: float = Field(
        default=2.0,
        gt=0,
        le=3600,
        description="Run inference at least this often (at most every 3600 s), so still objects are re-confirmed.",
    )


@dataclass(frozen=True, slots=True)
class GateDecision:
    run: bool
    reason: GateReason
    changed_fraction: float


class MotionGate:
    """Decides per frame whether to run inference. Compares against the last frame it said yes to, so slow but
    steady change accumulates until it counts."""

    def __init__(self, config: MotionGateConfig | None = None) -> None:
        self.config = config or MotionGateConfig()
        self._ref: FloatArray | None = None
        self._ref_pts = 0.0

    def reset(self) -> None:
        self._ref = None

    def check(self, image: ImageArray, pts: float, *, gray: FloatArray | None = None) -> GateDecision:
        """Run inference on this frame? `gray`: `small_gray(image, config.width)` when the caller already has it."""
        _check_pts(pts)
        cfg = self.config
        if not cfg.enabled:
            return GateDecision(True, "disabled", 1.0)
        if gray is None or gray.shape[1] != cfg.width:
            gray = small_gray(image, cfg.width)
        if self._ref is None or self._ref.shape != gray.shape or pts < self._ref_pts:
            self._ref, self._ref_pts = gray, pts
            return GateDecision(True, "first", 1.0)
        changed = float(np.count_nonzero(np.abs(gray - self._ref) > cfg.pixel_threshold)) / gray.size
        if changed > cfg.min_changed_fraction:
            reason: GateReason = "motion"
        elif pts - self._ref_pts >= cfg.max_interval_s:
            reason = "interval"
        else:
            return GateDecision(False, "still", changed)
        self._ref, self._ref_pts = gray, pts
        return GateDecision(True, reason, changed)


class MotionMask:
    """Where the frame changed since the previous analysed frame: a boolean mask at `width` pixels (the input of
    the motion regions, `vision/detect/regions.py`). A moving object shows at its old and its new place."""

    def __init__(self, width: int = 160, pixel_threshold: float = 20.0) -> None:
        self.width = width
        self.pixel_threshold = pixel_threshold
        self._prev: FloatArray | None = None

    def reset(self) -> None:
        self._prev = None

    def update(self, image: ImageArray, *, gray: FloatArray | None = None) -> BoolArray:
        """Changed pixels of this frame vs the previous one (all False on the first frame or a size change)."""
        if gray is None or gray.shape[1] != self.width:
            gray = small_gray(image, self.width)
        prev, self._prev = self._prev, gray
        if prev is None or prev.shape != gray.shape:
            return np.zeros(gray.shape, dtype=np.bool_)
        changed: BoolArray = np.abs(gray - prev) > self.pixel_threshold
        return changed


class StaticSceneConfig(BaseModel):
    """Parameters of the static-scene model; durations in seconds of media time, thresholds in gray levels."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    width: int = Field(default=160, ge=16, le=1280, description="Working width (height keeps the aspect ratio).")
    learn_s: float = Field(
        default=30.0, ge=0, le=3600, description="Window over which the clear-scene reference is learned (≤ 3600 s)."
    )
    learn_samples: int = Field(default=30, ge=1, le=255, description="Frames sampled (evenly) for the median.")
    short_tau_s: float = Field(
        default=1.0, gt=0, le=600, description="Time constant of the short-term background (≤ 600 s)."
    )
    fg_threshold: float = Field(default=30.0, gt=0, le=255, description="|short - reference| that counts as changed.")
    still_threshold: float = Field(default=15.0, gt=0, le=255, description="|frame - short| below this is still.")
    dwell_s: float = Field(
        default=10.0, ge=0, le=86400, description="Seconds a pixel must stay changed and still → static (≤ 1 day)."
    )
    hold_s: float = Field(
        default=10.0, ge=0, le=3600, description="Motion over a pixel holds its timer for up to this long (≤ 3600 s)."
    )
    absorb_after_s: float | None = Field(
        default=None, gt=0, le=604800, description="Static this long → part of the reference (None: never; ≤ 7 days)."
    )
    compensate_gain: bool = Field(default=True, description="Compensate global illumination changes.")
    open_px: int = Field(default=3, ge=1, le=15, description="Morphological opening of the mask (removes specks).")


class StaticSceneModel:
    """Finds what arrived and stayed, relative to a clear-scene reference. One instance per camera.

    Call `update(image, pts)` on every analysed frame (cheap: it works at `width` pixels); read `mask` (boolean,
    low resolution) or `occupancy(zone)`. `ready` is False while the reference is being learned.
    """

    def __init__(self, config: StaticSceneConfig | None = None) -> None:
        self.config = config or StaticSceneConfig()
        self._shape: tuple[int, int] | None = None
        self._reset_state()

    def _reset_state(self) -> None:
        self._short: FloatArray | None = None
        self._ref: FloatArray | None = None
        self._samples: list[FloatArray] = []
        self._learn_start: float | None = None
        self._last_pts: float | None = None
        self._since = np.empty(0)  # pts at which a pixel became a candidate; nan = not one
        self._last_still = np.empty(0)  # last pts at which the pixel was not moving
        self._mask: BoolArray = np.zeros((0, 0), dtype=np.bool_)

    @property
    def ready(self) -> bool:
        return self._ref is not None

    @property
    def mask(self) -> BoolArray:
        """Boolean (h, w) mask of static foreground at the working resolution (all False until `ready`)."""
        return self._mask

    @property
    def reference(self) -> FloatArray | None:
        """The clear-scene reference (float32 gray at the working resolution), once learned."""
        return self._ref

    def occupancy(self, zone: Zone) -> float:
        """Fraction of `zone` covered by static foreground (0.0 before the reference is learned)."""
        if not self.ready or self._mask.size == 0:
            return 0.0
        return zone.occupancy(self._mask)

    def reset_reference(self) -> None:
        """Forget the reference and learn a new one from the next `learn_s` seconds (e.g. after the site confirms
        the passage is clear)."""
        self._reset_state()
        self._shape = None

    def set_reference(self, image: ImageArray) -> None:
        """Use `image` (a frame of the clear scene) as the reference from now on."""
        gray = small_gray(image, self.config.width)
        self._reset_state()
        self._shape = (gray.shape[0], gray.shape[1])
        self._ref = gray
        self._init_arrays(gray)

    def _init_arrays(self, gray: FloatArray) -> None:
        self._since = np.full(gray.shape, np.nan)
        self._last_still = np.full(gray.shape, -np.inf)
        self._mask = np.zeros(gray.shape, dtype=np.bool_)

    def update(self, image: ImageArray, pts: float, *, gray: FloatArray | None = None) -> BoolArray:
        """Feed one frame (RGB uint8) at media time `pts` seconds; returns the static mask.

        `gray`: the frame's `small_gray(image, config.width)` when the caller already has it (shared with the gate).
        """
        _check_pts(pts)
        if gray is None or gray.shape[1] != self.config.width:
            gray = small_gray(image, self.config.width)
        shape = (gray.shape[0], gray.shape[1])
        if self._shape != shape or (self._last_pts is not None and pts < self._last_pts):
            if self._shape is not None:
                logger.warning("static scene restarted (frame size %s -> %s or pts went backwards)", self._shape, shape)
            ref = self._ref if self._shape == shape else None
            self._reset_state()
            self._shape, self._ref = shape, ref
            self._init_arrays(gray)
        dt = 0.0 if self._last_pts is None else pts - self._last_pts
        self._last_pts = pts
        if self._short is None:
            self._short = gray.copy()
        else:
            alpha = 1.0 - math.exp(-dt / self.config.short_tau_s)
            self._short += np.float32(alpha) * (gray - self._short)
        if self._ref is None:
            self._learn(gray, pts)
            return self._mask
        self._classify(gray, pts)
        return self._mask

    def _learn(self, gray: FloatArray, pts: float) -> None:
        cfg = self.config
        if self._learn_start is None:
            self._learn_start = pts
        elapsed = pts - self._learn_start
        if len(self._samples) < cfg.learn_samples and elapsed >= len(self._samples) * cfg.learn_s / cfg.learn_samples:
            self._samples.append(gray)
        if elapsed >= cfg.learn_s and self._samples:
            self._ref = np.median(np.stack(self._samples), axis=0).astype(np.float32)
            logger.info("static scene reference learned from %d frames over %.1f s", len(self._samples), elapsed)
            self._samples = []

    def _gain(self) -> np.float32:
        assert self._ref is not None and self._short is not None
        if not self.config.compensate_gain:
            return np.float32(1.0)
        free = ~self._mask
        if np.count_nonzero(free) < 0.2 * free.size:
            return np.float32(1.0)
        ref_med = float(np.median(self._ref[free]))
        return np.float32(np.clip(float(np.median(self._short[free])) / max(ref_med, 1.0), 0.25, 4.0))

    def _classify(self, gray: FloatArray, pts: float) -> None:
        cfg = self.config
        assert self._ref is not None and self._short is not None
        gain = self._gain()
        ref = self._ref * gain
        changed = np.abs(self._short - ref) > cfg.fg_threshold
        still = np.abs(gray - self._short) < cfg.still_threshold
        since, last_still = self._since, self._last_still
        last_still[still] = pts
        since[still & ~changed] = np.nan  # back to the reference: the object left
        since[~still & (pts - last_still > cfg.hold_s)] = np.nan  # moving for too long
        start = still & changed & np.isnan(since)
        since[start] = pts
        with np.errstate(invalid="ignore"):
            static = (pts - since) >= cfg.dwell_s
        if cfg.open_px > 1:
            kernel = np.ones((cfg.open_px, cfg.open_px), dtype=np.uint8)
            static = cv2.morphologyEx(static.astype(np.uint8), cv2.MORPH_OPEN, kernel).astype(np.bool_)
        self._mask = static
        if cfg.absorb_after_s is not None:
            with np.errstate(invalid="ignore"):
                absorb = (pts - since) >= cfg.absorb_after_s
            self._ref[absorb] = self._short[absorb] / gain
            since[absorb] = np.nan
