"""The stream policy (`pipelines.config.streams`): who may point a camera at which file or URL, through the loader."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from pipelines.config.camera import ConfigError, StreamPolicy, load_camera_config
from pipelines.config.streams import check_stream_text

ROOTS_MESSAGE = "local video files must be under the media roots"
ADMIN_NEEDED = "streams need an admin key"


@pytest.fixture
def layout(tmp_path: Path, sample_clip: Path) -> Path:
    """tmp/media (the root: a clip, a link to it, a link out, a link to a dir outside), tmp/secret.txt, tmp/cfg."""
    media, outside = tmp_path / "media", tmp_path / "outside"
    media.mkdir()
    outside.mkdir()
    shutil.copy(sample_clip, media / "clip.mp4")
    shutil.copy(sample_clip, outside / "clip.mp4")
    (tmp_path / "secret.txt").write_text("not for operators\n", encoding="utf-8")
    (media / "inner-link.mp4").symlink_to(media / "clip.mp4")
    (media / "escape.mp4").symlink_to(tmp_path / "secret.txt")
    (media / "outdir").symlink_to(outside, target_is_directory=True)
    (tmp_path / "cfg").mkdir()
    return tmp_path


def _write(layout: Path, detect: str, record: str | None = None) -> Path:
    streams = {"detect": detect} | ({"record": record} if record else {})
    path = layout / "cfg" / "cam.yaml"
    path.write_text(yaml.safe_dump({"id": "cam", "site": "s", "name": "n", "streams": streams}), encoding="utf-8")
    return path


def _problems(layout: Path, detect: str, policy: StreamPolicy) -> list[str]:
    try:
        load_camera_config(_write(layout, detect), policy=policy)
    except ConfigError as exc:
        return [f"{p.path}: {p.message}" for p in exc.problems]
    return []


def _operator(layout: Path) -> StreamPolicy:
    return StreamPolicy.api([layout / "media"], admin=False)


def _admin(layout: Path) -> StreamPolicy:
    return StreamPolicy.api([layout / "media"], admin=True)


# (source with {tmp} for the layout dir, operator outcome, admin outcome); None = accepted, else a message fragment
CASES: list[tuple[str, str | None, str | None]] = [
    ("{tmp}/media/clip.mp4", None, None),
    ("{tmp}/media/inner-link.mp4", None, None),  # a symlink that stays inside the root
    ("../media/clip.mp4", ROOTS_MESSAGE, ROOTS_MESSAGE),  # relative to cfg/, but '..' is refused
    ("{tmp}/media/../secret.txt", ROOTS_MESSAGE, ROOTS_MESSAGE),
    ("{tmp}/media/escape.mp4", ROOTS_MESSAGE, ROOTS_MESSAGE),  # inside by name, outside once resolved
    ("{tmp}/media/outdir/clip.mp4", ROOTS_MESSAGE, ROOTS_MESSAGE),  # a directory link out of the root
    ("{tmp}/secret.txt", ROOTS_MESSAGE, ROOTS_MESSAGE),
    ("{tmp}/no-such-file.mp4", ROOTS_MESSAGE, ROOTS_MESSAGE),
    ("/etc/passwd", ROOTS_MESSAGE, ROOTS_MESSAGE),
    ("{tmp}/media/missing.mp4", "file not found", "file not found"),  # inside the root: it may say so
    ("rtsp://user:pw@cam1.example/sub", None, None),
    ("RTSPS://cam1.example/sub", None, None),
    ("http://127.0.0.1:6379/x.mjpg", ADMIN_NEEDED, None),
    ("https://cam1.example/live.m3u8", ADMIN_NEEDED, None),
    ("tcp://127.0.0.1:9999?listen=1", ADMIN_NEEDED, None),
    ("udp://127.0.0.1:9999", ADMIN_NEEDED, None),
    ("rtmp://cam1.example/live", ADMIN_NEEDED, None),
    ("srt://cam1.example:9000", ADMIN_NEEDED, None),
    ("rtp://127.0.0.1:5004", ADMIN_NEEDED, None),
    ("file:///etc/passwd", ADMIN_NEEDED, ROOTS_MESSAGE),  # a file by another name: roots apply
    ("file://{tmp}/media/clip.mp4", ADMIN_NEEDED, None),
]


@pytest.mark.parametrize(("source", "operator", "admin"), CASES, ids=[c[0] for c in CASES])
def test_api_policy_table(layout: Path, source: str, operator: str | None, admin: str | None) -> None:
    source = source.format(tmp=layout)
    for policy, expected in ((_operator(layout), operator), (_admin(layout), admin)):
        problems = _problems(layout, source, policy)
        if expected is None:
            assert problems == [], (source, policy)
        else:
            assert len(problems) == 1 and expected in problems[0], (source, policy, problems)
            assert problems[0].startswith("streams.detect: ")


def test_on_disk_yaml_may_name_any_file_and_scheme(layout: Path) -> None:
    for source in (f"{layout}/media/escape.mp4", f"{layout}/outside/clip.mp4", "tcp://127.0.0.1:9?listen=1"):
        assert _problems(layout, source, StreamPolicy.on_disk()) == []
    config = load_camera_config(_write(layout, f"{layout}/outside/clip.mp4"))  # the default is the on-disk policy
    assert config.detect_source == f"{layout}/outside/clip.mp4"


def test_outside_the_roots_the_answer_does_not_depend_on_existence(layout: Path) -> None:
    policy = _operator(layout)
    existing = _problems(layout, str(layout / "secret.txt"), policy)
    missing = _problems(layout, str(layout / "no-such-secret.txt"), policy)
    assert existing == missing and len(existing) == 1
    assert "secret" not in existing[0]  # the path itself is not echoed either


def test_relative_paths_resolve_as_the_workers_resolve_them(layout: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`media/clip.mp4` from cfg/ is found in cfg's parent (the project root): inside the root. If cfg/ had its own
    media/clip.mp4, that one would be opened, so that one is checked."""
    policy = _operator(layout)
    monkeypatch.chdir(layout / "outside")
    assert _problems(layout, "media/clip.mp4", policy) == []
    (layout / "cfg" / "media").mkdir()
    shutil.copy(layout / "media" / "clip.mp4", layout / "cfg" / "media" / "clip.mp4")
    assert ROOTS_MESSAGE in _problems(layout, "media/clip.mp4", policy)[0]
    assert "file not found" in _problems(layout, "media/typo.mp4", policy)[0]  # a root candidate, nothing there


