"""A store of real incidents with real evidence, for the dataset export tests.

The vtest replay (tests/pipelines/e2e/harness.py: the whole pipeline with the real ONNX detector, tracker, rules and
evidence recorder, cached per session) is applied event by event to a real store by the consumer's `apply_event`.
Two changes make the filters testable, neither touches the evidence: the incidents that started in the second half
of the clip are stored as a second camera (`SECOND_CAMERA` on `SECOND_SITE`: camera id and site rewritten in their
events, as if another camera had sent them), and some incidents are handled through `handle` as operators would:
`FALSE_POSITIVES` marked false positive, one acknowledged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from api.store.db import Store
from api.store.handling import Action, Actor, handle
from api.store.incidents import apply_event
from pipelines.events import EventType, IncidentEvent
from tests.pipelines.e2e.harness import ReplayResult
from vision.media.snapshot import RAW_NAME
from vision.media.snapshot_detections import DETECTIONS_NAME, SnapshotDetections, read_snapshot_detections

SECOND_CAMERA = "e2e-vtest-b"
SECOND_SITE = "e2e-b"
SPLIT_OFFSET_S = 40.0  # incidents opened after this offset belong to the second camera
FALSE_POSITIVES = 2  # the first intrusion incidents of the first camera
OPERATOR = Actor(name="test operator", key_id=None, key_name=None)


@dataclass(frozen=True)
class FieldIncident:
    id: str
    camera_id: str
    site: str
    rule: str
    handling: str
    started_at: datetime
    folder: Path  # its evidence folder

    @property
    def raw(self) -> Path:
        return self.folder / RAW_NAME

    @property
    def annotated(self) -> Path:
        return self.folder / "snapshot.jpg"

    def detections(self) -> SnapshotDetections:
        return read_snapshot_detections(self.folder / DETECTIONS_NAME)


@dataclass(frozen=True)
class FieldStore:
    url: str
    media_root: Path
    incidents: dict[str, FieldIncident]

    def ids(self, **match: str) -> set[str]:
        """Ids of the incidents whose fields equal `match` (e.g. camera_id=…, handling=…)."""
        return {i.id for i in self.incidents.values() if all(getattr(i, k) == v for k, v in match.items())}


def _as_stored(event: IncidentEvent, second: set[str]) -> IncidentEvent:
    if event.id not in second:
        return event
    return event.model_copy(update={"camera_id": SECOND_CAMERA, "site": SECOND_SITE})


def fill_store(url: str, vtest: ReplayResult, media_root: Path) -> FieldStore:
    """Apply the replay's events to the store at `url` (migrated here) and handle some incidents; `media_root` is the
    replay's evidence (or a copy of it)."""
    opened = [e for e in vtest.events if e.type is EventType.opened]
    second = {e.id for e in opened if e.offset_s > SPLIT_OFFSET_S}
    intrusions = sorted((e for e in opened if e.rule == "intrusion" and e.id not in second), key=lambda e: e.offset_s)
    false_positives = [e.id for e in intrusions[:FALSE_POSITIVES]]
    acknowledged = intrusions[FALSE_POSITIVES].id
    store = Store(url)
    try:
        for event in vtest.events:
            assert apply_event(store, _as_stored(event, second)).applied
        with store.session() as session:
            for incident_id in false_positives:
                handle(session, incident_id, Action.false_positive, actor=OPERATOR, note="shadow, not a person")
            handle(session, acknowledged, Action.ack, actor=OPERATOR, note=None)
    finally:
        store.dispose()
    incidents = {}
    for e in opened:
        assert e.snapshot_url is not None, "every incident of the replay has a snapshot"
        stored = _as_stored(e, second)
        handling = "false_positive" if e.id in false_positives else "acknowledged" if e.id == acknowledged else "new"
        folder = (media_root / e.snapshot_url).parent
        incidents[e.id] = FieldIncident(e.id, stored.camera_id, stored.site, e.rule, handling, e.started_at, folder)
    return FieldStore(url, media_root, incidents)
