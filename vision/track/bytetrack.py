"""ByteTrack multi-object tracker on `Detections`, in media time.

Why our own (≈250 lines on numpy + scipy) rather than a library:
- supervision's `ByteTrack` is deprecated since 0.28 and removed in 0.31; pinning `supervision<0.31` would tie the
  runtime to a dead branch and pull matplotlib, pydeprecate, requests, tqdm and defusedxml for one class.
- roboflow's `trackers` (the successor, `ByteTrackTracker`) requires supervision plus `opencv-python` (the GUI build,
  which clashes with the `opencv-python-headless` we ship: both install the same `cv2` package) and rich.
- Neither is class-aware, both speak `sv.Detections` (a conversion each frame), and both count the lost-track buffer
  in frames scaled by a fixed frame rate, whereas our analysis fps varies per camera and frames can be skipped by
  the motion gate. Here every duration is in seconds of `pts`, and the Kalman filter steps by the real `dt`.

The algorithm follows ByteTrack (Zhang et al., 2022): (1) confirmed tracks (tracked and lost) are matched to
high-score detections by IoU with the Kalman-predicted boxes (boxes grown by `match_buffer` on each side first, the
buffered IoU of C-BIoU: at 5 fps small far-away people often move more than their own width between analysed frames,
and on vtest.mp4 this cut person ids from 124 to 75 with the parked van still on one id); (2) tracks still unmatched
and not lost are matched to low-score detections (which extends tracks through partial occlusion without starting
new ones); (3) tentative tracks are matched to the remaining high-score detections; (4) remaining high-score
detections start tentative tracks.
A tentative track gets a `tracker_id` once it has `min_hits` consecutive matches; until then its rows carry -1, so
ids are not wasted on one-frame flickers and stay small. A tentative track that misses a frame is dropped; a
confirmed one is kept `track_buffer_s` seconds of media time while lost, then dropped (its id is never reused).

The output has exactly the input rows, in the same order, with `tracker_id` filled in (a new `Detections`; the input
is never mutated). Lost tracks are not emitted as phantom boxes; see `tracks()` for the tracker's own state.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from enum import StrEnum

import numpy as np
import numpy.typing as npt

from vision.track import kalman
from vision.track.config import TrackerConfig
from vision.track.matching import assign, expand, iou_matrix
from vision.types import Detections, Float64Array, IntArray

logger = logging.getLogger(__name__)


class TrackState(StrEnum):
    TENTATIVE = "tentative"
    TRACKED = "tracked"
    LOST = "lost"


@dataclass(slots=True)
class _Track:
    mean: Float64Array
    cov: Float64Array
    key: str
    label: str
    state: TrackState
    hits: int
    first_seen: float
    last_seen: float
    score: float
    track_id: int = -1


@dataclass(frozen=True, slots=True)
class TrackSnapshot:
    """A confirmed track as the tracker sees it now (for rules that need track age or lost tracks)."""

    tracker_id: int
    label: str
    state: TrackState
    xyxy: tuple[float, float, float, float]
    first_seen: float
    last_seen: float
    score: float


def _class_keys(det: Detections) -> npt.NDArray[np.str_]:
    keys = [lbl if lbl else f"#{cid}" for lbl, cid in zip(det.label.tolist(), det.class_id.tolist(), strict=True)]
    return np.asarray(keys, dtype=np.str_)


class ByteTracker:
    """Stateful tracker for one camera. Call `update(detections, pts)` once per analysed frame, in pts order."""

    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = config or TrackerConfig()
        self._tracks: list[_Track] = []
        self._next_id = 1
        self._last_pts: float | None = None

    def reset(self) -> None:
        """Forget all tracks (ids keep increasing, so an id is never reused by this tracker)."""
        self._tracks = []
        self._last_pts = None

    def tracks(self, include_lost: bool = False) -> list[TrackSnapshot]:
        """Confirmed tracks (tracked, and lost ones when asked), with their current (predicted) boxes."""
        out = []
        for t in self._tracks:
            if t.track_id < 0 or (t.state is TrackState.LOST and not include_lost):
                continue
            box = kalman.xyah_to_xyxy(t.mean[None, :4])[0]
            xyxy = (float(box[0]), float(box[1]), float(box[2]), float(box[3]))
            out.append(TrackSnapshot(t.track_id, t.label, t.state, xyxy, t.first_seen, t.last_seen, t.score))
        return out

    def boxes(self, ahead_s: float = 0.0) -> list[tuple[int, tuple[float, float, float, float]]]:
        """(tracker_id, box) of every track, tentative (id -1) and lost ones included: where the detector should
        look next (motion regions). The box spans the track's box now and where its velocity takes it `ahead_s`
        seconds later."""
        if not self._tracks:
            return []
        means = np.stack([t.mean for t in self._tracks])
        now = kalman.xyah_to_xyxy(means[:, :4])
        later = means[:, :4].copy()
        later[:, :2] += means[:, 4:6] * ahead_s
        then = kalman.xyah_to_xyxy(later)
        lo, hi = np.minimum(now[:, :2], then[:, :2]), np.maximum(now[:, 2:], then[:, 2:])
        return [
            (t.track_id, (float(a[0]), float(a[1]), float(b[0]), float(b[1])))
            for t, a, b in zip(self._tracks, lo, hi, strict=True)
        ]

    def update(self, detections: Detections, pts: float) -> Detections:
        """Associate `detections` (one frame, at media time `pts` seconds) and return them with `tracker_id`s."""
        if not math.isfinite(pts):
            raise ValueError(f"pts must be a finite number of seconds, got {pts!r}")
        if self._last_pts is not None and pts < self._last_pts:
            logger.warning("pts went backwards (%.3f -> %.3f); resetting tracks", self._last_pts, pts)
            self.reset()
        dt = 0.0 if self._last_pts is None else min(pts - self._last_pts, self.config.max_dt_s)
        self._last_pts = pts
        self._expire(pts)
        self._predict(dt)
        ids = np.full(len(detections), -1, dtype=np.int64)
        matched = self._associate(detections, pts)
        for ti, di in matched:
            ids[di] = self._tracks[ti].track_id
        self._age_out(pts, {ti for ti, _ in matched})
        return detections.with_tracker_ids(ids)

    def _predict(self, dt: float) -> None:
        if not self._tracks or dt <= 0:
            return
        means = np.stack([t.mean for t in self._tracks])
        covs = np.stack([t.cov for t in self._tracks])
        lost = np.array([t.state is TrackState.LOST for t in self._tracks])
        means[lost, 7] = 0.0  # a lost track keeps moving but stops growing/shrinking
        means, covs = kalman.predict(means, covs, np.full(len(self._tracks), dt))
        for t, m, c in zip(self._tracks, means, covs, strict=True):
            t.mean, t.cov = m, c

    def _similarity(self, track_idx: list[int], det_idx: IntArray, det: Detections) -> Float64Array:
        ratio = self.config.match_buffer
        means = np.stack([self._tracks[i].mean for i in track_idx]) if track_idx else np.zeros((0, 8))
        sim = iou_matrix(expand(kalman.xyah_to_xyxy(means), ratio), expand(det.xyxy[det_idx], ratio))
        if self.config.class_aware and sim.size:
            keys = _class_keys(det)[det_idx]
            tkeys = np.asarray([self._tracks[i].key for i in track_idx], dtype=np.str_)
            sim = np.where(tkeys[:, None] == keys[None, :], sim, 0.0)
        return sim

    def _match(
        self, track_idx: list[int], det_idx: IntArray, det: Detections, thresh: float
    ) -> tuple[list[tuple[int, int]], list[int], IntArray]:
        """Match tracks (indices into self._tracks) to detections (row indices); returns pairs of those indices."""
        pairs, un_t, un_d = assign(self._similarity(track_idx, det_idx, det), thresh)
        matched = [(track_idx[r], int(det_idx[c])) for r, c in pairs]
        return matched, [track_idx[r] for r in un_t], det_idx[np.asarray(un_d, dtype=np.int64)]

    def _associate(self, det: Detections, pts: float) -> list[tuple[int, int]]:
        cfg = self.config
        b = det.xyxy
        valid = np.isfinite(b).all(axis=1) & (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])
        conf = det.confidence
        high = np.flatnonzero(valid & (conf >= cfg.track_thresh)).astype(np.int64)
        low = np.flatnonzero(valid & (conf >= cfg.low_thresh) & (conf < cfg.track_thresh)).astype(np.int64)
        confirmed = [i for i, t in enumerate(self._tracks) if t.state is not TrackState.TENTATIVE]
        tentative = [i for i, t in enumerate(self._tracks) if t.state is TrackState.TENTATIVE]
        m1, left, high_left = self._match(confirmed, high, det, cfg.match_thresh)
        still_tracked = [i for i in left if self._tracks[i].state is TrackState.TRACKED]
        m2, _, _ = self._match(still_tracked, low, det, cfg.low_match_thresh)
        m3, _, new = self._match(tentative, high_left, det, cfg.match_thresh)
        matched = m1 + m2 + m3
        for ti, di in matched:
            self._correct(self._tracks[ti], det, di, pts)
        keys = _class_keys(det)
        for di in new.tolist():
            if conf[di] >= cfg.start_thresh:
                self._start(det, di, str(keys[di]), pts)
                matched.append((len(self._tracks) - 1, di))
        return matched

    def _correct(self, t: _Track, det: Detections, di: int, pts: float) -> None:
        t.mean, t.cov = kalman.update(t.mean, t.cov, kalman.xyxy_to_xyah(det.xyxy[di])[0])
        t.hits += 1
        t.last_seen = pts
        t.score = float(det.confidence[di])
        if t.state is TrackState.TENTATIVE and t.hits >= self.config.min_hits:
            self._confirm(t)
        elif t.state is TrackState.LOST:
            t.state = TrackState.TRACKED

    def _start(self, det: Detections, di: int, key: str, pts: float) -> None:
        mean, cov = kalman.initiate(kalman.xyxy_to_xyah(det.xyxy[di])[0])
        t = _Track(mean, cov, key, str(det.label[di]), TrackState.TENTATIVE, 1, pts, pts, float(det.confidence[di]))
        self._tracks.append(t)
        if self.config.min_hits <= 1:
            self._confirm(t)

    def _confirm(self, t: _Track) -> None:
        t.state = TrackState.TRACKED
        t.track_id = self._next_id
        self._next_id += 1

    def _expire(self, pts: float) -> None:
        """Drop lost tracks unseen for longer than the buffer before matching, so they cannot be re-found.

        Only tracks observed missing (LOST) expire: when no frame was analysed in between (e.g. the motion gate
        skipped inference on a static scene), a track is still TRACKED and keeps its id across the gap.
        """
        buffer_s = self.config.track_buffer_s
        self._tracks = [t for t in self._tracks if t.state is not TrackState.LOST or pts - t.last_seen <= buffer_s]

    def _age_out(self, pts: float, matched: set[int]) -> None:
        keep = []
        for i, t in enumerate(self._tracks):
            if i not in matched:
                if t.state is TrackState.TENTATIVE:
                    continue
                t.state = TrackState.LOST
                if pts - t.last_seen > self.config.track_buffer_s:
                    continue
            keep.append(t)
        self._tracks = keep
