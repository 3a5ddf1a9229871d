"""The retention runner of the process that owns the store (`api/retention.py`): one run prunes the outbox, deletes
old closed incidents with their evidence, and applies the evidence age and size limits, never to open, kept or live
incidents; evidence the store does not know yet goes by age only. The same runner serves `safewatch run`."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from api.retention import Retention
from api.service import EmbeddedService
from api.settings import Settings
from api.store.db import Store
from api.store.handling import Action, Actor, handle
from api.store.incidents import apply_event
from api.store.models import DeliveryStatus, Incident, IncidentEventRow, WebhookDelivery
from api.store.outbox import create_webhook
from tests.api.conftest import make_event, make_settings
from tests.vision.detect.helpers import built_default_models_dir
from vision.media.store import MediaStore

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
KB = 1000


@pytest.fixture
def settings(tmp_path: Path, sqlite_url: str) -> Settings:
    return make_settings(
        tmp_path, sqlite_url, retention_max_age_days=30, retention_max_bytes=10 * KB, retention_db_days=365
    )


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    s = Store(settings.database_url)
    yield s
    s.dispose()


def _incident(store: Store, incident_id: str, ended: datetime | None) -> None:
    started = (ended or NOW) - timedelta(minutes=1)
    apply_event(store, make_event(incident_id, 0, started_at=started))
    if ended is not None:
        apply_event(store, make_event(incident_id, 1, started_at=started, type="closed", ended_at=ended))


def _evidence(settings: Settings, incident_id: str, size: int, age_days: float) -> Path:
    """An incident directory holding one `size`-byte clip last written `age_days` before NOW."""
    directory = MediaStore(settings.media_dir).incident_dir("gate-3", incident_id, NOW)
    directory.mkdir(parents=True)
    clip = directory / "clip-000.mp4"
    clip.write_bytes(b"\0" * size)
    when = (NOW - timedelta(days=age_days)).timestamp()
    os.utime(clip, (when, when))
    return directory


def _ids(store: Store) -> set[str]:
    with store.read() as s:
        return set(s.scalars(select(Incident.id)))


def test_one_run_applies_every_limit_and_spares_open_kept_and_live(settings: Settings, store: Store) -> None:
    with store.session() as s:
        create_webhook(s, url="https://hooks.example/in", secret="s", fmt="json", filters={})
    _incident(store, "db-old", NOW - timedelta(days=400))  # past the database retention: rows and evidence go
    _incident(store, "db-kept", NOW - timedelta(days=400))  # the same, marked keep: stays
    _incident(store, "closed-aged", NOW - timedelta(days=40))  # its evidence is past the 30 days
    _incident(store, "open-aged", None)
    _incident(store, "closed-new", NOW - timedelta(hours=2))
    with store.session() as s:
        handle(s, "db-kept", Action.false_positive, actor=Actor("ann", key_id="k1", key_name="ann"), note=None)
        s.execute(
            update(WebhookDelivery).values(status=DeliveryStatus.delivered, delivered_at=NOW - timedelta(days=31))
        )
    dirs = {
        "db-old": _evidence(settings, "db-old", KB, 1),
        "db-kept": _evidence(settings, "db-kept", KB, 400),
        "closed-aged": _evidence(settings, "closed-aged", KB, 40),
        "open-aged": _evidence(settings, "open-aged", 3 * KB, 40),
        "live-aged": _evidence(settings, "live-aged", KB, 40),  # not stored yet, open in this process's camera
        "unknown-aged": _evidence(settings, "unknown-aged", KB, 31),  # not stored, nobody's: goes by age
        "closed-new": _evidence(settings, "closed-new", 2 * KB, 0.1),  # 13 kB left after the age pass: goes
        "unknown-new": _evidence(settings, "unknown-new", 4 * KB, 0.05),  # still 11 kB, but its event is on its way
    }

    report = Retention(settings, store, live=lambda: ["live-aged"]).run(NOW)

    assert report.outbox == 9  # the deliveries of all 9 events, delivered 31 days ago
    assert report.incidents == 1 and report.rows["incident_events"] == 2
    reasons = {d.incident_id: d.reason for d in report.evidence}
    assert reasons == {"db-old": "record", "closed-aged": "age", "unknown-aged": "age", "closed-new": "size"}
    assert report.evidence_bytes == KB + KB + KB + 2 * KB
    assert {i for i, d in dirs.items() if d.exists()} == {"db-kept", "open-aged", "live-aged", "unknown-new"}
    assert _ids(store) == {"db-kept", "closed-aged", "open-aged", "closed-new"}  # evidence age spares the rows

    again = Retention(settings, store, live=lambda: ["live-aged"]).run(NOW)
    assert (again.outbox, again.incidents, again.evidence) == (0, 0, [])


def test_the_thread_runs_until_stopped(tmp_path: Path, sqlite_url: str) -> None:
    settings = make_settings(tmp_path, sqlite_url, retention_interval_s=0.05)
    store = Store(settings.database_url)
    _incident(store, "ancient", datetime(2020, 1, 1, tzinfo=UTC))  # older than 365 days whenever this runs
    retention = Retention(settings, store)
    retention.start()
    try:
        _wait_for(lambda: "ancient" not in _ids(store), "the retention thread to delete the old incident")
    finally:
        retention.stop()
    store.dispose()


def test_the_embedded_service_runs_retention_with_its_cameras(tmp_path: Path, sqlite_url: str) -> None:
    (tmp_path / "cameras").mkdir()
    settings = make_settings(
        tmp_path, sqlite_url, retention_interval_s=0.05, webhook_dispatcher=False, models_dir=built_default_models_dir()
    )
    service = EmbeddedService(settings)
    assert service.retention.live == service.live_incidents and service.live_incidents() == []
    _incident(service.store, "ancient", datetime(2020, 1, 1, tzinfo=UTC))
    directory = _evidence(settings, "ancient", KB, 0)
    service.start()
    try:
        _wait_for(lambda: not directory.exists(), "the embedded service's retention to delete the evidence")
    finally:
        service.stop_cameras(drain_timeout=1)
    with service.store.read() as s:
        assert s.scalar(select(func.count()).select_from(IncidentEventRow)) == 0


def _wait_for(cond: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)
