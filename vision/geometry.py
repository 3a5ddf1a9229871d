"""Zones and lines in normalised [0, 1] image coordinates, and their tests against `Detections`.

A `Zone` is frame-size independent (it is what a camera config describes); `Zone.at(width, height)` gives the
`PolygonZone` for one frame size, with the pixel polygon and a rasterised mask computed once and cached.

Membership of a detection is decided by its `Anchor`: `bottom_center` (default: the feet / wheels on the ground),
`center`, or `overlap` (the fraction of the box area inside the polygon is at least `min_overlap`; the box area
outside the frame counts as outside). Points on an edge or a vertex are inside. A zone may also filter by label and
by minimum box height (`min_size`, a fraction of the frame height, to ignore far-away or spurious tiny boxes).
The names are those of the camera config (`pipelines.config.camera.Zone`), which builds its `Zone` from them, and
`validate_polygon` is the polygon check of both.

`DirectedLine` gives the side of a point relative to a directed segment and the direction in which a movement
crosses it. Its sign is invariant under the per-axis scaling from normalised to pixel coordinates, so a line in
normalised coordinates can be tested against normalised anchors (`normalise_points`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from enum import StrEnum

import cv2
import numpy as np
import numpy.typing as npt

from vision.types import BoolArray, Detections, Float64Array

logger = logging.getLogger(__name__)

_EPS = 1e-9
#: Smallest polygon area accepted, as a fraction of the frame (1e-6 is about 2 pixels of a 1080p frame).
MIN_AREA = 1e-6
_CACHE_SIZES = 8


class Anchor(StrEnum):
    """How a detection box is tested against a zone. The values are the names written in camera YAML (`anchor:`)."""

    BOTTOM_CENTER = "bottom_center"  # the box's bottom centre (feet, wheels on the ground)
    CENTER = "center"  # the box's centre
    OVERLAP = "overlap"  # the fraction of the box area inside the zone, at least `min_overlap`


class GeometryError(ValueError):
    """Invalid geometry (polygon, line, mask or zone option), with a message that says what is wrong."""


def _as_points(points: Iterable[Sequence[float]] | npt.ArrayLike, what: str) -> Float64Array:
    try:
        arr = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise GeometryError(f"{what} must be a list of [x, y] pairs: {exc}") from None
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise GeometryError(f"{what} must be a list of [x, y] pairs, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise GeometryError(f"{what} has a non-finite coordinate")
    return arr


def _orient(a: Float64Array, b: Float64Array, p: Float64Array) -> Float64Array:
    """Twice the signed area of (a, b, p) for arrays of points; > 0 when p is right of a→b on screen (y down)."""
    ab, ap = b - a, p - a
    out: Float64Array = ab[..., 0] * ap[..., 1] - ab[..., 1] * ap[..., 0]
    return out


def _segments_cross(a: Float64Array, b: Float64Array, c: Float64Array, d: Float64Array) -> bool:
    """Whether closed segments ab and cd share a point (crossing, touching or overlapping)."""
    o1, o2 = float(_orient(a, b, c)), float(_orient(a, b, d))
    o3, o4 = float(_orient(c, d, a)), float(_orient(c, d, b))
    if o1 * o2 < 0 and o3 * o4 < 0:
        return True

    def on(p: Float64Array, q: Float64Array, r: Float64Array, o: float) -> bool:
        return (
            abs(o) <= _EPS
            and min(p[0], q[0]) - _EPS <= r[0] <= max(p[0], q[0]) + _EPS
            and (min(p[1], q[1]) - _EPS <= r[1] <= max(p[1], q[1]) + _EPS)
        )

    return on(a, b, c, o1) or on(a, b, d, o2) or on(c, d, a, o3) or on(c, d, b, o4)


def validate_polygon(points: Iterable[Sequence[float]] | npt.ArrayLike, name: str = "polygon") -> Float64Array:
    """Check a normalised polygon and return it as (N, 2) float64. The one polygon validator of the project.

    The camera config schema (and so the HTTP API, which stores configs through it) and `Zone` all call it, so a
    polygon is accepted or refused with the same message everywhere. Rules, in the order checked: [x, y] pairs of
    finite numbers, at least 3 points, all within [0, 1], no zero-length edge (the polygon closes implicitly, so
    the first point is not repeated at the end), no two consecutive edges folding back over each other, no two other
    edges meeting (self-intersection, touching included), area at least `MIN_AREA`. Messages start with `name` and
    name the offending points or edges.
    """
    poly = _as_points(points, name)
    n = len(poly)
    if n < 3:
        raise GeometryError(f"{name} needs at least 3 points, got {n}")
    outside = np.flatnonzero(((poly < 0) | (poly > 1)).any(axis=1))
    if outside.size:
        i = int(outside[0])
        raise GeometryError(f"{name} point {i} {poly[i].tolist()} is outside the normalised range [0, 1]")
    problem = _edge_problem(poly)
    if problem:
        raise GeometryError(f"{name} {problem}")
    area = abs(polygon_area(poly))
    if area < MIN_AREA:
        raise GeometryError(f"{name} has (near) zero area: {area:.2g} of the frame, less than {MIN_AREA:g}")
    return poly


def _edge_problem(poly: Float64Array) -> str | None:
    """What is wrong with the edges of an (N >= 3, 2) polygon (zero length, fold-back, self-intersection), or None."""
    n = len(poly)
    nxt = np.roll(poly, -1, axis=0)
    same = np.flatnonzero((np.abs(nxt - poly) <= _EPS).all(axis=1))
    if same.size:
        i = int(same[0])
        hint = "the polygon closes implicitly; do not repeat the first point" if i == n - 1 else "a zero-length edge"
        return f"points {i} and {(i + 1) % n} are identical ({hint})"
    prev = np.roll(poly, 1, axis=0)
    backwards = ((prev - poly) * (nxt - poly)).sum(axis=1) > 0  # the two edges at a point leave it the same way
    folds = np.flatnonzero((np.abs(_orient(prev, poly, nxt)) <= _EPS) & backwards)
    if folds.size:
        i = int(folds[0])
        return f"edges {(i - 1) % n}-{i} and {i}-{(i + 1) % n} fold back over each other at point {i}"
    for i in range(n):
        for j in range(i + 2, n):
            if i == 0 and j == n - 1:
                continue  # adjacent through the closing edge
            if _segments_cross(poly[i], nxt[i], poly[j], nxt[j]):
                return f"is self-intersecting: edge {i}-{(i + 1) % n} meets edge {j}-{(j + 1) % n}"
    return None


def polygon_area(polygon: Float64Array) -> float:
    """Signed area (shoelace) of an (N, 2) polygon."""
    x, y = polygon[:, 0], polygon[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def points_in_polygon(points: npt.ArrayLike, polygon: Float64Array, eps: float = 1e-6) -> BoolArray:
    """Vectorised point-in-polygon, (N, 2) points against an (M, 2) polygon; points on an edge/vertex are inside."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(pts) == 0:
        return np.zeros(0, dtype=np.bool_)
    a = polygon[None, :, :]
    b = np.roll(polygon, -1, axis=0)[None, :, :]
    p = pts[:, None, :]
    # even-odd rule by ray casting to +x
    straddles = (a[..., 1] > p[..., 1]) != (b[..., 1] > p[..., 1])
    with np.errstate(divide="ignore", invalid="ignore"):
        x_cross = a[..., 0] + (p[..., 1] - a[..., 1]) * (b[..., 0] - a[..., 0]) / (b[..., 1] - a[..., 1])
    inside: BoolArray = (np.count_nonzero(straddles & (p[..., 0] < x_cross), axis=1) % 2) == 1
    # boundary: distance to some edge within eps
    ab = b - a
    t = np.clip(((p - a) * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-300), 0.0, 1.0)
    dist2 = ((a + t[..., None] * ab - p) ** 2).sum(-1)
    on_edge: BoolArray = (dist2 <= eps * eps).any(axis=1)
    return inside | on_edge


