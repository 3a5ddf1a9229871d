"""`recorded_evidence`: what the store recorded about each incident's manifest, read without changing anything."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from api.store.db import Store
from api.store.evidence import RecordedEvidence, StoreUnavailable, recorded_evidence
from api.store.incidents import apply_event
from tests.api.conftest import T0, make_event


def test_rows_with_evidence_and_the_asked_ids(db_url: str) -> None:
    store = Store(db_url)
    try:
        for incident, sha in (("inc-a", "a" * 64), ("inc-b", None), ("inc-c", None)):
            apply_event(store, make_event(incident, 0))
            closed = make_event(incident, 1, type="closed", ended_at=T0, evidence_sha256=sha)
            apply_event(store, closed)
    finally:
        store.dispose()
    got = recorded_evidence(db_url, ["inc-b", "inc-x"])
    assert got == {
        "inc-a": RecordedEvidence("inc-a", "gate-3", "closed", False, T0, "a" * 64),
        "inc-b": RecordedEvidence("inc-b", "gate-3", "closed", False, T0, None),  # asked for: known, no evidence
    }  # inc-c: no evidence and not asked for; inc-x: unknown


def test_a_missing_sqlite_file_is_not_created(tmp_path: Path) -> None:
    path = tmp_path / "data" / "safewatch.db"
    with pytest.raises(StoreUnavailable, match=r"safewatch\.db: no such database file$"):
        recorded_evidence(f"sqlite:///{path.as_posix()}")
    assert not path.exists() and not path.parent.exists()


def test_a_database_that_is_not_a_store(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE notes (x TEXT)")
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StoreUnavailable, match="not a safewatch store"):
        recorded_evidence(f"sqlite:///{path.as_posix()}")
    assert path.read_bytes() == before and not path.with_name("other.db-wal").exists()  # journal mode unchanged