def test_kept_values_pass_whatever_the_policy(layout: Path) -> None:
    hls = "https://user:pw@cam1.example/live.m3u8"
    outside = str(layout / "outside" / "clip.mp4")
    policy = _operator(layout).keeping([hls, outside, None])
    assert _problems(layout, hls, policy) == []
    assert _problems(layout, outside, policy) == []
    assert ADMIN_NEEDED in _problems(layout, "https://user:pw@cam2.example/live.m3u8", policy)[0]


def test_roots_are_checked_with_their_symlinks_resolved(layout: Path) -> None:
    (layout / "media-link").symlink_to(layout / "media", target_is_directory=True)
    policy = StreamPolicy.api([layout / "media-link"], admin=False)
    assert _problems(layout, str(layout / "media" / "clip.mp4"), policy) == []
    assert _problems(layout, str(layout / "media-link" / "clip.mp4"), policy) == []
    assert ROOTS_MESSAGE in _problems(layout, str(layout / "media-link" / "escape.mp4"), policy)[0]


def test_no_roots_means_no_files(layout: Path) -> None:
    problems = _problems(layout, str(layout / "media" / "clip.mp4"), StreamPolicy.api([], admin=True))
    assert "none configured" in problems[0]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("rtsp://127.0.0.1:6379/\r\nFLUSHALL\r\n", "control characters"),
        ("rtsp://cam1.example/a\tb", "control characters"),
        (" rtsp://cam1.example/a", "whitespace"),
        ("gopher://cam1.example/", "unsupported URL scheme 'gopher'"),
    ],
)
def test_every_writer_gets_the_text_checks(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_stream_text(value)
