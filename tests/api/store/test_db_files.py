"""The SQLite store holds webhook secrets and key hashes: its files are 0600 whatever the process umask."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from api.store.db import Store


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_database_and_its_wal_files_are_private(tmp_path: Path) -> None:
    old = os.umask(0o022)  # the usual default, under which SQLite would create 0644 files
    try:
        store = Store(f"sqlite:///{(tmp_path / 'sub' / 'safewatch.db').as_posix()}")  # migrating writes: WAL
        modes = {f.name: _mode(f) for f in (tmp_path / "sub").glob("safewatch.db*")}
        store.dispose()
    finally:
        os.umask(old)
    assert set(modes) == {"safewatch.db", "safewatch.db-wal", "safewatch.db-shm"}
    assert {name: oct(mode) for name, mode in modes.items() if mode & 0o077} == {}


def test_an_older_wider_database_is_tightened(tmp_path: Path) -> None:
    db = tmp_path / "safewatch.db"
    Store(f"sqlite:///{db.as_posix()}").dispose()
    db.chmod(0o644)  # as an older release left it
    Store(f"sqlite:///{db.as_posix()}").dispose()
    assert _mode(db) == 0o600
