"""Evidence checkpoints: the store keeps the signed head of every evidence chain (migration 0005).

`record_checkpoints` (run by retention, in the process that owns the store) reads the last entry of each chain log
under the media root and stores it when the chain grew since its last checkpoint. The entry is stored as written,
signed by the process that wrote the chain, so the row itself proves what the head was, and a third party may keep
a copy of it. `recorded_checkpoints` reads them back for `safewatch evidence verify --database`, read-only like
`api/store/evidence.py`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, inspect, select

from api.store.db import Store
from api.store.evidence import read_only_connection
from api.store.models import EvidenceCheckpoint, utcnow
from api.store.outbox import enqueue_checkpoint
from vision.media.chain import CHAINS_DIR, entry_hash, read_tail

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    chain: str
    seq: int
    entry_sha256: str


def record_checkpoints(store: Store, media_root: Path) -> list[Checkpoint]:
    """A checkpoint of each chain under `media_root` whose head moved past its newest checkpoint."""
    heads = {}
    for path in sorted((media_root / CHAINS_DIR).glob("*.jsonl")):
        tail = read_tail(path)
        if tail is not None and tail.get("chain") == path.stem and isinstance(tail.get("seq"), int):
            heads[path.stem] = tail
    if not heads:
        return []
    made: list[Checkpoint] = []
    with store.session() as session:
        newest = dict(
            session.execute(
                select(EvidenceCheckpoint.chain, func.max(EvidenceCheckpoint.seq)).group_by(EvidenceCheckpoint.chain)
            ).all()
        )
        for chain, entry in heads.items():
            if entry["seq"] <= newest.get(chain, 0):
                continue
            cp = Checkpoint(chain, entry["seq"], entry_hash(entry))
            row = EvidenceCheckpoint(
                chain=chain, seq=cp.seq, entry_sha256=cp.entry_sha256, entry=entry, created_at=utcnow()
            )
            session.add(row)
            enqueue_checkpoint(session, row)  # webhook event `evidence.checkpoint`, same transaction (outbox)
            made.append(cp)
    for cp in made:
        log.info("evidence checkpoint: chain %s at seq %d (%s)", cp.chain, cp.seq, cp.entry_sha256)
    return made


def recorded_checkpoints(url: str) -> list[dict[str, Any]]:
    """Every checkpoint of the store at `url` as `{"at": iso time, "entry": the signed head entry}`, oldest first;
    none from a store older than migration 0005. Raises `StoreUnavailable`."""
    with read_only_connection(url) as conn:
        if not inspect(conn).has_table(EvidenceCheckpoint.__tablename__):
            return []
        rows = conn.execute(
            select(EvidenceCheckpoint.entry, EvidenceCheckpoint.created_at).order_by(EvidenceCheckpoint.id)
        ).all()
    return [{"at": _iso(r.created_at), "entry": dict(r.entry)} for r in rows]


def _iso(value: Any) -> str:
    return value.isoformat(timespec="seconds") if hasattr(value, "isoformat") else str(value)
