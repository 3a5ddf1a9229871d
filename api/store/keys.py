"""API keys: random 256-bit keys, stored as sha256 (see api/auth.py for why not bcrypt), optionally site-scoped."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.store.models import ApiKey, utcnow

KEY_PREFIX = "sw_"
ADMIN = "admin"


class LastAdminKey(Exception):
    """Deleting this key would leave no admin key for all sites, and nobody could manage keys through the API."""


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(session: Session, *, role: str, name: str, sites: Iterable[str] | None = None) -> tuple[ApiKey, str]:
    """A new key row and the plaintext key (shown once, never stored). `sites`: None = every site."""
    plain = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(
        id=secrets.token_hex(8),
        name=name,
        role=role,
        key_sha256=hash_key(plain),
        prefix=plain[:8],
        created_at=utcnow(),
        sites=None if sites is None else sorted(set(sites)),
    )
    session.add(row)
    session.flush()
    return row, plain


def key_sites(row: ApiKey) -> frozenset[str] | None:
    """The key's scope: its sites, or None for every site."""
    return None if row.sites is None else frozenset(row.sites)


def find_key(session: Session, plain: str) -> ApiKey | None:
    return session.scalar(select(ApiKey).where(ApiKey.key_sha256 == hash_key(plain)))


def list_keys(session: Session) -> Sequence[ApiKey]:
    return session.scalars(select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)).all()


def delete_key(session: Session, key_id: str) -> bool:
    """Revoke `key_id` (False: no such key). Raises LastAdminKey for the last admin key for all sites.

    The admin keys for all sites are locked (`FOR UPDATE` on PostgreSQL; SQLite write transactions are serialised
    already), so two admins deleting each other at once cannot both succeed and leave none.
    """
    row = session.get(ApiKey, key_id)
    if row is None:
        return False
    if row.role == ADMIN and row.sites is None:
        admins = session.scalars(
            select(ApiKey.id).where(ApiKey.role == ADMIN, ApiKey.sites.is_(None)).with_for_update()
        ).all()
        if key_id not in admins:  # deleted by a concurrent transaction while we waited for the lock
            return False
        if len(admins) == 1:
            raise LastAdminKey(
                f"key {key_id!r} is the last admin key for all sites; create another admin key first "
                "(`safewatch keys create --role admin`)"
            )
    session.delete(row)
    return True
