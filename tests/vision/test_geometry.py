"""Table tests of zones, anchors, overlap fractions, occupancy and line crossing."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from vision.geometry import (
    Anchor,
    DirectedLine,
    GeometryError,
    Zone,
    normalise_points,
    point_in_polygon,
    points_in_polygon,
    rasterise,
    validate_polygon,
)
from vision.types import Detections

SQUARE = [[0.2, 0.2], [0.6, 0.2], [0.6, 0.6], [0.2, 0.6]]
# concave "U": the notch (0.4..0.6 x 0.2..0.7) is outside
U_SHAPE = [[0.2, 0.2], [0.4, 0.2], [0.4, 0.7], [0.6, 0.7], [0.6, 0.2], [0.8, 0.2], [0.8, 0.9], [0.2, 0.9]]


def dets(boxes: Sequence[Sequence[float]], labels: Sequence[str] | None = None) -> Detections:
    n = len(boxes)
    return Detections(
        xyxy=np.asarray(boxes, dtype=np.float32).reshape(n, 4),
        confidence=np.full(n, 0.9, dtype=np.float32),
        class_id=np.zeros(n, dtype=np.int64),
        label=np.asarray(labels if labels is not None else ["person"] * n, dtype=np.str_),
    )


@pytest.mark.parametrize(
    ("polygon", "point", "inside"),
    [
        (SQUARE, (0.4, 0.4), True),
        (SQUARE, (0.1, 0.4), False),
        (SQUARE, (0.2, 0.2), True),  # vertex
        (SQUARE, (0.6, 0.6), True),  # vertex
        (SQUARE, (0.4, 0.2), True),  # top edge
        (SQUARE, (0.6, 0.45), True),  # right edge
        (SQUARE, (0.60001, 0.45), False),
        (SQUARE, (0.7, 0.2), False),  # on the extension of an edge
        (U_SHAPE, (0.3, 0.5), True),
        (U_SHAPE, (0.5, 0.5), False),  # in the notch
        (U_SHAPE, (0.5, 0.8), True),  # below the notch
        (U_SHAPE, (0.5, 0.7), True),  # on the notch's bottom edge
        (U_SHAPE, (0.4, 0.45), True),  # on the notch's left edge
        (U_SHAPE, (0.5, 0.2), False),  # between the two arms, level with their tops
        ([[0.1, 0.1], [0.9, 0.5], [0.1, 0.9]], (0.5, 0.5), True),
        ([[0.1, 0.1], [0.9, 0.5], [0.1, 0.9]], (0.85, 0.2), False),
    ],
)
def test_point_in_polygon(polygon: list[list[float]], point: tuple[float, float], inside: bool) -> None:
    poly = validate_polygon(polygon)
    assert point_in_polygon(*point, poly) is inside
    assert points_in_polygon(np.array([point]), poly).tolist() == [inside]


@pytest.mark.parametrize(
    ("polygon", "message"),
    [
        ([[0.1, 0.1], [0.5, 0.5]], "polygon needs at least 3 points, got 2"),
        (
            [[0.1, 0.1], [1.5, 0.1], [0.5, 0.5]],
            r"point 1 \[1.5, 0.1\] is outside the normalised range \[0, 1\]",
        ),
        ([[0.1, -0.1], [0.5, 0.1], [0.5, 0.5]], r"polygon point 0 .* \[0, 1\]"),
        ([[0.1, 0.1], [0.5, 0.1], [0.5, 0.1], [0.5, 0.5]], r"points 1 and 2 are identical \(a zero-length edge\)"),
        ([*SQUARE, SQUARE[0]], r"points 4 and 0 are identical \(.*do not repeat the first point\)"),  # closed ring
        ([[0.1, 0.1], [0.5, 0.5], [0.9, 0.9]], "edges 2-0 and 0-1 fold back over each other at point 0"),
        # a spike: out along the bottom edge and back (zero width, so no crossing, but not a simple polygon)
        ([[0.2, 0.2], [0.6, 0.2], [0.6, 0.6], [0.2, 0.6], [0.2, 0.9]], "edges 3-4 and 4-0 fold back"),
        ([[0.1, 0.1], [0.6, 0.5], [0.6, 0.1], [0.1, 0.4]], "polygon is self-intersecting: edge 0-1 meets edge 2-3"),
        # touching: vertex 4 lies on edge 0-1 (a figure 8 pinched at one point)
        ([[0.1, 0.1], [0.9, 0.1], [0.9, 0.5], [0.6, 0.5], [0.5, 0.1], [0.4, 0.5], [0.1, 0.5]], "edge 0-1 meets edge"),
        # the area is 1.25e-07, on the rounding boundary of the message's one decimal
        ([[0.1, 0.1], [0.1005, 0.1], [0.1, 0.1005]], r"\(near\) zero area: 1\.[23]e-07 of the frame, less than 1e-06"),
        ([[0.1, float("nan")], [0.5, 0.1], [0.5, 0.5]], "non-finite"),
        ([0.1, 0.2, 0.3], "pairs"),
        ("abc", "pairs"),
    ],
)
def test_invalid_polygons(polygon: object, message: str) -> None:
    with pytest.raises(GeometryError, match=message):
        validate_polygon(polygon)  # type: ignore[arg-type]


def test_polygon_messages_start_with_the_given_name() -> None:
    with pytest.raises(GeometryError, match=r"^zone 'lane' polygon is self-intersecting: edge 0-1 meets edge 2-3$"):
        Zone([[0.1, 0.1], [0.6, 0.5], [0.6, 0.1], [0.1, 0.4]], name="lane")


def test_anchor_values_are_the_yaml_names() -> None:
    assert [a.value for a in Anchor] == ["bottom_center", "center", "overlap"]
    assert Zone(SQUARE, anchor="overlap").anchor is Anchor.OVERLAP  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"anchor": "top_left"}, "unknown anchor 'top_left' \\(one of bottom_center, center, overlap\\)"),
        ({"anchor": "box_overlap"}, "unknown anchor"),
        ({"min_size": 0.0}, "min_size"),
        ({"min_size": 1.01}, "min_size"),
        ({"min_overlap": 0.0}, "min_overlap"),
        ({"labels": []}, "labels is empty"),
    ],
)
def test_invalid_zone_options(options: dict[str, object], message: str) -> None:
    with pytest.raises(GeometryError, match=message):
        Zone(SQUARE, name="z", **options)  # type: ignore[arg-type]


# frame 1000 x 500; SQUARE in pixels: x 200..600, y 100..300
@pytest.mark.parametrize(
    ("box", "anchor", "inside"),
    [
        ((300, 50, 340, 250), "bottom_center", True),  # feet inside, head above the zone
        ((300, 150, 340, 350), "bottom_center", False),  # feet below the zone
        ((300, 150, 340, 350), "center", True),
        ((300, 150, 340, 300), "bottom_center", True),  # feet exactly on the bottom edge
        ((580, 150, 620, 250), "bottom_center", True),  # bottom centre x=600 on the right edge
        ((590, 150, 630, 250), "center", False),
        ((100, 150, 300, 250), "overlap", True),  # half the box inside, min_overlap 0.5
        ((100, 150, 290, 250), "overlap", False),  # 90/190 < 0.5
        ((150, 50, 650, 350), "overlap", True),  # zone inside a bigger box: 80000/150000 ≥ 0.5
        ((100, 50, 700, 450), "overlap", False),  # 80000/240000 < 0.5
    ],
)
def test_anchors(box: tuple[float, float, float, float], anchor: str, inside: bool) -> None:
    zone = Zone(SQUARE, anchor=Anchor(anchor))
    assert zone.contains(dets([box]), 1000, 500).tolist() == [inside]


@pytest.mark.parametrize(
    ("box", "expected"),
    [
        ((200, 100, 600, 300), 1.0),
        ((100, 100, 300, 300), 0.5),
        ((400, 200, 800, 400), 0.25),
        ((700, 100, 800, 300), 0.0),
        ((150, 50, 650, 350), 80000 / 150000),
        ((-200, 100, 400, 300), 200 / 600),  # the part outside the frame counts as outside
        ((400.2, 200.2, 400.4, 200.4), 1.0),  # smaller than a pixel: decided by its centre
        ((900.2, 200.2, 900.4, 200.4), 0.0),
    ],
)
def test_overlap_fraction(box: tuple[float, float, float, float], expected: float) -> None:
    frac = Zone(SQUARE).at(1000, 500).overlap_fraction(np.array([box]))
    assert frac[0] == pytest.approx(expected, abs=0.01)


def test_overlap_fraction_concave() -> None:
    zone = Zone(U_SHAPE).at(1000, 1000)
    # box over the notch 400..600 x 200..700 plus both arms' inner parts 300..700 x 300..500
    frac = zone.overlap_fraction(np.array([[300, 300, 700, 500]]))
    assert frac[0] == pytest.approx(0.5, abs=0.01)


def test_min_overlap_threshold_is_configurable() -> None:
    d = dets([(100, 100, 300, 300), (400, 200, 800, 400)])  # 0.5 and 0.25
    assert Zone(SQUARE, anchor=Anchor.OVERLAP, min_overlap=0.2).contains(d, 1000, 500).tolist() == [True, True]
    assert Zone(SQUARE, anchor=Anchor.OVERLAP, min_overlap=0.3).contains(d, 1000, 500).tolist() == [True, False]
    assert Zone(SQUARE, anchor=Anchor.OVERLAP, min_overlap=0.9).contains(d, 1000, 500).tolist() == [False, False]


def test_label_filter_and_min_size() -> None:
    d = dets(
        [(300, 100, 340, 250), (300, 200, 340, 250), (400, 100, 500, 250), (400, 100, 500, 250)],
        ["person", "person", "truck", "bicycle"],
    )
    assert Zone(SQUARE).contains(d, 1000, 500).tolist() == [True, True, True, True]
    assert Zone(SQUARE, labels=["person"]).contains(d, 1000, 500).tolist() == [True, True, False, False]
    assert Zone(SQUARE, labels=("truck", "bicycle")).contains(d, 1000, 500).tolist() == [False, False, True, True]
    # min_size 0.2 of 500 px = 100 px: the 50-px person is ignored
    assert Zone(SQUARE, min_size=0.2).contains(d, 1000, 500).tolist() == [True, False, True, True]
    # min_size 1.0: only boxes as tall as the frame
    full = dets([(300, 0, 340, 500), (300, 1, 340, 500)])
    assert Zone([[0, 0], [1, 0], [1, 1], [0, 1]], min_size=1.0).contains(full, 1000, 500).tolist() == [True, False]


def test_empty_detections_and_cache_per_size() -> None:
    zone = Zone(SQUARE)
    assert zone.contains(Detections.empty(), 640, 480).shape == (0,)
    a = zone.at(640, 480)
    assert zone.at(640, 480) is a
    assert zone.at(320, 240) is not a
    assert np.allclose(a.polygon_px, [[128, 96], [384, 96], [384, 288], [128, 288]])
    with pytest.raises(GeometryError, match="positive"):
        zone.at(0, 480)


@pytest.mark.parametrize(("w", "h"), [(160, 120), (1000, 500), (37, 23)])
def test_raster_area_matches_polygon_area(w: int, h: int) -> None:
    for poly in (SQUARE, U_SHAPE):
        zone = Zone(poly)
        assert zone.raster(w, h).mean() == pytest.approx(zone.area, abs=2.5 / min(w, h))


def test_tiny_zone_still_covers_a_pixel() -> None:
    mask = rasterise(validate_polygon([[0.5, 0.5], [0.502, 0.5], [0.502, 0.502]]), 160, 120)
    assert mask.sum() == 1


@pytest.mark.parametrize(
    ("static", "expected"),
    [
        ((slice(None), slice(None)), 1.0),
        ((slice(0, 0), slice(0, 0)), 0.0),
        ((slice(0, 120), slice(0, 64)), 0.5),  # left half of the zone (x 32..96 of 160)
        ((slice(24, 48), slice(32, 96)), 0.5),  # top half (y 24..72)
        ((slice(0, 120), slice(100, 160)), 0.0),
    ],
)
def test_occupancy(static: tuple[slice, slice], expected: float) -> None:
    mask = np.zeros((120, 160), dtype=np.bool_)
    mask[static] = True
    assert Zone(SQUARE).occupancy(mask) == pytest.approx(expected, abs=0.02)


def test_occupancy_rejects_bad_masks() -> None:
    with pytest.raises(GeometryError, match="2-D boolean"):
        Zone(SQUARE).occupancy(np.zeros((10, 10), dtype=np.uint8))


def test_normalise_points() -> None:
    assert normalise_points([[320, 240], [0, 480]], 640, 480).tolist() == [[0.5, 0.5], [0.0, 1.0]]


# a horizontal line from (0.2, 0.5) to (0.8, 0.5): +1 is below it (y grows downwards)
LINE = DirectedLine((0.2, 0.5), (0.8, 0.5))


@pytest.mark.parametrize(
    ("point", "side"),
    [((0.5, 0.7), 1), ((0.5, 0.3), -1), ((0.5, 0.5), 0), ((0.9, 0.5), 0), ((0.0, 0.9), 1)],
)
def test_line_side(point: tuple[float, float], side: int) -> None:
    assert LINE.side(np.array([point])).tolist() == [side]


@pytest.mark.parametrize(
    ("prev", "curr", "crossing"),
    [
        ((0.5, 0.3), (0.5, 0.7), 1),  # top → bottom
        ((0.5, 0.7), (0.5, 0.3), -1),  # bottom → top
        ((0.1, 0.3), (0.1, 0.7), 0),  # passes beside the segment, across its extension
        ((0.5, 0.3), (0.6, 0.4), 0),  # stays on one side
        ((0.5, 0.3), (0.5, 0.5), 0),  # stops on the line: not yet a crossing
        ((0.19, 0.3), (0.25, 0.7), 1),  # diagonal through the segment near its start
        ((0.8, 0.3), (0.8, 0.7), 1),  # through the end point
    ],
)
def test_line_crossings(prev: tuple[float, float], curr: tuple[float, float], crossing: int) -> None:
    assert LINE.crossings(np.array([prev]), np.array([curr])).tolist() == [crossing]


def test_line_crossing_is_vectorised_and_scale_invariant() -> None:
    prev = np.array([[0.5, 0.3], [0.5, 0.7], [0.1, 0.3]])
    curr = np.array([[0.5, 0.7], [0.5, 0.3], [0.1, 0.7]])
    assert LINE.crossings(prev, curr).tolist() == [1, -1, 0]
    px_prev, px_curr = prev * [1920, 1080], curr * [1920, 1080]
    assert LINE.crossings(normalise_points(px_prev, 1920, 1080), normalise_points(px_curr, 1920, 1080)).tolist() == [
        1,
        -1,
        0,
    ]


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ((0.5, 0.5), (0.5, 0.5), "same point"),
        ((0.5, 0.5), (1.5, 0.5), r"\[0, 1\]"),
        ((0.1, 0.1), (0.2, None), "non-finite"),
    ],
)
def test_invalid_lines(start: tuple[float, float], end: tuple[float, float], message: str) -> None:
    with pytest.raises(GeometryError, match=message):
        DirectedLine(start, end)


def test_crossings_shape_mismatch() -> None:
    with pytest.raises(GeometryError, match="same shape"):
        LINE.crossings(np.zeros((2, 2)), np.zeros((3, 2)))
