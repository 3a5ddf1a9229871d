"""Stationary objects: promotion after standing still, re-verification, carrying, dropping."""

from __future__ import annotations

import numpy as np
import pytest

from vision.track.stationary import StationaryConfig, StationaryObjects
from vision.types import Detections

VAN = (600.0, 50.0, 700.0, 90.0)


def _tracked(boxes: list[tuple[float, float, float, float]], ids: list[int], label: str = "truck") -> Detections:
    n = len(boxes)
    return Detections(
        xyxy=np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
        confidence=np.full(n, 0.8, dtype=np.float32),
        class_id=np.full(n, 7, dtype=np.int64),
        label=np.asarray([label] * n),
        tracker_id=np.asarray(ids, dtype=np.int64),
        data={"model": np.asarray(["coco"] * n)},
    )


def _untracked(det: Detections) -> Detections:
    return det.with_tracker_ids(np.full(len(det), -1, dtype=np.int64))


def _never(_: tuple[float, float, float, float]) -> bool:
    return False


def test_a_still_box_becomes_stationary_after_the_dwell_and_a_moving_one_does_not() -> None:
    book = StationaryObjects(StationaryConfig(after_s=3.0))
    for i in range(20):  # 4 s at 5 fps
        t = i * 0.2
        walker = (100.0 + 10 * i, 200.0, 140.0 + 10 * i, 300.0)
        jitter = (VAN[0] + (i % 2), VAN[1], VAN[2] + (i % 2), VAN[3])
        book.observe(_tracked([jitter, walker], [3, 4]), t)
        assert (3 in book.stationary()) is (t >= 3.0)
    assert list(book.stationary()) == [3]
    assert book.model_of(3) == "coco"


def test_due_on_interval_or_when_motion_touches() -> None:
    book = StationaryObjects(StationaryConfig(after_s=1.0, interval_s=5.0))
    for i in range(6):
        book.observe(_tracked([VAN], [3]), i * 0.2)
    assert book.stationary() == {3: VAN}
    assert book.due(2.0, _never) == []
    assert book.due(2.0, lambda box: box[0] < 650 < box[2]) == [3]  # motion over the box
    assert book.due(6.0, _never) == [3]  # 5 s since it became stationary at 1.0


def test_verification_keeps_or_drops_and_carried_rows_skip_what_was_looked_at() -> None:
    book = StationaryObjects(StationaryConfig(after_s=1.0, verify_iou=0.5))
    for i in range(6):
        book.observe(_tracked([VAN, (10.0, 10.0, 50.0, 100.0)], [3, 5], "truck"), i * 0.2)
    assert set(book.stationary()) == {3, 5}
    carried = book.carried()
    assert len(carried) == 2 and (carried.tracker_id == -1).all()
    assert len(book.carried(skip=[3])) == 1
    moved = _untracked(_tracked([(602.0, 51.0, 702.0, 91.0)], [0]))
    assert book.verify([3], moved, 2.0) == []  # found again: stays, with the new row
    assert book.stationary()[3] == pytest.approx((602.0, 51.0, 702.0, 91.0))
    assert book.verify([5], moved, 2.0) == [5]  # not found: dropped
    assert set(book.stationary()) == {3} and book.dropped == 1
    person = _untracked(_tracked([(602.0, 51.0, 702.0, 91.0)], [0], "person"))
    assert book.verify([3], person, 3.0) == [3]  # another label does not verify it


def test_a_track_the_tracker_no_longer_reports_is_forgotten_and_disabled_books_nothing() -> None:
    book = StationaryObjects(StationaryConfig(after_s=0.4))
    for i in range(4):
        book.observe(_tracked([VAN], [3]), i * 0.2)
    assert 3 in book.stationary()
    book.observe(_tracked([], []), 1.0)
    assert book.stationary() == {}
    off = StationaryObjects(StationaryConfig(enabled=False, after_s=0.4))
    for i in range(4):
        off.observe(_tracked([VAN], [3]), i * 0.2)
    assert off.stationary() == {}
