"""Camera tamper analysis: is the view covered, out of focus or moved, compared with a reference of the healthy view?

`TamperDetector.check(image, t)` looks at one frame (at most once per `check_interval_s`) on a small grayscale copy
and compares it with a reference learned while the view was healthy:

- **covered**: the picture lost its structure: contrast (standard deviation of the gray levels) below
  `covered_contrast_ratio` × the reference's, or below the absolute floor `uniform_contrast` (a lens cap, a hand, a
  bag, paint, or a dark frame without detail);
- **defocused**: the contrast is still there but the fine detail is not: sharpness (the mean absolute Laplacian per
  unit of contrast, so brightness and contrast changes cancel out) below `defocus_ratio` × the reference's;
- **moved**: static features no longer align with the reference: ORB keypoints of the current view matched with the
  reference's give (RANSAC, rotation + translation + scale) a shift above `max_shift` (fraction of the width) or a
  rotation above `max_rotation_deg`; or the view is textured and no transform aligns it at all (pointed elsewhere).
  A view that differs from the reference by less than `still_change` of its contrast (a still scene) has not moved:
  no features are matched for it (ORB is most of this module's cost; a quiet camera then spends none on it).

The reference (a float gray image and its keypoints) is learned for `learn_s` from a view that is not covered, then
follows healthy views with a time constant of `adapt_s`, so dusk, lights switching on and IR (black-and-white) mode
move it along instead of raising anything: all three checks are relative to it and the sharpness and the alignment
are insensitive to global brightness. A suspicious view does not update the reference.

Time logic (how long a reading must persist) is the caller's: this module says what one frame looks like.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

import cv2
import numpy as np
import numpy.typing as npt
from pydantic import BaseModel, ConfigDict, Field

from vision.types import ImageArray


class TamperReason(StrEnum):
    covered = "covered"
    defocused = "defocused"
    moved = "moved"


class TamperConfig(BaseModel):
    """Thresholds of the tamper analysis (defaults work for typical fixed CCTV views)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)

    width: int = Field(default=320, ge=64, le=1280, title="Analysis width", description="Pixels, gray copy width.")
    check_interval_s: float = Field(
        default=1.0, gt=0, le=60, title="Check interval (s)", description="At most one analysed frame per this."
    )
    learn_s: float = Field(
        default=10.0, ge=0, le=3600, title="Learning time (s)", description="Healthy view seen this long first."
    )
    adapt_s: float = Field(
        default=120.0,
        gt=0,
        le=86400,
        title="Adaptation (s)",
        description="Time constant with which the reference follows a healthy view (day/night, lights, IR mode).",
    )
    uniform_contrast: float = Field(
        default=6.0,
        ge=0,
        le=255,
        title="Uniform contrast",
        description="Gray-level standard deviation (0-255) below which a view is covered whatever the reference.",
    )
    covered_contrast_ratio: float = Field(
        default=0.25, gt=0, le=1, title="Covered ratio", description="Covered: contrast below this × reference's."
    )
    defocus_ratio: float = Field(
        default=0.4, gt=0, le=1, title="Defocus ratio", description="Defocused: sharpness below this × reference's."
    )
    max_shift: float = Field(
        default=0.03,
        gt=0,
        le=1,
        title="Maximum shift",
        description="Moved: static features shifted more than this fraction of the frame width.",
    )
    max_rotation_deg: float = Field(
        default=2.0, gt=0, le=180, title="Maximum rotation", description="Moved: rotated more than this, in degrees."
    )
    still_change: float = Field(
        default=0.1,
        ge=0,
        le=1,
        title="Still view",
        description="Mean absolute difference from the reference, as a fraction of its contrast, below which the "
        "view is the reference's (not moved) without matching features: a still scene costs no ORB work. Measured "
        "on the sample footage: 0.02-0.08 for a still view with noise and passers-by, 0.10-0.17 for a crowded one, "
        "above 0.5 for a camera shifted 8 % of the width or rotated 5°. 0 = always match features.",
    )
    min_features: int = Field(
        default=40,
        ge=4,
        le=5000,
        title="Minimum features",
        description="Keypoints the reference (and the current view) need before the moved check is made.",
    )