def point_in_polygon(x: float, y: float, polygon: Float64Array) -> bool:
    """Single-point version of `points_in_polygon` (same coordinates as the polygon)."""
    return bool(points_in_polygon(np.array([[x, y]]), polygon)[0])


def normalise_points(points_px: npt.ArrayLike, width: int, height: int) -> Float64Array:
    """(N, 2) pixel points → normalised [0, 1] coordinates of a width x height frame."""
    _check_size(width, height)
    pts = np.asarray(points_px, dtype=np.float64).reshape(-1, 2)
    out: Float64Array = pts / np.array([width, height], dtype=np.float64)
    return out


def _check_size(width: int, height: int) -> None:
    if int(width) <= 0 or int(height) <= 0:
        raise GeometryError(f"frame size must be positive, got {width}x{height}")


def rasterise(polygon: Float64Array, width: int, height: int) -> BoolArray:
    """Boolean (height, width) mask of the pixels whose centres lie inside a normalised polygon (cv2, subpixel)."""
    _check_size(width, height)
    shift = 4
    px = np.round((polygon * np.array([width, height]) - 0.5) * (1 << shift)).astype(np.int32)
    mask = np.zeros((height, width), dtype=np.uint8)
    cv2.fillPoly(mask, [px.reshape(-1, 1, 2)], 1, lineType=cv2.LINE_8, shift=shift)
    if not mask.any():  # a zone thinner than a pixel still covers the pixel at its centroid
        cx, cy = polygon.mean(axis=0)
        mask[min(int(cy * height), height - 1), min(int(cx * width), width - 1)] = 1
    return mask.astype(np.bool_)


