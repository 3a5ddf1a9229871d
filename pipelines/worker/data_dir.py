"""The data directory is private to the service's user: the store (webhook secrets, key hashes), evidence of people
at work and the event spools live there.

A composition root calls `prepare_data_dir` first, before anything writes: the process umask becomes 0o077, so every
file and directory this process creates (SQLite, snapshots, clips, spool, camera YAMLs) has no group or other
permissions, whatever library creates it. A private group (0o027) would let a shared group read evidence and secrets;
a deployment that needs another user to read the media (a web server) grants it explicitly, with an ACL.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger(__name__)

PRIVATE_UMASK = 0o077


def prepare_data_dir(data_dir: Path) -> None:
    """Set the private umask and create `data_dir` (0700). An existing, wider directory is left as it is, with a
    warning: it may be shared on purpose, and tightening it is the operator's call."""
    os.umask(PRIVATE_UMASK)
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    mode = stat.S_IMODE(data_dir.stat().st_mode)
    if mode & 0o077:
        log.warning(
            "data dir %s is accessible to group/others (mode %o): run `chmod -R go= %s` unless it is shared on purpose",
            data_dir,
            mode,
            data_dir,
        )
