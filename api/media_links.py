"""Signed, expiring media links: evidence that opens in a phone browser without an API key.

A link carries `?exp=<unix seconds>&sig=<base64url HMAC-SHA256(key, "safewatch-media-v1|<incident id>|<exp>")>`.
The signature is scoped to one incident: it opens that incident's media routes (`snapshot.jpg`, `clip.mp4`,
`clips/{i}.mp4`) and its mobile page (`/ui/i/{id}`), nothing else; every other route ignores it and still needs a
key. `exp` is rounded up to a step of at most an hour (1/24 of the lifetime), so the links of one incident stay the
same for a while and browsers can cache what they load; a link lives between `ttl_s` and `ttl_s` + one step.

The key is `SAFEWATCH_LINK_KEY`, or else 32 random bytes kept in `<data_dir>/link.key` (created 0600, atomically, on
first use, and read back by every later process on that data dir). It is never logged. A signed link outlives the
key that fetched it (as any shared link does); rotating the key revokes every link.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import math
import os
import secrets
import tempfile
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from api.settings import Settings

log = logging.getLogger(__name__)

KEY_FILE = "link.key"
_DOMAIN = "safewatch-media-v1"
MAX_SIG_CHARS = 64  # base64url of 32 bytes is 43


class LinkRefused(Exception):
    """A signed link that does not open: expired, or a signature that does not match (the message says which)."""


@dataclass(frozen=True)
class LinkSigner:
    key: bytes = field(repr=False)
    ttl_s: int

    def signature(self, incident_id: str, exp: int) -> str:
        mac = hmac.new(self.key, f"{_DOMAIN}|{incident_id}|{exp}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")

    def expiry(self, now: float) -> int:
        step = max(1, min(3600, self.ttl_s // 24))
        return math.ceil((now + self.ttl_s) / step) * step

    def query(self, incident_id: str, now: float | None = None) -> str:
        """`exp=…&sig=…` for a new link to `incident_id`'s media."""
        exp = self.expiry(time.time() if now is None else now)
        return f"exp={exp}&sig={self.signature(incident_id, exp)}"

    def check(self, incident_id: str, exp: int | None, sig: str | None, now: float | None = None) -> None:
        """Raise `LinkRefused` unless `exp`/`sig` are a valid, unexpired signature for `incident_id`."""
        if exp is None or not sig:
            raise LinkRefused("a signed link needs both exp and sig")
        if not hmac.compare_digest(self.signature(incident_id, exp).encode(), sig.encode("utf-8", "replace")):
            raise LinkRefused("invalid link signature")
        if exp < (time.time() if now is None else now):
            raise LinkRefused("this link has expired")


def link_signer(settings: Settings) -> LinkSigner:
    """The signer of this deployment: `settings.link_key`, or the key file in the data dir."""
    configured = settings.link_key.get_secret_value() if settings.link_key is not None else ""
    key = configured.encode("utf-8") if configured else _stored_key(settings.data_dir.resolve())
    return LinkSigner(key, settings.link_ttl_s)


@lru_cache(maxsize=8)
def _stored_key(data_dir: Path) -> bytes:
    """The random key in `data_dir/link.key`, created (0600) when missing; a pure function of the file, so cached."""
    path = data_dir / KEY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=data_dir, prefix=".link-key-")  # 0600 whatever the umask
        try:
            with os.fdopen(fd, "w", encoding="ascii") as out:
                out.write(secrets.token_hex(32) + "\n")
            os.link(tmp, path)  # atomic, and never replaces a key another process made first
            log.info("created a signing key for media links in %s", path)
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    text = path.read_text(encoding="ascii").strip()
    if len(text) < 64:
        raise RuntimeError(f"{path} holds no usable link key (64 hex digits); delete it to make a new one")
    return text.encode("ascii")
