"""Annotated snapshots (zone, boxes, CJK header) and the original JPEG, on real and synthetic frames."""

from __future__ import annotations

import hashlib
import io
from datetime import datetime, timedelta, timezone
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from vision.media.annotate import PALETTE, ZONE_COLOR, annotate
from vision.media.config import SnapshotConfig
from vision.media.fonts import find_cjk_font, load_font
from vision.media.snapshot import BestFrameSelector, encode_jpeg, write_snapshots
from vision.types import Detections

CST = timezone(timedelta(hours=8), "CST")
WHEN = datetime(2024, 5, 1, 14, 3, 22, tzinfo=CST)
ZONE = [[0.10, 0.50], [0.40, 0.50], [0.40, 0.90], [0.10, 0.90]]
GREY = 100


def _dets() -> Detections:
    return Detections(
        xyxy=np.array([[400, 100, 560, 300]], dtype=np.float32),
        confidence=np.array([0.87], dtype=np.float32),
        class_id=np.array([0]),
        label=np.array(["person"]),
        tracker_id=np.array([3]),
    )


@pytest.fixture(scope="module")
def real_frame(sample_clip: Path) -> np.ndarray:
    with av.open(str(sample_clip)) as c:
        return next(c.decode(video=0)).to_ndarray(format="rgb24")


def test_zone_and_box_drawn_where_expected() -> None:
    image = np.full((480, 640, 3), GREY, dtype=np.uint8)
    before = image.copy()
    out = annotate(image, _dets(), zone=ZONE, rule="exit_blocked", camera_name="gate-3", local_time=WHEN)
    np.testing.assert_array_equal(image, before)  # the input is never drawn on
    alpha = 0.25
    fill = np.array([GREY * (1 - alpha) + c * alpha for c in ZONE_COLOR])
    np.testing.assert_allclose(out[384, 160], fill, atol=2)  # inside the zone: blended fill
    np.testing.assert_array_equal(out[336, 256], ZONE_COLOR)  # on the right edge x=0.4*640: outline
    np.testing.assert_array_equal(out[200, 400], PALETTE[3 % len(PALETTE)])  # box left edge, colour of track 3
    np.testing.assert_array_equal(out[200, 480], [GREY] * 3)  # box interior untouched
    np.testing.assert_array_equal(out[100, 50], [GREY] * 3)  # outside everything untouched
    assert out[5, 320].mean() < GREY * 0.5  # header bar darkens the top


def _glyph(ch: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont) -> np.ndarray:
    img = Image.new("L", (64, 64), 0)
    ImageDraw.Draw(img).text((4, 4), ch, fill=255, font=font)
    return np.asarray(img) > 127


def test_cjk_font_renders_distinct_glyphs() -> None:
    assert find_cjk_font().is_file()
    font = load_font(40)
    glyphs = [_glyph(ch, font) for ch in "消防通道"]
    assert all(g.sum() > 60 for g in glyphs)
    assert all(not np.array_equal(a, b) for i, a in enumerate(glyphs) for b in glyphs[i + 1 :])
    tofu = [_glyph(ch, ImageFont.load_default(40)) for ch in "消防"]  # a font without CJK: identical boxes
    assert np.array_equal(tofu[0], tofu[1])


def test_chinese_camera_name_changes_the_header() -> None:
    image = np.full((480, 640, 3), GREY, dtype=np.uint8)
    kw = {"zone": None, "rule": "exit_blocked", "local_time": WHEN}
    a = annotate(image, Detections.empty(), camera_name="3号门 消防通道", **kw)  # type: ignore[arg-type]
    b = annotate(image, Detections.empty(), camera_name="3号门 消消消消", **kw)  # type: ignore[arg-type]
    header_a, header_b = a[:24], b[:24]
    assert (header_a > 200).sum() > 300  # much white ink in the bar
    assert not np.array_equal(header_a, header_b)  # different characters → different pixels (no tofu)


def test_write_snapshots_files_and_hashes(real_frame: np.ndarray, tmp_path: Path) -> None:
    cfg = SnapshotConfig(jpeg_quality=95, max_side=320)
    before = real_frame.copy()
    res = write_snapshots(
        real_frame,
        _dets(),
        tmp_path,
        zone=ZONE,
        rule="exit_blocked",
        camera_name="消防通道",
        local_time=WHEN,
        config=cfg,
    )
    np.testing.assert_array_equal(real_frame, before)
    for f in res.files:
        assert not f.missing and f.path.is_file()
        assert f.sha256 == hashlib.sha256(f.path.read_bytes()).hexdigest() and f.size == f.path.stat().st_size
    assert res.annotated.path.name == "snapshot.jpg" and res.raw.path.name == "snapshot_raw.jpg"
    with Image.open(res.annotated.path) as ann:
        assert max(ann.size) == 320 and ann.size == (320, 240)
    with Image.open(res.raw.path) as raw:
        decoded = np.asarray(raw.convert("RGB"), dtype=np.int16)
    assert decoded.shape == real_frame.shape  # full size: original pixels kept
    assert np.abs(decoded - real_frame.astype(np.int16)).mean() < 2.0


def test_encode_jpeg_quality_changes_size(real_frame: np.ndarray) -> None:
    small, large = encode_jpeg(real_frame, 30), encode_jpeg(real_frame, 95)
    assert len(small) < len(large)
    assert Image.open(io.BytesIO(encode_jpeg(real_frame, 90, 100))).size == (100, 75)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"local_time": datetime(2024, 5, 1, 14, 3)}, "timezone-aware"),
        ({"zone": [[0.1, 0.1], [0.2, 0.2]]}, "at least 3"),
        ({"image": np.zeros((10, 10), dtype=np.uint8)}, "HxWx3"),
    ],
)
def test_annotate_rejects_bad_input(kwargs: dict[str, object], error: str) -> None:
    args: dict[str, object] = {
        "image": np.zeros((48, 64, 3), dtype=np.uint8),
        "zone": ZONE,
        "local_time": WHEN,
        **kwargs,
    }
    image = args.pop("image")
    with pytest.raises(ValueError, match=error):
        annotate(image, Detections.empty(), rule="r", camera_name="c", **args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [({"jpeg_quality": 0}, "greater than or equal to 1"), ({"max_side": 10}, "64"), ({"quality": 5}, "Extra")],
)
def test_snapshot_config_rejects_bad_values(kwargs: dict[str, object], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        SnapshotConfig(**kwargs)  # type: ignore[arg-type]


def test_best_frame_selector_keeps_highest_confidence_copy() -> None:
    sel = BestFrameSelector()
    frames = [np.full((4, 4, 3), v, dtype=np.uint8) for v in (10, 20, 30)]
    assert sel.best is None
    assert sel.offer(frames[0], _dets(), 0.5, pts=1.0)
    assert sel.offer(frames[1], _dets(), 0.7, pts=2.0)
    assert not sel.offer(frames[2], _dets(), 0.6, pts=3.0)
    assert not sel.offer(frames[2], _dets(), 0.7, pts=3.0)  # ties keep the earlier frame
    frames[1][:] = 99  # the caller reuses its buffer: the kept frame is a copy
    best = sel.best
    assert best is not None and best.confidence == pytest.approx(0.7) and best.pts == 2.0
    assert int(best.image[0, 0, 0]) == 20
    sel.reset()
    assert sel.best is None
