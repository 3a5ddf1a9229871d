"""RuntimeSettings: the media roots list and the evidence key's minimum strength."""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

import cv2
import pytest
from pydantic import SecretStr, ValidationError

from pipelines.worker.settings import DEFAULT_MEDIA_ROOT, RuntimeSettings, configure_camera_process, key_bytes


def test_media_roots_default_to_the_project_samples(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SAFEWATCH_MEDIA_ROOTS", raising=False)
    assert RuntimeSettings().media_roots == (DEFAULT_MEDIA_ROOT,)
    assert (DEFAULT_MEDIA_ROOT / "vtest.mp4").is_file()
    monkeypatch.setenv("SAFEWATCH_MEDIA_ROOTS", "")  # empty = not set, as for the other settings
    assert RuntimeSettings().media_roots == (DEFAULT_MEDIA_ROOT,)


def test_media_roots_are_a_path_list_made_absolute(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SAFEWATCH_MEDIA_ROOTS", os.pathsep.join(["/srv/clips", "relative/dir", ""]))
    assert RuntimeSettings().media_roots == (Path("/srv/clips"), tmp_path / "relative" / "dir")
    assert RuntimeSettings(media_roots=(tmp_path,)).media_roots == (tmp_path,)


@pytest.mark.parametrize(
    ("key", "size", "read_as"),
    [
        ("ab" * 32, 32, "hex digits"),
        ("ab" * 16, 16, "hex digits"),  # 32 characters, but only 16 bytes of key
        (base64.b64encode(b"k" * 32).decode(), 32, "base64"),
        (base64.urlsafe_b64encode(b"\xfb" * 24).decode(), 24, "base64"),
        (secrets.token_urlsafe(32), 43, "text"),  # unpadded: not base64, 43 characters of text
        ("パスワード" * 3, 45, "text"),
    ],
)
def test_key_bytes(key: str, size: int, read_as: str) -> None:
    assert key_bytes(key) == (size, read_as)


@pytest.mark.parametrize("key", [secrets.token_hex(32), base64.b64encode(os.urandom(32)).decode(), "x" * 33, ""])
def test_strong_or_empty_evidence_keys_are_accepted(key: str) -> None:
    settings = RuntimeSettings(evidence_key=SecretStr(key))
    assert settings.signing_key == (key.encode("utf-8") or None)  # signed with the value's bytes, as before


@pytest.mark.parametrize("key", ["s3cr3t", secrets.token_hex(16), base64.b64encode(os.urandom(31)).decode()])
def test_weak_evidence_keys_are_refused_without_echoing_them(key: str) -> None:
    with pytest.raises(ValidationError) as info:
        RuntimeSettings(evidence_key=SecretStr(key))
    text = str(info.value)
    assert "evidence_key" in text and "at least 32 bytes" in text and "token_hex(32)" in text
    assert key not in text


def test_a_camera_process_runs_opencv_in_the_calling_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    before = cv2.getNumThreads()
    try:
        monkeypatch.delenv("SAFEWATCH_OPENCV_THREADS", raising=False)
        configure_camera_process(RuntimeSettings())
        assert cv2.getNumThreads() == 1
        monkeypatch.setenv("SAFEWATCH_OPENCV_THREADS", "2")
        configure_camera_process(RuntimeSettings())
        assert cv2.getNumThreads() == 2
        cv2.setNumThreads(1)
        monkeypatch.setenv("SAFEWATCH_OPENCV_THREADS", "0")  # 0: OpenCV's own default, left alone
        configure_camera_process(RuntimeSettings())
        assert cv2.getNumThreads() == 1
        monkeypatch.setenv("SAFEWATCH_OPENCV_THREADS", "-1")
        with pytest.raises(ValidationError, match="opencv_threads"):
            RuntimeSettings()
    finally:
        cv2.setNumThreads(before)


def test_camera_processes_run_one_inference_thread_by_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from vision.detect.registry import ModelRegistry
    from vision.detect.session import SessionConfig

    monkeypatch.delenv("SAFEWATCH_INFERENCE_THREADS", raising=False)
    assert RuntimeSettings().camera_session == SessionConfig(intra_op_threads=1)
    monkeypatch.setenv("SAFEWATCH_INFERENCE_THREADS", "0")  # 0: ONNX Runtime's default (every physical core)
    settings = RuntimeSettings()
    assert settings.camera_session.intra_op_threads == 0
    assert ModelRegistry(tmp_path, session=settings.camera_session).default_options.session == settings.camera_session
    monkeypatch.setenv("SAFEWATCH_INFERENCE_THREADS", "lots")
    with pytest.raises(ValidationError, match="inference_threads"):
        RuntimeSettings()
