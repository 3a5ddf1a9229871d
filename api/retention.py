"""Retention, run by the process that owns the store (`safewatch run`, `safewatch api`): database rows and evidence.

Every `retention_interval_s` (the first run after min(30 s, the interval)), one thread:

1. prunes the webhook outbox: delivered and dead deliveries older than `retention_outbox_days`;
2. deletes closed incidents that ended more than `retention_db_days` ago and are not marked keep, with their events,
   handling actions, outbox rows and evidence directory (`api/store/retention.py`, in short batches);
3. deletes evidence (`vision/media/retention.py`) older than `retention_max_age_days`, then the oldest until the
   media root holds at most `retention_max_bytes`; never that of open incidents, of incidents marked keep or of
   incidents live in this process's cameras (asked of the store right before each delete). Evidence of an incident
   the store does not know yet (its `opened` event is still on its way from a worker, spooled while Redis is down)
   goes by age only, never for size. With an evidence chain, each deletion is first recorded in it as a signed
   tombstone (`vision/media/chain.py`);
4. copies the head of every evidence chain under the media root to the store as a checkpoint when it grew
   (`api/store/checkpoints.py`).

Workers never delete evidence: in distributed mode they write it to the media root they share with the API
(`SAFEWATCH_MEDIA_ROOT`, a shared volume), and the API, which knows which incidents are open or kept, deletes it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from api.settings import Settings
from api.store.checkpoints import record_checkpoints
from api.store.db import Store
from api.store.models import Incident, IncidentStatus
from api.store.retention import prune_outbox, purge_incidents
from vision.media.chain import EvidenceChain
from vision.media.config import RetentionConfig
from vision.media.retention import BeforeDelete, Deleted, Reason, apply_retention, remove_incidents
from vision.media.store import IncidentDir, MediaStore

log = logging.getLogger(__name__)

FIRST_RUN_S = 30.0  # not during start-up: the cameras and the consumer come first


@dataclass
class RetentionReport:
    """One run: outbox rows pruned, incidents deleted (with rows per table) and evidence directories deleted."""

    outbox: int = 0
    incidents: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    evidence: list[Deleted] = field(default_factory=list)
    checkpoints: int = 0  # evidence chains whose head was checkpointed

    @property
    def evidence_bytes(self) -> int:
        return sum(d.bytes for d in self.evidence)


class Retention:
    """`run()` once, or `start()` a thread that runs it every `settings.retention_interval_s` until `stop()`.

    `live()`: ids of incidents open in this process's cameras (the embedded service), protected like open ones.
    """

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        live: Callable[[], Iterable[str]] | None = None,
        chain: EvidenceChain | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.media = MediaStore(settings.media_dir)
        self.live = live
        self.chain = chain  # each evidence deletion is first recorded there as a signed tombstone
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="retention", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread (a run in progress ends after its current batch)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        delay = min(FIRST_RUN_S, self.settings.retention_interval_s)
        while not self._stop.wait(delay):
            delay = self.settings.retention_interval_s
            try:
                self.run()
            except Exception:  # the database or the disk failed: try again next time
                log.exception("retention failed")

    def run(self, now: datetime | None = None) -> RetentionReport:
        """One retention run at `now` (default: the current time); logs what it deleted."""
        now = datetime.now(UTC) if now is None else now
        s = self.settings
        report = RetentionReport()
        report.outbox = prune_outbox(self.store, now - timedelta(days=s.retention_outbox_days), stop=self._stop)
        evidence = _RecordEvidence(self.media, now.timestamp(), self._tombstone if self.chain is not None else None)
        purged = purge_incidents(
            self.store, now - timedelta(days=s.retention_db_days), on_batch=evidence.remove, stop=self._stop
        )
        report.incidents = purged.rows.get("incidents", 0)
        report.rows = dict(purged.rows)
        report.evidence = evidence.deleted
        if s.retention_max_age_days is not None or s.retention_max_bytes is not None:
            report.evidence += self._evidence(now)
        report.checkpoints = len(record_checkpoints(self.store, self.media.root))
        _log(report, s)
        return report

    def _evidence(self, now: datetime) -> list[Deleted]:
        s = self.settings
        cfg = RetentionConfig(max_age_days=s.retention_max_age_days, max_total_bytes=s.retention_max_bytes)
        live = frozenset(self.live()) if self.live is not None else frozenset()

        def protected(incident_id: str) -> bool:
            if incident_id in live:
                return True
            state = self._state(incident_id)
            return state is not None and (state[0] == IncidentStatus.open or state[1])

        def unknown(incident_id: str) -> bool:
            return self._state(incident_id) is None

        before = self._tombstone if self.chain is not None else None
        return apply_retention(self.media, cfg, protected, age_only=unknown, now=now.timestamp(), before_delete=before)

    def _tombstone(self, inc: IncidentDir, reason: Reason, size: int) -> None:
        assert self.chain is not None
        self.chain.tombstone(inc.path, incident_id=inc.incident_id, camera_id=inc.camera_id, reason=reason, size=size)

    def _state(self, incident_id: str) -> tuple[str, bool] | None:
        """The incident's (status, keep) as stored now, or None when the store does not know it."""
        with self.store.read() as session:
            row = session.execute(select(Incident.status, Incident.keep).where(Incident.id == incident_id)).first()
        return (str(row[0]), bool(row[1])) if row is not None else None


class _RecordEvidence:
    """Deletes the evidence directories of incidents whose records a purge batch deleted (one media scan per run)."""

    def __init__(self, media: MediaStore, now: float, before_delete: BeforeDelete | None) -> None:
        self.media = media
        self.now = now
        self.before_delete = before_delete
        self.deleted: list[Deleted] = []
        self._dirs: dict[str, IncidentDir] | None = None

    def remove(self, incident_ids: Sequence[str]) -> None:
        if self._dirs is None:
            self._dirs = {d.incident_id: d for d in self.media.incidents()}
        dirs = [self._dirs[i] for i in incident_ids if i in self._dirs]
        self.deleted += remove_incidents(self.media, dirs, now=self.now, before_delete=self.before_delete)


def _log(report: RetentionReport, settings: Settings) -> None:
    if report.outbox:
        log.info(
            "retention pruned %d webhook deliveries older than %d days", report.outbox, settings.retention_outbox_days
        )
    if report.incidents:
        related = ", ".join(f"{n} {table}" for table, n in sorted(report.rows.items()) if table != "incidents")
        log.info(
            "retention deleted %d closed incidents older than %g days (%s)",
            report.incidents,
            settings.retention_db_days,
            related or "no related rows",
        )
    if report.evidence:
        by_reason: dict[str, int] = {}
        for d in report.evidence:
            by_reason[d.reason] = by_reason.get(d.reason, 0) + 1
        reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(by_reason.items()))
        log.info(
            "retention deleted the evidence of %d incidents (%d bytes; by %s)",
            len(report.evidence),
            report.evidence_bytes,
            reasons,
        )