class Zone:
    """A polygon zone in normalised coordinates with its membership options; frame-size independent.

    - `anchor`: bottom_center | center | overlap (see `Anchor`)
    - `labels`: only detections with one of these semantic labels can be inside (None = any label)
    - `min_size`: minimum box height as a fraction of the frame height, in (0, 1] (None = no minimum)
    - `min_overlap`: for `overlap`, the minimum fraction of the box area inside the polygon, in (0, 1]
    """

    def __init__(
        self,
        polygon: Iterable[Sequence[float]] | npt.ArrayLike,
        *,
        name: str = "zone",
        anchor: Anchor = Anchor.BOTTOM_CENTER,
        labels: Iterable[str] | None = None,
        min_size: float | None = None,
        min_overlap: float = 0.5,
    ) -> None:
        self.name = name
        self.polygon = validate_polygon(polygon, f"zone {name!r} polygon")
        try:
            self.anchor = Anchor(anchor)
        except ValueError:
            known = ", ".join(Anchor)
            raise GeometryError(f"zone {name!r}: unknown anchor {anchor!r} (one of {known})") from None
        if min_size is not None and not 0.0 < min_size <= 1.0:
            raise GeometryError(f"zone {name!r}: min_size must be in (0, 1], got {min_size}")
        if not 0.0 < min_overlap <= 1.0:
            raise GeometryError(f"zone {name!r}: min_overlap must be in (0, 1], got {min_overlap}")
        self.labels: tuple[str, ...] | None = None if labels is None else tuple(labels)
        if self.labels is not None and not self.labels:
            raise GeometryError(f"zone {name!r}: labels is empty (use None for any label)")
        self.min_size = None if min_size is None else float(min_size)
        self.min_overlap = float(min_overlap)
        self._sized: dict[tuple[int, int], PolygonZone] = {}
        self._rasters: dict[tuple[int, int], BoolArray] = {}

    def __repr__(self) -> str:
        return f"Zone({self.name!r}, {len(self.polygon)} points, anchor={self.anchor})"

    @property
    def area(self) -> float:
        """Area as a fraction of the frame."""
        return abs(polygon_area(self.polygon))

    def at(self, width: int, height: int) -> PolygonZone:
        """The zone for one frame size (cached)."""
        key = (int(width), int(height))
        zone = self._sized.get(key)
        if zone is None:
            if len(self._sized) >= _CACHE_SIZES:
                self._sized.pop(next(iter(self._sized)))
            zone = self._sized[key] = PolygonZone(self, *key)
        return zone

    def contains(self, detections: Detections, width: int, height: int) -> BoolArray:
        """Boolean mask over `detections` (pixel coordinates of a width x height frame): which are in the zone."""
        return self.at(width, height).contains(detections)

    def raster(self, width: int, height: int) -> BoolArray:
        """The zone as a boolean (height, width) mask (cached; do not modify)."""
        key = (int(width), int(height))
        mask = self._rasters.get(key)
        if mask is None:
            if len(self._rasters) >= _CACHE_SIZES:
                self._rasters.pop(next(iter(self._rasters)))
            mask = self._rasters[key] = rasterise(self.polygon, *key)
            mask.flags.writeable = False
        return mask

    def occupancy(self, mask: BoolArray) -> float:
        """Fraction of the zone covered by the True pixels of `mask` (any resolution, e.g. a static-scene mask)."""
        if mask.ndim != 2 or mask.dtype != np.bool_:
            raise GeometryError(f"occupancy needs a 2-D boolean mask, got shape {mask.shape} dtype {mask.dtype}")
        zone = self.raster(mask.shape[1], mask.shape[0])
        return float(np.count_nonzero(mask & zone)) / float(np.count_nonzero(zone))