@dataclass(frozen=True, slots=True)
class TamperReading:
    """One analysed frame: `reason` (None = looks healthy) and the measures behind it."""

    reason: TamperReason | None
    score: float  # how clearly (0-1): 1 - measure / threshold for covered and defocused, ≥ 0.5 for moved
    contrast: float
    sharpness: float
    shift: float | None = None  # fraction of the width, when an alignment was found
    rotation_deg: float | None = None
    inliers: int = 0


class TamperDetector:
    """Reference learning and per-frame tamper readings of one camera (see module docs)."""

    def __init__(self, config: TamperConfig | None = None) -> None:
        self.config = config or TamperConfig()
        self._orb = cv2.ORB.create(nfeatures=500, fastThreshold=10)
        self._matcher = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True)
        self._ref: npt.NDArray[np.float32] | None = None
        self._ref_contrast = 0.0
        self._ref_sharpness = 0.0
        self._ref_kp: tuple[npt.NDArray[np.float32], npt.NDArray[np.uint8]] | None = None
        self._learned_s = 0.0
        self._last_t: float | None = None
        self._since_features = math.inf
        self.last: TamperReading | None = None

    @property
    def ready(self) -> bool:
        """True once the reference has been learned (readings may then report a reason)."""
        return self._ref is not None and self._learned_s >= self.config.learn_s

    def reset(self) -> None:
        """Forget the reference (learned again from the next healthy frames)."""
        self._ref, self._ref_kp, self._learned_s, self._last_t, self.last = None, None, 0.0, None, None

    def due(self, t: float) -> bool:
        """True when a frame at `t` (seconds) would be analysed."""
        return self._last_t is None or t - self._last_t >= self.config.check_interval_s - 1e-6 or t < self._last_t

    def check(self, image: ImageArray, t: float) -> TamperReading | None:
        """Analyse `image` (RGB or gray uint8) seen at `t` seconds; None when not due or still learning."""
        if not self.due(t):
            return None
        dt = 0.0 if self._last_t is None or t < self._last_t else t - self._last_t
        self._last_t = t
        gray = _gray(image, self.config.width)
        contrast, sharpness = float(gray.std()), _sharpness(gray)
        if not self.ready:
            self._learn(gray, contrast, sharpness, dt)
            return None
        reading = self._judge(gray, contrast, sharpness)
        if reading.reason is None:
            self._adapt(gray, contrast, sharpness, dt)
        self.last = reading
        return reading

    # -- judging ------------------------------------------------------------------------------------------------
    def _judge(self, gray: npt.NDArray[np.float32], contrast: float, sharpness: float) -> TamperReading:
        cfg = self.config
        covered_below = max(cfg.uniform_contrast, cfg.covered_contrast_ratio * self._ref_contrast)
        if contrast < covered_below:
            return TamperReading(TamperReason.covered, _below(contrast, covered_below), contrast, sharpness)
        defocus_below = cfg.defocus_ratio * self._ref_sharpness
        if sharpness < defocus_below:
            return TamperReading(TamperReason.defocused, _below(sharpness, defocus_below), contrast, sharpness)
        return self._alignment(gray, contrast, sharpness)

    def _alignment(self, gray: npt.NDArray[np.float32], contrast: float, sharpness: float) -> TamperReading:
        cfg = self.config
        if self._still(gray):
            return TamperReading(None, 0.0, contrast, sharpness)
        reference = self._reference_features()
        if reference is None or len(reference[0]) < cfg.min_features:
            return TamperReading(None, 0.0, contrast, sharpness)
        points, desc = self._features(gray)
        if len(points) < cfg.min_features:
            return TamperReading(None, 0.0, contrast, sharpness)  # too little texture to tell
        ref_points, ref_desc = reference
        matches = self._matcher.match(ref_desc, desc)
        if len(matches) < 8:
            return TamperReading(TamperReason.moved, 1.0, contrast, sharpness)
        src = ref_points[[m.queryIdx for m in matches]]
        dst = points[[m.trainIdx for m in matches]]
        matrix, mask = cv2.estimateAffinePartial2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=3.0)
        inliers = int(mask.sum()) if mask is not None else 0
        if matrix is None or inliers < max(8, len(matches) // 8):
            return TamperReading(TamperReason.moved, 1.0, contrast, sharpness, inliers=inliers)
        shift, rotation = _motion(np.asarray(matrix, dtype=np.float64), gray.shape)
        shift_frac = shift / gray.shape[1]
        excess = max(shift_frac / cfg.max_shift, abs(rotation) / cfg.max_rotation_deg)
        reason = TamperReason.moved if excess > 1.0 else None
        score = min(1.0, 0.5 * excess) if reason else 0.0
        return TamperReading(reason, score, contrast, sharpness, shift_frac, rotation, inliers)

    def _still(self, gray: npt.NDArray[np.float32]) -> bool:
        """True when `gray` differs from the reference by less than `still_change` of its contrast on average."""
        ref = self._ref
        if ref is None or ref.shape != gray.shape or self.config.still_change <= 0:
            return False
        change = float(cv2.norm(gray, ref, cv2.NORM_L1)) / (gray.size * max(self._ref_contrast, 1.0))
        return change < self.config.still_change

    def _reference_features(self) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.uint8]] | None:
        """The reference's keypoints, re-extracted when they are 5 checks older than the adapting reference."""
        if self._ref is None:
            return None
        if self._ref_kp is None or self._since_features >= 5.0 * self.config.check_interval_s:
            self._ref_kp = self._features(self._ref)
            self._since_features = 0.0
        return self._ref_kp

    # -- reference ----------------------------------------------------------------------------------------------
    def _learn(self, gray: npt.NDArray[np.float32], contrast: float, sharpness: float, dt: float) -> None:
        if contrast < self.config.uniform_contrast:  # never learn a covered view
            self._ref, self._learned_s = None, 0.0
            return
        if self._ref is None:
            self._ref, self._ref_contrast, self._ref_sharpness = gray, contrast, sharpness
            self._since_features = math.inf
        else:
            self._learned_s += dt
            self._adapt(gray, contrast, sharpness, dt, tau=max(self.config.learn_s, 1.0) / 3)

    def _adapt(
        self, gray: npt.NDArray[np.float32], contrast: float, sharpness: float, dt: float, tau: float | None = None
    ) -> None:
        assert self._ref is not None
        alpha = min(1.0, dt / (tau or self.config.adapt_s))
        if gray.shape != self._ref.shape:  # the stream changed resolution: start again
            self._ref, self._ref_contrast, self._ref_sharpness = gray, contrast, sharpness
            self._since_features = math.inf
        else:
            cv2.accumulateWeighted(gray, self._ref, alpha)
            self._ref_contrast += alpha * (contrast - self._ref_contrast)
            self._ref_sharpness += alpha * (sharpness - self._ref_sharpness)
        self._since_features += dt  # the keypoints follow lazily (`_reference_features`), when a check needs them

    def _features(self, gray: npt.NDArray[np.float32]) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.uint8]]:
        # equalised: brightness and contrast changes move few keypoints
        image = np.asarray(cv2.equalizeHist(np.clip(gray, 0, 255).astype(np.uint8)), dtype=np.uint8)
        keypoints, desc = self._orb.detectAndCompute(image, None)
        if desc is None or not keypoints:
            return np.empty((0, 2), np.float32), np.empty((0, 32), np.uint8)
        return np.array([k.pt for k in keypoints], dtype=np.float32), np.asarray(desc, dtype=np.uint8)


def _gray(image: ImageArray, width: int) -> npt.NDArray[np.float32]:
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
    h, w = gray.shape
    height = max(8, round(h * width / w))
    return cv2.resize(gray, (width, height), interpolation=cv2.INTER_AREA).astype(np.float32)


def _sharpness(gray: npt.NDArray[np.float32]) -> float:
    """Mean absolute Laplacian per unit of contrast: detail, independent of brightness and contrast."""
    lap = cv2.Laplacian(gray, cv2.CV_32F, ksize=3)
    return float(np.abs(lap).mean() / (gray.std() + 1.0))


def _motion(matrix: npt.NDArray[np.float64], shape: tuple[int, ...]) -> tuple[float, float]:
    """(shift of the image centre in pixels, rotation in degrees) of a 2x3 similarity transform."""
    h, w = shape[:2]
    centre = np.array([w / 2.0, h / 2.0])
    moved = matrix[:, :2] @ centre + matrix[:, 2]
    rotation = math.degrees(math.atan2(matrix[1, 0], matrix[0, 0]))
    return float(np.linalg.norm(moved - centre)), rotation


def _below(value: float, threshold: float) -> float:
    return float(min(1.0, max(0.0, 1.0 - value / threshold))) if threshold > 0 else 1.0
