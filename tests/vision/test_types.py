from __future__ import annotations

import numpy as np
import pytest

from vision.redact import redact_url
from vision.types import Detections, Frame


def _dets() -> Detections:
    return Detections(
        xyxy=np.array([[0, 0, 10, 10], [5, 5, 25, 45], [100, 100, 110, 130]], dtype=np.float32),
        confidence=np.array([0.9, 0.5, 0.3], dtype=np.float32),
        class_id=np.array([0, 7, 0]),
        label=np.array(["person", "truck", "person"]),
        data={"model": np.array(["a", "a", "b"])},
    )


def test_defaults_and_len() -> None:
    d = _dets()
    assert len(d) == 3
    assert d.tracker_id.tolist() == [-1, -1, -1]
    assert Detections.empty().is_empty()
    assert len(Detections.empty()) == 0


def test_boolean_mask_selects_every_column() -> None:
    d = _dets()
    p = d[d.has_label("person")]
    assert len(p) == 2
    assert p.confidence.tolist() == pytest.approx([0.9, 0.3])
    assert p.data["model"].tolist() == ["a", "b"]
    assert p.xyxy.shape == (2, 4)


def test_int_index_and_iteration() -> None:
    d = _dets()
    one = d[1]
    assert len(one) == 1 and one.label[0] == "truck"
    assert [x.label[0] for x in d] == ["person", "truck", "person"]


def test_mask_of_wrong_length_is_rejected() -> None:
    with pytest.raises(IndexError):
        _dets()[np.array([True, False])]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"xyxy": np.zeros((2, 3))}, "xyxy must have shape"),
        ({"confidence": np.zeros(2)}, "confidence must have shape"),
        ({"class_id": np.zeros(4)}, "class_id must have shape"),
        ({"data": {"x": np.zeros(1)}}, "data['x'] must have length"),
    ],
)
def test_shape_validation(kwargs: dict[str, object], message: str) -> None:
    base: dict[str, object] = {"xyxy": np.zeros((3, 4)), "confidence": np.zeros(3), "class_id": np.zeros(3)}
    base.update(kwargs)
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        Detections(**base)  # type: ignore[arg-type]


def test_trackers_do_not_mutate() -> None:
    d = _dets()
    t = d.with_tracker_ids(np.array([1, 2, 3]))
    assert d.tracker_id.tolist() == [-1, -1, -1]
    assert t.tracker_id.tolist() == [1, 2, 3]


def test_merge_anchors_area() -> None:
    d = Detections.merge([_dets(), Detections.empty(), _dets()[0]])
    assert len(d) == 4
    assert d.anchors()[1].tolist() == [15.0, 45.0]
    assert d.anchors("center")[1].tolist() == [15.0, 25.0]
    assert d.area[1] == pytest.approx(800.0)


def test_frame_validates_image() -> None:
    f = Frame("cam", 0, 0.0, 0.0, np.zeros((4, 6, 3), np.uint8))
    assert (f.width, f.height) == (6, 4)
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        Frame("cam", 0, 0.0, 0.0, np.zeros((4, 6), np.uint8))


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("rtsp://admin:s3cret@cam5.example:554/sub", "rtsp://***@cam5.example:554/sub"),
        ("rtsp://cam5.example/sub", "rtsp://cam5.example/sub"),
        ("failed to open rtsp://u:p@h/x: timeout", "failed to open rtsp://***@h/x: timeout"),
        ("/data/file.mp4", "/data/file.mp4"),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected
