"""Synthetic table tests of the ByteTrack tracker: id stability, occlusion buffer, low scores, classes, config."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pydantic
import pytest

from vision.track import ByteTracker, TrackerConfig, TrackState
from vision.types import Detections

Box = tuple[float, float, float, float]


def dets(boxes: Sequence[Box], conf: Sequence[float] | None = None, labels: Sequence[str] | None = None) -> Detections:
    n = len(boxes)
    return Detections(
        xyxy=np.asarray(boxes, dtype=np.float32).reshape(n, 4),
        confidence=np.asarray(conf if conf is not None else [0.9] * n, dtype=np.float32),
        class_id=np.zeros(n, dtype=np.int64),
        label=np.asarray(labels if labels is not None else ["person"] * n, dtype=np.str_),
    )


def box_at(cx: float, cy: float, w: float = 40, h: float = 80) -> Box:
    return (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)


def test_crossing_objects_keep_their_ids() -> None:
    tracker = ByteTracker()
    fps, speed = 10.0, 120.0  # px per second
    ids_a, ids_b = [], []
    for i in range(40):
        t = i / fps
        a = box_at(100 + speed * t, 200)
        b = box_at(580 - speed * t, 205)
        out = tracker.update(dets([a, b]), t)
        ids_a.append(int(out.tracker_id[0]))
        ids_b.append(int(out.tracker_id[1]))
    assert ids_a[0] == -1 and ids_b[0] == -1  # min_hits=2: unconfirmed on the first frame
    assert set(ids_a[1:]) == {1} or set(ids_a[1:]) == {2}
    assert set(ids_b[1:]) == {1, 2} - set(ids_a[1:])


@pytest.mark.parametrize(
    ("fps", "gap_s", "buffer_s", "same_id"),
    [
        (10.0, 1.0, 3.0, True),
        (10.0, 2.5, 3.0, True),
        (10.0, 4.0, 3.0, False),
        (2.0, 2.5, 3.0, True),  # frame-rate aware: the buffer is in seconds, not frames
        (25.0, 4.0, 3.0, False),
        (10.0, 0.3, 0.0, False),
    ],
)
def test_occlusion_gap_against_buffer(fps: float, gap_s: float, buffer_s: float, same_id: bool) -> None:
    tracker = ByteTracker(TrackerConfig(track_buffer_s=buffer_s))
    speed = 30.0
    t, last_id = 0.0, -1
    while t < 2.0:
        last_id = int(tracker.update(dets([box_at(200 + speed * t, 300)]), t).tracker_id[0])
        t += 1 / fps
    assert last_id == 1
    end = t + gap_s
    while t < end - 1e-9:  # occluded: frames are analysed but the object is not detected
        tracker.update(Detections.empty(), t)
        t += 1 / fps
    t = end
    ids = []
    for _ in range(3):
        ids.append(int(tracker.update(dets([box_at(200 + speed * t, 300)]), t).tracker_id[0]))
        t += 1 / fps
    if same_id:
        assert ids == [1, 1, 1]
    else:
        assert ids[0] == -1 and ids[1:] == [2, 2]


def test_a_gap_without_analysed_frames_keeps_the_id() -> None:
    """When the motion gate skips inference, the tracker is not called; a still object keeps its id."""
    tracker = ByteTracker(TrackerConfig(track_buffer_s=1.0))
    for i in range(3):
        tracker.update(dets([box_at(300, 300)]), i * 0.1)
    assert tracker.update(dets([box_at(300, 300)]), 60.0).tracker_id.tolist() == [1]


def test_low_score_detections_extend_a_track_but_never_start_one() -> None:
    tracker = ByteTracker(TrackerConfig(track_thresh=0.5, low_thresh=0.1))
    for i in range(5):
        out = tracker.update(dets([box_at(100 + 5 * i, 100)], [0.9]), i * 0.1)
    assert out.tracker_id.tolist() == [1]
    for i in range(5, 15):  # partially occluded: the detector is unsure
        out = tracker.update(dets([box_at(100 + 5 * i, 100), box_at(500, 400)], [0.3, 0.3]), i * 0.1)
        assert out.tracker_id.tolist() == [1, -1]
    assert [s.tracker_id for s in tracker.tracks()] == [1]
    out = tracker.update(dets([box_at(100 + 5 * 15, 100)], [0.05]), 1.5)  # below low_thresh: ignored
    assert out.tracker_id.tolist() == [-1]


@pytest.mark.parametrize(("class_aware", "same_id"), [(True, False), (False, True)])
def test_class_aware_association(class_aware: bool, same_id: bool) -> None:
    tracker = ByteTracker(TrackerConfig(class_aware=class_aware, min_hits=1))
    for i in range(3):
        out = tracker.update(dets([box_at(300, 300, 100, 100)], labels=["person"]), i * 0.1)
    assert out.tracker_id.tolist() == [1]
    out = tracker.update(dets([box_at(300, 300, 100, 100)], labels=["truck"]), 0.3)
    assert bool(out.tracker_id[0] == 1) is same_id


def test_unlabelled_detections_use_class_id() -> None:
    tracker = ByteTracker(TrackerConfig(min_hits=1))
    d0 = Detections(np.asarray([box_at(50, 50)], np.float32), np.asarray([0.9], np.float32), np.asarray([3]))
    d1 = Detections(np.asarray([box_at(50, 50)], np.float32), np.asarray([0.9], np.float32), np.asarray([4]))
    assert tracker.update(d0, 0.0).tracker_id.tolist() == [1]
    assert tracker.update(d0, 0.1).tracker_id.tolist() == [1]
    assert tracker.update(d1, 0.2).tracker_id.tolist() == [2]


@pytest.mark.parametrize(("min_hits", "first_id_frame"), [(1, 0), (2, 1), (4, 3)])
def test_min_hits_before_an_id_is_given(min_hits: int, first_id_frame: int) -> None:
    tracker = ByteTracker(TrackerConfig(min_hits=min_hits))
    ids = [int(tracker.update(dets([box_at(100 + i, 100)]), i * 0.2).tracker_id[0]) for i in range(6)]
    assert ids == [-1] * first_id_frame + [1] * (6 - first_id_frame)


def test_a_one_frame_flicker_gets_no_id_and_is_dropped() -> None:
    tracker = ByteTracker()
    tracker.update(dets([box_at(100, 100)]), 0.0)
    tracker.update(Detections.empty(), 0.1)
    out = tracker.update(dets([box_at(100, 100)]), 0.2)
    assert out.tracker_id.tolist() == [-1]
    assert tracker.update(dets([box_at(100, 100)]), 0.3).tracker_id.tolist() == [1]


def test_input_is_not_mutated_and_rows_keep_their_order() -> None:
    tracker = ByteTracker(TrackerConfig(min_hits=1))
    d = dets([box_at(100, 100), box_at(400, 100), box_at(700, 100)], [0.9, 0.3, 0.8])
    before = d.tracker_id.copy()
    out = tracker.update(d, 0.0)
    assert np.array_equal(d.tracker_id, before)
    assert out is not d and np.array_equal(out.xyxy, d.xyxy) and np.array_equal(out.label, d.label)
    assert out.tracker_id.tolist() == [1, -1, 2]  # the low-score row starts no track


def test_invalid_boxes_are_ignored() -> None:
    tracker = ByteTracker(TrackerConfig(min_hits=1))
    out = tracker.update(dets([(10, 10, 10, 50), (0, 0, float("nan"), 5), box_at(100, 100)]), 0.0)
    assert out.tracker_id.tolist() == [-1, -1, 1]


def test_empty_frames_and_lost_tracks_are_reported() -> None:
    tracker = ByteTracker(TrackerConfig(min_hits=1, track_buffer_s=1.0))
    assert len(tracker.update(Detections.empty(), 0.0)) == 0
    tracker.update(dets([box_at(100, 100)]), 0.1)
    tracker.update(Detections.empty(), 0.2)
    assert tracker.tracks() == []
    lost = tracker.tracks(include_lost=True)
    assert [(s.tracker_id, s.state, s.label, s.first_seen, s.last_seen) for s in lost] == [
        (1, TrackState.LOST, "person", 0.1, 0.1)
    ]
    tracker.update(Detections.empty(), 1.2)
    assert tracker.tracks(include_lost=True) == []


def test_pts_going_backwards_resets_tracks_and_never_reuses_ids() -> None:
    tracker = ByteTracker(TrackerConfig(min_hits=1))
    assert tracker.update(dets([box_at(100, 100)]), 5.0).tracker_id.tolist() == [1]
    assert tracker.update(dets([box_at(100, 100)]), 1.0).tracker_id.tolist() == [2]


def test_non_finite_pts_is_rejected() -> None:
    with pytest.raises(ValueError, match="pts"):
        ByteTracker().update(Detections.empty(), float("nan"))


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"low_thresh": 0.6, "track_thresh": 0.5}, "low_thresh"),
        ({"track_buffer_s": -1}, "track_buffer_s"),
        ({"min_hits": 0}, "min_hits"),
        ({"match_thresh": 0}, "match_thresh"),
        ({"track_thresh": 1.5}, "track_thresh"),
        ({"buffer": 30}, "buffer"),
    ],
)
def test_config_validation(fields: dict[str, object], error: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=error):
        TrackerConfig.model_validate(fields)


def test_config_defaults() -> None:
    cfg = TrackerConfig()
    assert cfg.start_thresh == cfg.track_thresh == 0.5
    assert TrackerConfig(new_track_thresh=0.7).start_thresh == 0.7
