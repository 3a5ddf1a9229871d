"""Realistic incidents for the service benchmark: generated, loaded into the store, and checked through the API."""

from __future__ import annotations

import random
import time
import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import insert

from api.store.db import Store
from api.store.incidents import apply_event
from api.store.models import Incident, IncidentEventRow
from pipelines.events import EventType, IncidentEvent, Severity

SITES = {"sip-plot-12": 0.4, "pudong-dc-3": 0.3, "wuxi-warehouse": 0.2, "hq-campus": 0.1}
CAMERAS_PER_SITE = 6
RULES: dict[str, tuple[int, Severity, str | None, list[str]]] = {  # weight, severity, zone, labels
    "no_helmet": (40, Severity.warning, "work_area", ["person"]),
    "intrusion": (20, Severity.warning, "perimeter", ["person"]),
    "loitering": (15, Severity.info, "gate", ["person"]),
    "exit_blocked": (12, Severity.critical, "fire_lane", ["car", "person"]),
    "ebike_indoor": (10, Severity.warning, "lobby", ["motorcycle"]),
    "smoke_fire": (3, Severity.critical, None, ["fire", "smoke"]),
}
OPEN_FRACTION = 0.02
DAYS = 30


def make_incident(rng: random.Random, now: datetime, *, started: datetime | None = None) -> list[IncidentEvent]:
    """One incident's events: `opened`, plus `closed` unless it is still open (or `started` is given: opened only)."""
    site = rng.choices(list(SITES), list(SITES.values()))[0]
    camera = f"{site}-cam-{rng.randrange(CAMERAS_PER_SITE) + 1}"
    rule = rng.choices(list(RULES), [w for w, *_ in RULES.values()])[0]
    _w, severity, zone, labels = RULES[rule]
    start = started or now - timedelta(seconds=rng.uniform(60, DAYS * 86400))
    incident_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    media = f"{camera}/{start:%Y-%m-%d}/{incident_id}"
    opened = IncidentEvent(
        id=incident_id,
        type=EventType.opened,
        camera_id=camera,
        site=site,
        rule=rule,
        zone=zone,
        severity=severity,
        started_at=start,
        updated_at=start,
        offset_s=round(rng.uniform(0, 86400), 2),
        track_ids=[rng.randrange(1, 5000)],
        labels=labels,
        confidence=round(rng.uniform(0.5, 0.98), 3),
        snapshot_url=f"{media}/snapshot.jpg",
        seq=0,
    )
    if started is not None or rng.random() < OPEN_FRACTION:
        return [opened]
    ended = min(start + timedelta(seconds=rng.uniform(5, 900)), now)
    closed = opened.model_copy(
        update={
            "type": EventType.closed,
            "seq": 1,
            "updated_at": ended,
            "ended_at": ended,
            "offset_s": round(opened.offset_s + (ended - start).total_seconds(), 2),
            "clip_url": f"{media}/clip-000.mp4",
            "evidence_sha256": f"{rng.getrandbits(256):064x}",
        }
    )
    return [opened, closed]


def incident_row(events: list[IncidentEvent]) -> dict[str, Any]:
    """The incidents row `apply_event` leaves after these events (see `_set_state` in api/store/incidents.py)."""
    last = events[-1]
    return {
        "id": last.id,
        "camera_id": last.camera_id,
        "site": last.site,
        "rule": last.rule,
        "zone": last.zone,
        "severity": last.severity.value,
        "status": "closed" if last.type == EventType.closed else "open",
        "handling": "new",
        "started_at": last.started_at,
        "updated_at": last.updated_at,
        "ended_at": last.ended_at,
        "last_seq": last.seq,
        "offset_s": last.offset_s,
        "labels": list(last.labels),
        "track_ids": list(last.track_ids),
        "confidence": last.confidence,
        "snapshot_path": last.snapshot_url or events[0].snapshot_url,
        "clip_path": last.clip_url,
        "evidence_sha256": last.evidence_sha256,
        "keep": False,
        "created_at": events[0].updated_at,
    }


def event_row(e: IncidentEvent) -> dict[str, Any]:
    return {
        "incident_id": e.id,
        "seq": e.seq,
        "type": e.type.value,
        "payload": e.model_dump(mode="json"),
        "received_at": e.updated_at,
    }


def load_data(store: Store, incidents: list[list[IncidentEvent]], sample: int) -> dict[str, Any]:
    """`sample` incidents through `apply_event` (timed), the rest by SQLAlchemy core bulk insert (timed)."""
    through_store = sorted((e for evs in incidents[:sample] for e in evs), key=lambda e: e.updated_at)
    t0 = time.perf_counter()
    for e in through_store:
        apply_event(store, e)
    apply_s = time.perf_counter() - t0
    rest = incidents[sample:]
    events = sorted((e for evs in rest for e in evs), key=lambda e: e.updated_at)
    t0 = time.perf_counter()
    with store.engine.begin() as conn:
        for i in range(0, len(rest), 5000):
            conn.execute(insert(Incident), [incident_row(evs) for evs in rest[i : i + 5000]])
        for i in range(0, len(events), 5000):
            conn.execute(insert(IncidentEventRow), [event_row(e) for e in events[i : i + 5000]])
    bulk_s = time.perf_counter() - t0
    return {
        "apply_events": len(through_store),
        "apply_s": apply_s,
        "bulk_incidents": len(rest),
        "bulk_events": len(events),
        "bulk_s": bulk_s,
        "open": sum(1 for evs in incidents if len(evs) == 1),
    }


def verify_sample(base: str, key: str, incidents: list[list[IncidentEvent]], sample: int) -> int:
    """Check incidents of both insert paths through `GET /v1/incidents/{id}`; raises on any mismatch."""
    rng = random.Random(7)
    picks = incidents[: min(sample, 10)] + rng.sample(incidents[sample:], 10)
    shapes: set[tuple[str, ...]] = set()
    with httpx.Client(base_url=base, headers={"X-API-Key": key}, timeout=30) as client:
        for evs in picks:
            resp = client.get(f"/v1/incidents/{evs[0].id}")
            resp.raise_for_status()
            got, last = resp.json(), evs[-1]
            want = {
                "site": last.site,
                "camera_id": last.camera_id,
                "rule": last.rule,
                "status": "closed" if len(evs) == 2 else "open",
                "last_seq": last.seq,
                "started_at": last.started_at,
                "ended_at": last.ended_at,
                "clip": len(evs) == 2,
                "events": [e.seq for e in evs],
            }
            seen = {k: got[k] for k in ("site", "camera_id", "rule", "status", "last_seq")}
            seen["started_at"] = datetime.fromisoformat(got["started_at"])
            seen["ended_at"] = datetime.fromisoformat(got["ended_at"]) if got["ended_at"] else None
            seen["clip"] = got["clip_url"] is not None
            seen["events"] = [e["seq"] for e in got["events"]]
            if seen != want or got["snapshot_url"] is None:
                raise RuntimeError(f"incident {evs[0].id}: API returned {seen}, events say {want}")
            shapes.add(tuple(sorted(got)))
    if len(shapes) != 1:
        raise RuntimeError(f"apply_event and bulk-inserted incidents differ in shape: {shapes}")
    return len(picks)
