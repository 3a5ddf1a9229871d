"""Issue 11, finding 6 (data at rest): the store (webhook secrets, key hashes), evidence and spools are private.

After a real `safewatch run` raised incidents (snapshots and clips written) and stopped, nothing under its data dir
may be readable, writable or listable by group or others: the SQLite database and its -wal/-shm files, the media
tree, the event spool, and the data dir itself.
"""

from __future__ import annotations

import stat

import pytest

from tests.api.webhook_receiver import wait_for
from tests.security.conftest import StartService, camera_yaml

pytestmark = pytest.mark.timeout(240)


def test_data_dir_store_and_evidence_have_no_group_or_other_permissions(start_service: StartService) -> None:
    svc = start_service([camera_yaml("yard-1", "north")])
    media = svc.data_dir / "media"
    wait_for(lambda: any(media.rglob("*.jpg")), timeout=150, interval=0.5)
    svc.stop()  # open incidents are closed: their clips and manifests are written too
    entries = [svc.data_dir, *svc.data_dir.rglob("*")]
    names = {p.name for p in entries}
    assert {"safewatch.db", "media"} <= names and any(p.suffix == ".jpg" for p in entries)
    modes = {str(p.relative_to(svc.data_dir)): stat.S_IMODE(p.stat().st_mode) for p in entries}
    assert {path: oct(mode) for path, mode in modes.items() if mode & 0o077} == {}
