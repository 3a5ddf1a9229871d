"""API keys: random 256-bit keys, stored as sha256 (see api/auth.py for why not bcrypt)."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from api.store.models import ApiKey, utcnow

KEY_PREFIX = "sw_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(session: Session, *, role: str, name: str) -> tuple[ApiKey, str]:
    """A new key row and the plaintext key (shown once, never stored)."""
    plain = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(
        id=secrets.token_hex(8), name=name, role=role, key_sha256=hash_key(plain), prefix=plain[:8], created_at=utcnow()
    )
    session.add(row)
    session.flush()
    return row, plain


def find_key(session: Session, plain: str) -> ApiKey | None:
    return session.scalar(select(ApiKey).where(ApiKey.key_sha256 == hash_key(plain)))


def list_keys(session: Session) -> Sequence[ApiKey]:
    return session.scalars(select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)).all()


def delete_key(session: Session, key_id: str) -> bool:
    row = session.get(ApiKey, key_id)
    if row is None:
        return False
    session.delete(row)
    return True