class PolygonZone:
    """A `Zone` at one frame size: pixel polygon, raster mask and its integral image (built lazily)."""

    def __init__(self, zone: Zone, width: int, height: int) -> None:
        _check_size(width, height)
        self.zone = zone
        self.width, self.height = int(width), int(height)
        self.polygon_px: Float64Array = zone.polygon * np.array([self.width, self.height], dtype=np.float64)
        self._integral: npt.NDArray[np.int64] | None = None

    @property
    def mask(self) -> BoolArray:
        return self.zone.raster(self.width, self.height)

    def contains_points(self, points_px: npt.ArrayLike) -> BoolArray:
        """(N, 2) pixel points → inside mask (edges and vertices inside, to a tolerance of 1e-6 px)."""
        return points_in_polygon(points_px, self.polygon_px)

    def overlap_fraction(self, xyxy: npt.ArrayLike) -> Float64Array:
        """Fraction of each (N, 4) pixel box whose pixel centres fall inside the zone (outside the frame = outside)."""
        boxes = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
        if self._integral is None:
            integral = cv2.integral(self.mask.astype(np.uint8), sdepth=cv2.CV_32S)
            self._integral = np.asarray(integral, dtype=np.int64)
        ii = self._integral
        # pixel j is counted when its centre j + 0.5 lies in [x1, x2)
        cols = np.ceil(boxes[:, [0, 2]] - 0.5).astype(np.int64)
        rows = np.ceil(boxes[:, [1, 3]] - 0.5).astype(np.int64)
        total = np.clip(cols[:, 1] - cols[:, 0], 0, None) * np.clip(rows[:, 1] - rows[:, 0], 0, None)
        c = np.clip(cols, 0, self.width)
        r = np.clip(rows, 0, self.height)
        inside = ii[r[:, 1], c[:, 1]] - ii[r[:, 0], c[:, 1]] - ii[r[:, 1], c[:, 0]] + ii[r[:, 0], c[:, 0]]
        frac: Float64Array = np.where(total > 0, inside / np.maximum(total, 1), 0.0)
        tiny = total == 0  # smaller than a pixel: decide by its centre
        if tiny.any():
            centres = (boxes[tiny, :2] + boxes[tiny, 2:]) / 2
            frac[tiny] = self.contains_points(centres).astype(np.float64)
        return frac

    def contains(self, detections: Detections) -> BoolArray:
        """Boolean mask over `detections`: label filter, minimum size and anchor/overlap test, all vectorised."""
        z = self.zone
        keep = np.ones(len(detections), dtype=np.bool_)
        if z.labels is not None:
            keep &= detections.has_label(*z.labels)
        if z.min_size is not None:
            keep &= (detections.xyxy[:, 3] - detections.xyxy[:, 1]) >= z.min_size * self.height
        if not keep.any():
            return keep
        idx = np.flatnonzero(keep)
        if z.anchor is Anchor.OVERLAP:
            inside = self.overlap_fraction(detections.xyxy[idx]) >= z.min_overlap - 1e-9
        else:
            inside = self.contains_points(detections[idx].anchors(z.anchor))
        keep[idx] = inside
        return keep


class DirectedLine:
    """A directed segment start → end (normalised coordinates) for line-crossing rules.

    `side(p)` is +1 right of the direction as seen on screen (y grows downwards), -1 left, 0 on the line.
    For a horizontal line drawn left → right, +1 is below it; `crossings` returns +1 for a movement from the -1 side
    to the +1 side (top → bottom for that line), -1 for the opposite, 0 otherwise. A crossing counts only where the
    movement segment actually passes through the line segment (not its extension). A position exactly on the line
    (side 0) is neither side: rules should compare against the last non-zero side of a track.
    """

    def __init__(self, start: Sequence[float], end: Sequence[float], *, name: str = "line") -> None:
        pts = _as_points([start, end], f"line {name!r}")
        if (pts < 0).any() or (pts > 1).any():
            raise GeometryError(f"line {name!r} coordinates must be normalised to [0, 1]")
        if np.hypot(*(pts[1] - pts[0])) <= 1e-6:
            raise GeometryError(f"line {name!r} start and end are the same point")
        self.name = name
        self.start, self.end = pts[0], pts[1]

    def side(self, points: npt.ArrayLike, eps: float = 1e-9) -> npt.NDArray[np.int8]:
        """(N, 2) points (same coordinates as the line) → -1, 0 or +1 each."""
        p = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        cross = _orient(self.start, self.end, p) / np.hypot(*(self.end - self.start))
        out: npt.NDArray[np.int8] = np.where(np.abs(cross) <= eps, 0, np.sign(cross)).astype(np.int8)
        return out

    def crossings(self, prev: npt.ArrayLike, curr: npt.ArrayLike) -> npt.NDArray[np.int8]:
        """For N movements prev[i] → curr[i]: +1 (crossed from -1 to +1 side), -1 (from +1 to -1), or 0."""
        p = np.asarray(prev, dtype=np.float64).reshape(-1, 2)
        q = np.asarray(curr, dtype=np.float64).reshape(-1, 2)
        if p.shape != q.shape:
            raise GeometryError(f"prev and curr must have the same shape, got {p.shape} and {q.shape}")
        s0, s1 = self.side(p), self.side(q)
        a = np.broadcast_to(self.start, p.shape)
        b = np.broadcast_to(self.end, p.shape)
        # the line's endpoints must lie on different sides of (or on) the movement segment
        within = _orient(p, q, a) * _orient(p, q, b) <= 0
        out: npt.NDArray[np.int8] = np.where((s0 * s1 < 0) & within, s1, 0).astype(np.int8)
        return out
