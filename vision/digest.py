"""Content digests of files, shared by the model registry (`vision.detect`) and the evidence writers (`vision.media`).

It sits at the top of `vision/` because neither of those packages imports the other.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks so a large model or clip never sits in memory whole."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def stable_fraction(text: str) -> float:
    """A fraction in [0, 1) fixed by `text`: the first 64 bits of its UTF-8 sha256 over 2**64 (the same on every
    machine and run, unlike `hash()`), for deterministic splits and per-id phases."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big") / 2**64
