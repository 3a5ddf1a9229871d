"""`prepare_data_dir`: the composition roots' first step, so everything the service creates is private."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipelines.worker.data_dir import PRIVATE_UMASK, prepare_data_dir


@pytest.fixture(autouse=True)
def restore_umask() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_new_data_dir_and_what_is_created_in_it_are_private(tmp_path: Path) -> None:
    data = tmp_path / "srv" / "data"
    prepare_data_dir(data)
    (data / "media" / "2025-03-01").mkdir(parents=True)
    (data / "media" / "2025-03-01" / "snapshot.jpg").write_bytes(b"jpeg")
    assert os.umask(PRIVATE_UMASK) == 0o077
    assert (_mode(data), _mode(data / "media"), _mode(data / "media" / "2025-03-01" / "snapshot.jpg")) == (
        0o700,
        0o700,
        0o600,
    )


def test_an_existing_shared_data_dir_is_kept_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    data.chmod(0o755)
    with caplog.at_level(logging.WARNING, logger="pipelines.worker.data_dir"):
        prepare_data_dir(data)
    assert _mode(data) == 0o755
    assert f"chmod -R go= {data}" in caplog.text
