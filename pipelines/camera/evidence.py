"""`EvidenceRecorder`: snapshots, clips and the signed manifest for each incident of one camera.

Wired into `CameraPipeline` as its evidence hook:
- every analysed frame, the best evidence frame of each condition is kept (copied only when it improves);
- `opened` → annotated + original snapshot written before the event leaves, so the event carries `snapshot_url`;
  `updated` → the snapshot is re-rendered when a better frame arrived;
- clips are cut from the packet ring buffer by stream copy on the clip writer's thread (pre-roll before the start,
  post-roll after the end, `max_clip_s` windows for long incidents);
- `closed` is held back until its clips are written, then the manifest (sha256 of every file, each clip's start
  offset and duration, models, config hash, HMAC signature when a key is set) is written and the event leaves with
  `clip_url` and `evidence_sha256`.
Media that cannot be written (disk full) leaves the URL empty; the incident itself always goes out.

Camera health (pipelines/rules/health.py): a rule type in `clipless` (camera_offline: there is no new video) gets a
snapshot of the last good frame and no clip (`on_idle` offers that frame while no frame comes); a condition may show
another image than the frame in its snapshot (`images` of `on_frame`: camera_tamper's reference | current view).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from pipelines.config.camera import CameraConfig
from pipelines.events import EventType, IncidentEvent
from pipelines.incidents.manager import Incident, IncidentKey
from pipelines.rules.base import Violation
from vision.media.chain import EvidenceChain
from vision.media.clip import ClipResult
from vision.media.clip_plan import ClipPlanner, ClipWindow, clip_filename
from vision.media.clip_writer import ClipJob, ClipWriter
from vision.media.config import ClipConfig, SnapshotConfig
from vision.media.manifest import ClipEntry, build_manifest, write_manifest
from vision.media.packets import PacketWindowSource
from vision.media.results import WriteResult
from vision.media.snapshot import BestFrameSelector, write_snapshots
from vision.media.snapshot_detections import write_snapshot_detections
from vision.media.store import MediaStore
from vision.types import Frame, ImageArray

log = logging.getLogger(__name__)

UrlFor = Callable[[str, str, Path], str]  # (incident id, "snapshot" | "clip", file path) → link in the event


@dataclass(slots=True)
class _Record:
    incident_id: str
    key: IncidentKey
    directory: Path
    planner: ClipPlanner | None
    started_s: float
    last_seen_s: float
    rendered_conf: float = -1.0
    snapshot_url: str | None = None
    clip_url: str | None = None
    files: list[WriteResult] = field(default_factory=list)
    clips: list[Future[ClipResult]] = field(default_factory=list)
    held: IncidentEvent | None = None


class EvidenceRecorder:
    def __init__(
        self,
        camera: CameraConfig,
        store: MediaStore,
        *,
        ring: PacketWindowSource | None,
        clip_writer: ClipWriter | None,
        clip: ClipConfig | None = None,
        snapshot: SnapshotConfig | None = None,
        clock: Literal["media", "wall"] = "media",
        models: Mapping[str, str] | None = None,
        key: bytes | None = None,
        url_for: UrlFor | None = None,
        chain: EvidenceChain | None = None,
        clipless: Collection[str] = (),
    ) -> None:
        self.camera = camera
        self.store = store
        self.ring = ring
        self.writer = clip_writer if ring is not None else None
        self.clip_cfg = clip or ClipConfig()
        self.snap_cfg = snapshot or SnapshotConfig()
        self.clock = clock
        self.models = dict(models or {})
        self.key = key
        self.chain = chain  # writes the manifest into the evidence chain (signed, linked); None: a bare manifest
        self.url_for = url_for or self._relative
        self.clipless = frozenset(clipless)
        self._tz = ZoneInfo(camera.schedule.timezone) if camera.schedule is not None else None
        self._best: dict[IncidentKey, BestFrameSelector] = {}
        self._records: dict[str, _Record] = {}
        self._live: list[Incident] = []
        self._config_hash = camera.config_hash()

    # -- hook API ------------------------------------------------------------------------------------------------
    def on_frame(
        self,
        frame: Frame,
        violations: Sequence[Violation],
        live: Sequence[Incident],
        images: Mapping[IncidentKey, ImageArray] | None = None,
    ) -> None:
        """Every analysed frame: keep the best evidence frame per condition (or the image `images` gives for its
        key), and cut clip windows that are due."""
        now_s = self._now(frame)
        self._live = list(live)
        current = {v.key for v in violations} | {i.key for i in live}
        for key in [k for k in self._best if k not in current]:
            del self._best[key]
        self._offer(frame, violations, images or {})
        for inc in live:
            rec = self._records.get(inc.id)
            if rec is None:
                continue
            rec.last_seen_s = inc.last_seen_offset_s if self.clock == "media" else frame.wall_time
            if rec.planner is not None:
                self._submit(rec, rec.planner.poll(now_s))

    def on_idle(self, frame: Frame, violations: Sequence[Violation]) -> None:
        """A poll without a new frame: `frame` (the last good one) is the evidence of `violations` (camera_offline)."""
        self._offer(frame, violations, {})

    def _offer(self, frame: Frame, violations: Sequence[Violation], images: Mapping[IncidentKey, ImageArray]) -> None:
        for v in violations:
            sel = self._best.setdefault(v.key, BestFrameSelector())
            image = images.get(v.key, frame.image)
            sel.offer(image, v.evidence, v.confidence, pts=frame.pts, wall_time=frame.wall_time)

    def on_events(self, events: Sequence[IncidentEvent], frame: Frame | None) -> list[IncidentEvent]:
        """Attach evidence; returns the events to publish now (a `closed` waits for its clips: see `drain`)."""
        out: list[IncidentEvent] = []
        for event in events:
            if event.type is EventType.opened:
                out.append(self._opened(event, frame))
            elif event.type is EventType.updated:
                out.append(self._updated(event))
            else:
                held = self._closed(event)
                if held is not None:
                    out.append(held)
        return out

    def drain(self) -> list[IncidentEvent]:
        """Closed events whose clips are now written (manifest done), in closing order."""
        ready = []
        for rec in list(self._records.values()):
            if rec.held is not None and all(f.done() for f in rec.clips):
                ready.append(self._finalise(rec))
        return ready

    def close(self, timeout: float | None = None) -> list[IncidentEvent]:
        """Source ended or shutdown: write the clips with what the buffer holds and release every held event."""
        if self.writer is not None and self.ring is not None:
            self.writer.source_ended(self.ring)
        for rec in self._records.values():
            for fut in rec.clips:
                try:
                    fut.result(timeout=timeout)
                except TimeoutError:
                    log.warning("clip of incident %s not written in time", rec.incident_id)
        return [self._finalise(rec) for rec in list(self._records.values()) if rec.held is not None]

    # -- transitions ---------------------------------------------------------------------------------------------
    def _opened(self, event: IncidentEvent, frame: Frame | None) -> IncidentEvent:
        inc = next((i for i in self._live if i.id == event.id), None)
        key = inc.key if inc is not None else self._key_for(event)
        started_s = event.offset_s if inc is None else inc.started_offset_s
        if self.clock == "wall":
            started_s = event.started_at.timestamp()
        directory = self.store.incident_dir(self.camera.id, event.id, self._local(event.started_at))
        clips = self.writer is not None and event.rule not in self.clipless
        planner = ClipPlanner(started_s, self.clip_cfg) if clips else None
        rec = _Record(event.id, key, directory, planner, started_s, started_s)
        self._records[event.id] = rec
        rec.snapshot_url = self._snapshot(rec, event)
        if planner is not None:
            rec.clip_url = self.url_for(event.id, "clip", directory / clip_filename(0))
        return self._links(rec, event)

    def _updated(self, event: IncidentEvent) -> IncidentEvent:
        rec = self._records.get(event.id)
        if rec is None:
            return event
        sel = self._best.get(rec.key)
        if sel is not None and sel.best is not None and sel.best.confidence > rec.rendered_conf:
            rec.snapshot_url = self._snapshot(rec, event) or rec.snapshot_url
        return self._links(rec, event)

    def _closed(self, event: IncidentEvent) -> IncidentEvent | None:
        rec = self._records.get(event.id)
        if rec is None:
            return event
        if rec.planner is not None:
            self._submit(rec, rec.planner.close(rec.last_seen_s))
        rec.held = event
        return None

    def _finalise(self, rec: _Record) -> IncidentEvent:
        assert rec.held is not None
        written = [fut.result() for fut in rec.clips if fut.done()]
        rec.files.extend(c.file for c in written)
        held = rec.held
        manifest = build_manifest(
            incident_id=rec.incident_id,
            camera_id=self.camera.id,
            rule=held.rule,
            started_at=held.started_at,
            ended_at=held.ended_at,
            evidence_dir=rec.directory,
            files=rec.files,
            models=self.models,
            camera_config_sha256=self._config_hash,
            clips=[self._timing(rec, c) for c in written if not c.file.missing],
        )
        result = (
            self.chain.write_manifest(rec.directory, manifest)
            if self.chain is not None
            else write_manifest(rec.directory, manifest, key=self.key)
        )
        del self._records[rec.incident_id]
        clips = [f for f in rec.files if f.path.name.startswith("clip-") and not f.missing]
        rec.clip_url = self.url_for(rec.incident_id, "clip", clips[0].path) if clips else None
        return self._links(rec, held).model_copy(update={"evidence_sha256": result.sha256})

    @staticmethod
    def _timing(rec: _Record, clip: ClipResult) -> ClipEntry:
        """Where a clip sits in its incident: its first frame relative to the incident's start (both on the recorder's
        clock; negative in the pre-roll), and its length."""
        return ClipEntry(clip.file.path, round(clip.start_s - rec.started_s, 3), round(clip.duration_s, 3))

    @staticmethod
    def _links(rec: _Record, event: IncidentEvent) -> IncidentEvent:
        """Every event of an incident carries its evidence links (consumers may see any one of them first)."""
        return event.model_copy(update={"snapshot_url": rec.snapshot_url, "clip_url": rec.clip_url})

    # -- helpers -------------------------------------------------------------------------------------------------
    def _snapshot(self, rec: _Record, event: IncidentEvent) -> str | None:
        sel = self._best.get(rec.key)
        best = sel.best if sel is not None else None
        if best is None:
            log.warning("incident %s: no evidence frame for a snapshot", rec.incident_id)
            return None
        zone = self.camera.zone(event.zone).polygon if event.zone else None
        result = write_snapshots(
            best.image,
            best.detections,
            rec.directory,
            zone=zone,
            rule=event.rule,
            camera_name=self.camera.name,
            local_time=self._local(datetime.fromtimestamp(best.wall_time or event.updated_at.timestamp()).astimezone()),
            config=self.snap_cfg,
        )
        rec.rendered_conf = best.confidence
        boxes = write_snapshot_detections(
            rec.directory, result.raw, best, models=self.models, raw_max_side=self.snap_cfg.raw_max_side
        )  # the snapshot's detections as data (dataset export); re-written with the snapshot, like its two JPEGs
        rec.files = [f for f in rec.files if not f.path.name.startswith("snapshot")] + [*result.files, boxes]
        if result.annotated.missing:
            log.warning("incident %s: snapshot missing (%s)", rec.incident_id, result.annotated.reason)
            return None
        return self.url_for(rec.incident_id, "snapshot", result.annotated.path)

    def _submit(self, rec: _Record, windows: Sequence[ClipWindow]) -> None:
        if self.writer is None or self.ring is None:
            return
        for w in windows:
            job = ClipJob(self.ring, w.start_s, w.end_s, rec.directory / w.filename, self.clock, rec.incident_id)
            rec.clips.append(self.writer.submit(job))

    def _key_for(self, event: IncidentEvent) -> IncidentKey:
        for key in self._best:
            if key[1] == event.zone and key[0].endswith(event.rule):
                return key
        return ("", event.zone, None)

    def _relative(self, incident_id: str, kind: str, path: Path) -> str:
        """Default link: the file's path relative to the media root (the API serves it as
        /v1/incidents/{id}/snapshot.jpg or clip.mp4 and rewrites the link to that URL)."""
        return path.relative_to(self.store.root).as_posix()

    def _now(self, frame: Frame) -> float:
        return frame.pts if self.clock == "media" else frame.wall_time

    def _local(self, when: datetime) -> datetime:
        return when.astimezone(self._tz) if self._tz is not None else when.astimezone()
