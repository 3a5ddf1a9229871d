"""Retention's additions for the store's owner: ids deleted by age only (never for size), predicates asked only about
incidents due for deletion, and the directories of incidents whose records the store deleted."""

from __future__ import annotations

from pathlib import Path

from tests.vision.media.test_store import NOW, _make
from vision.media.config import RetentionConfig
from vision.media.retention import apply_retention, remove_incidents
from vision.media.store import MediaStore


def test_age_only_ids_go_by_age_but_never_for_size(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    _make(store, "2024-04-01", "cam", "unknown-old", 1000, 40)
    _make(store, "2024-05-01", "cam", "unknown-new", 1000, 3)
    _make(store, "2024-05-02", "cam", "closed-new", 1000, 2)
    asked: list[str] = []

    def protected(incident_id: str) -> bool:
        asked.append(incident_id)
        return False

    cfg = RetentionConfig(max_age_days=30, max_total_bytes=500)
    deleted = apply_retention(store, cfg, protected, age_only=lambda i: i.startswith("unknown"), now=NOW)
    assert [(d.incident_id, d.reason) for d in deleted] == [("unknown-old", "age"), ("closed-new", "size")]
    assert [i.incident_id for i in store.incidents()] == ["unknown-new"]  # over the cap, but not for size
    assert asked == ["unknown-old", "unknown-new", "closed-new"]  # every one was due: over the cap


def test_predicates_are_asked_only_about_candidates(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    _make(store, "2024-05-01", "cam", "young", 100, 2)
    asked: list[str] = []

    def protected(incident_id: str) -> bool:
        asked.append(incident_id)
        return False

    assert apply_retention(store, RetentionConfig(max_age_days=30), protected, now=NOW) == []
    assert asked == []


def test_remove_incidents_deletes_whatever_their_age(tmp_path: Path) -> None:
    store = MediaStore(tmp_path)
    _make(store, "2024-05-01", "cam", "gone", 300, 0)
    _make(store, "2024-05-01", "cam", "stays", 300, 0)
    dirs = [d for d in store.incidents() if d.incident_id == "gone"]
    deleted = remove_incidents(store, dirs, now=NOW)
    assert [(d.incident_id, d.reason, d.bytes) for d in deleted] == [("gone", "record", 300)]
    assert [i.incident_id for i in store.incidents()] == ["stays"]
    assert remove_incidents(store, dirs, now=NOW) == []  # already gone (another process sharing the root): no error
