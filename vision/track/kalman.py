"""Constant-velocity Kalman filter over boxes, in continuous time.

State: (cx, cy, a, h, vcx, vcy, va, vh) with a = width / height, velocities per second. The step `dt` is the media
time between two analysed frames, so the filter behaves the same at 2 fps and at 25 fps. Noise scales with the box
height (as in ByteTrack/DeepSORT), so near and far objects are treated alike.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from vision.types import Float64Array

_POS_MEAS = 0.05  # measurement std of cx, cy, h as a fraction of h
_POS_PROC = 0.15  # process std of cx, cy, h per sqrt(second), fraction of h
_VEL_PROC = 0.30  # process std of the velocities per sqrt(second), fraction of h per second
_VEL_INIT = 1.00  # initial velocity std, fraction of h per second
_A_MEAS, _A_PROC, _VA_PROC = 1e-2, 1e-2, 1e-4


def xyxy_to_xyah(xyxy: npt.NDArray[np.floating]) -> Float64Array:
    """(N, 4) x1 y1 x2 y2 → (N, 4) cx cy aspect height."""
    b = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    w = np.maximum(b[:, 2] - b[:, 0], 1e-3)
    h = np.maximum(b[:, 3] - b[:, 1], 1e-3)
    return np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2, w / h, h], axis=1)


def xyah_to_xyxy(xyah: Float64Array) -> Float64Array:
    """(N, 4+) cx cy aspect height → (N, 4) x1 y1 x2 y2 (extra columns such as velocities are ignored)."""
    s = np.asarray(xyah, dtype=np.float64).reshape(-1, xyah.shape[-1])
    h = np.maximum(s[:, 3], 1e-3)
    w = np.maximum(s[:, 2], 1e-3) * h
    return np.stack([s[:, 0] - w / 2, s[:, 1] - h / 2, s[:, 0] + w / 2, s[:, 1] + h / 2], axis=1)


def initiate(measurement: Float64Array) -> tuple[Float64Array, Float64Array]:
    """Mean (8,) and covariance (8, 8) of a new track from one xyah measurement."""
    mean = np.concatenate([measurement, np.zeros(4)])
    h = max(float(measurement[3]), 1.0)
    pos, vel = 2 * _POS_MEAS * h, _VEL_INIT * h
    std = np.array([pos, pos, _A_MEAS, pos, vel, vel, _VA_PROC * 10, vel])
    return mean, np.diag(std**2)


def predict(means: Float64Array, covs: Float64Array, dt: Float64Array) -> tuple[Float64Array, Float64Array]:
    """Batched prediction: means (N, 8), covs (N, 8, 8), dt (N,) seconds. Returns new arrays."""
    n = means.shape[0]
    if n == 0:
        return means.copy(), covs.copy()
    f = np.tile(np.eye(8), (n, 1, 1))
    f[:, np.arange(4), np.arange(4) + 4] = dt[:, None]
    h = np.maximum(means[:, 3], 1.0)
    sq = np.sqrt(np.maximum(dt, 1e-6))
    pos = _POS_PROC * h * sq
    vel = _VEL_PROC * h * sq
    q_std = np.stack([pos, pos, np.full(n, _A_PROC) * sq, pos, vel, vel, np.full(n, _VA_PROC) * sq, vel], axis=1)
    q = np.zeros((n, 8, 8))
    q[:, np.arange(8), np.arange(8)] = q_std**2
    new_means = np.einsum("nij,nj->ni", f, means)
    new_covs = f @ covs @ np.transpose(f, (0, 2, 1)) + q
    return new_means, new_covs


def update(mean: Float64Array, cov: Float64Array, measurement: Float64Array) -> tuple[Float64Array, Float64Array]:
    """Correct one track (mean (8,), cov (8, 8)) with an xyah measurement (4,)."""
    h = max(float(mean[3]), 1.0)
    r = np.diag(np.array([_POS_MEAS * h, _POS_MEAS * h, _A_MEAS, _POS_MEAS * h]) ** 2)
    proj_cov = cov[:4, :4] + r
    gain = np.linalg.solve(proj_cov, cov[:4, :]).T  # (8, 4) = P Hᵀ S⁻¹ (S symmetric)
    innovation = measurement - mean[:4]
    new_mean = mean + gain @ innovation
    new_cov = cov - gain @ proj_cov @ gain.T
    return new_mean, new_cov
