from __future__ import annotations

import numpy as np
import pytest

from vision.detect.errors import ImageError
from vision.detect.preprocess import PAD_VALUE, Transform, check_image, prepare, target_shape, to_blob


@pytest.mark.parametrize("method", ["letterbox", "resize"])
@pytest.mark.parametrize(
    ("frame_hw", "input_hw"), [((576, 768), (416, 416)), ((720, 1280), (640, 640)), ((300, 200), (320, 256))]
)
def test_marker_lands_where_the_transform_says(
    method: str, frame_hw: tuple[int, int], input_hw: tuple[int, int]
) -> None:
    """A white block in the frame appears in the input where Transform.to_input maps it, and maps back exactly."""
    image = np.zeros((*frame_hw, 3), dtype=np.uint8)
    box = np.array([[frame_hw[1] * 0.30, frame_hw[0] * 0.40, frame_hw[1] * 0.55, frame_hw[0] * 0.70]], np.float32)
    x1, y1, x2, y2 = box[0].astype(int)
    image[y1:y2, x1:x2] = 255
    out, t = prepare(image, input_hw, method)  # type: ignore[arg-type]
    assert out.shape == (*input_hw, 3)
    ys, xs = np.nonzero(out[..., 0] > 127)
    found = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float32)
    expected = t.to_input(np.array([[x1, y1, x2, y2]], np.float32))[0]
    assert np.abs(found - expected).max() <= 1.0
    np.testing.assert_allclose(t.to_frame(t.to_input(box)), box, atol=1e-3)


def test_letterbox_pads_grey_and_centres() -> None:
    out, t = prepare(np.zeros((100, 200, 3), np.uint8), (320, 320), "letterbox")
    assert t.scale_x == t.scale_y == 1.6 and t.pad_x == 0 and t.pad_y == 80
    assert (out[:80] == PAD_VALUE).all() and (out[240:] == PAD_VALUE).all() and (out[80:240] == 0).all()


def test_to_frame_clips_to_the_frame() -> None:
    t = Transform(0.5, 0.5, 10, 20, frame_w=100, frame_h=50)
    out = t.to_frame(np.array([[0, 0, 500, 500]], np.float32))
    np.testing.assert_array_equal(out, [[0, 0, 100, 50]])


@pytest.mark.parametrize(
    ("frame_hw", "method", "dynamic", "expected"),
    [
        ((576, 768), "letterbox", True, (480, 640)),
        ((720, 1280), "letterbox", True, (384, 640)),
        ((720, 1280), "letterbox", False, (640, 640)),
        ((720, 1280), "resize", True, (640, 640)),
        ((1280, 720), "letterbox", True, (640, 384)),
    ],
)
def test_target_shape(frame_hw: tuple[int, int], method: str, dynamic: bool, expected: tuple[int, int]) -> None:
    assert target_shape(frame_hw, (640, 640), method, 32, dynamic) == expected  # type: ignore[arg-type]


def test_blob_is_nchw_float_in_unit_range() -> None:
    img = np.full((4, 6, 3), 255, np.uint8)
    img[..., 1] = 0
    blob = to_blob([img, img])
    assert blob.shape == (2, 3, 4, 6) and blob.dtype == np.float32 and blob.flags.c_contiguous
    assert blob[:, 0].min() == 1.0 and blob[:, 1].max() == 0.0


@pytest.mark.parametrize(
    ("image", "message"),
    [
        ([[1, 2, 3]], "numpy array"),
        (np.zeros((10, 10, 3), np.float32), "dtype float32"),
        (np.zeros((10, 10), np.uint8), "HxWx3"),
        (np.zeros((10, 10, 4), np.uint8), "HxWx3"),
        (np.zeros((0, 10, 3), np.uint8), "HxWx3"),
    ],
)
def test_check_image_rejects(image: object, message: str) -> None:
    with pytest.raises(ImageError, match=message):
        check_image(image)
