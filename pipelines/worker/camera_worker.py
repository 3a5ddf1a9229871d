"""`CameraWorker`: runs the pipelines of many cameras in one process and keeps them in line with the camera configs.

Each running camera has its own thread (decode and ONNX Runtime release the GIL). Every `poll_s` the worker
reconciles with its `ConfigSource` (pipelines/config/source.py): new cameras start, changed ones restart with the
new config, removed or disabled ones stop (their open incidents are closed). A file that stops validating leaves the
last good config running and logs the problems. A camera thread that dies is restarted with back-off, like a
watchdog; a camera whose rules cannot be served (missing model) is reported and retried when the models or the
config change.

Embedded mode (`safewatch run`): the source is the config directory and the worker runs every enabled camera.

Distributed mode (`safewatch worker`, `distributed=Distributed(leases, state)`): the configs come from Redis and the
worker runs only the cameras it holds a lease on (pipelines/distributed/leases.py: claim up to a fair share, renew,
hand over
extras). A camera stops in one of three ways:
- *finish* (removed, disabled, config changed): open incidents are closed, as in embedded mode;
- *handover* (rebalancing, clean shutdown): incidents stay open; the evidence recorder is flushed and the incident
  state saved (pipelines/distributed/incident_state.py) before the lease is released, so the next owner continues them;
- *abandon* (lease lost): nothing more is published; the new owner has the state.
The incident state of each camera is saved to Redis on every event and about once a second while it changes, and is
restored when a camera starts, so a worker killed with `kill -9` costs at most the lease TTL of observation and
never a duplicate `opened`.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import redis

from pipelines.camera.assemble import CameraRuntime, EvidenceOptions, PipelineConfigError, build_runtime
from pipelines.camera.pipeline import CameraPipeline, EventSink
from pipelines.config.camera import CameraConfig
from pipelines.config.source import ConfigSource, DirConfigSource
from pipelines.distributed.incident_state import IncidentStateStore, StateSaver, restore_grace
from pipelines.distributed.leases import LeaseManager, WorkerLoad
from pipelines.events import IncidentEvent
from vision.detect.batcher import BatcherPool
from vision.detect.errors import ModelError
from vision.detect.registry import ModelRegistry
from vision.media.clip_writer import ClipWriter
from vision.sources import EndOfStream, SourceError
from vision.types import Frame

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CameraStatus:
    camera_id: str
    state: str
    fps: float
    lag_s: float
    frames: int
    dropped: int
    reconnects: int
    error: str | None


@dataclass(frozen=True)
class Distributed:
    """What a worker needs in distributed mode: its leases and where incident states live."""

    leases: LeaseManager
    state: IncidentStateStore


class Exit(StrEnum):
    finish = "finish"
    handover = "handover"
    abandon = "abandon"


@dataclass
class _Running:
    config: CameraConfig
    digest: str
    stop: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None
    runtime: CameraRuntime | None = None
    error: str | None = None
    restarts: int = 0
    next_try: float = 0.0
    finished: bool = False  # a file played once to its end: not restarted
    exit: Exit = Exit.finish


class CameraWorker:
    def __init__(
        self,
        config_dir: Path | ConfigSource,
        registry: ModelRegistry,
        sinks: Sequence[EventSink],
        *,
        evidence: EvidenceOptions | None = None,
        realtime_files: bool = True,
        loop_files: bool = True,
        poll_s: float = 2.0,
        on_inference: Callable[[str, float], None] | None = None,
        worker_id: str | None = None,
        distributed: Distributed | None = None,
        batching: BatcherPool | None = None,
    ) -> None:
        self.source: ConfigSource = DirConfigSource(config_dir) if isinstance(config_dir, Path) else config_dir
        self.config_dir = config_dir if isinstance(config_dir, Path) else None
        self.registry = registry
        self.sinks = list(sinks)
        self.evidence = evidence
        self.realtime_files = realtime_files
        self.loop_files = loop_files
        self.poll_s = poll_s
        self.on_inference = on_inference
        self.distributed = distributed
        self.batching = batching  # opt-in cross-camera batching (vision.detect.batcher); closed by `stop`
        default_id = distributed.leases.id if distributed else f"{socket.gethostname()}-{os.getpid()}"
        self.id = worker_id or default_id
        self.host = socket.gethostname()
        self.clip_writer = ClipWriter() if evidence is not None else None
        self._cameras: dict[str, _Running] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if distributed is not None:
            distributed.leases.bind(load=self.load, on_lost=self._lost)

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def start(self) -> None:
        if self.distributed is not None:
            self.distributed.leases.start()
        self.reconcile()
        self._thread = threading.Thread(target=self._watch, name="camera-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 15.0) -> None:
        """Stop every camera. Embedded: open incidents are closed and their clips flushed before this returns.
        Distributed: cameras are handed over (incidents stay open, state saved) and their leases released."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        with self._lock:
            running = list(self._cameras.values())
            self._cameras.clear()
        how = Exit.handover if self.distributed is not None else Exit.finish
        for r in running:
            r.exit = how
            r.stop.set()
        for r in running:
            self._halt(r, how, timeout)
        if self.distributed is not None:
            self.distributed.leases.stop(release=True)
        if self.clip_writer is not None:
            self.clip_writer.close(timeout)
        if self.batching is not None:
            self.batching.close()

    # -- reconciliation ----------------------------------------------------------------------------------------
    def reconcile(self) -> None:
        """Bring the running cameras in line with the configs (and, distributed, the leases); every `poll_s`."""
        wanted = self.source.cameras()
        if self.distributed is not None:
            wanted = self._lease_round(wanted, self.distributed.leases)
        with self._lock:
            current = dict(self._cameras)
        for cam_id, r in current.items():
            new = wanted.get(cam_id)
            if new is None or new.config_hash() != r.digest:
                log.info("camera %s: %s", cam_id, "removed or disabled" if new is None else "config changed")
                self._drop(cam_id, r, Exit.finish)
        for cam_id, cfg in wanted.items():
            with self._lock:
                running = self._cameras.get(cam_id)
            if running is None:
                self._launch(cfg)
            elif not running.finished and (running.thread is None or not running.thread.is_alive()):
                self._relaunch(running)

    def _lease_round(self, configs: dict[str, CameraConfig], leases: LeaseManager) -> dict[str, CameraConfig]:
        """Stop what is lost, removed or handed over; claim up to the fair share; returns the cameras to run."""
        with self._lock:
            current = dict(self._cameras)
        held = leases.held()
        for cam_id, r in current.items():
            if cam_id not in held:
                self._drop(cam_id, r, Exit.abandon)
            elif cam_id not in configs:
                log.info("camera %s: removed or disabled", cam_id)
                self._drop(cam_id, r, Exit.finish)
                assert self.distributed is not None
                self.distributed.state.delete(cam_id, leases.id)
                leases.release(cam_id)
        for cam_id in held - set(configs) - set(current):
            leases.release(cam_id)
        plan = leases.plan(configs)
        for cam_id in plan.release:
            log.info("camera %s: handing over (share %d)", cam_id, plan.share)
            with self._lock:
                extra = self._cameras.get(cam_id)
            if extra is not None:
                self._drop(cam_id, extra, Exit.handover)
            leases.release(cam_id)
        return {cam_id: configs[cam_id] for cam_id in sorted(plan.owned - set(plan.release))}

    def _drop(self, cam_id: str, r: _Running, how: Exit) -> None:
        with self._lock:
            if self._cameras.get(cam_id) is r:
                del self._cameras[cam_id]
        self._halt(r, how)

    def _launch(self, cfg: CameraConfig) -> None:
        r = _Running(cfg, cfg.config_hash())
        with self._lock:
            self._cameras[cfg.id] = r
        self._relaunch(r)

    def _relaunch(self, r: _Running) -> None:
        if r.restarts and time.monotonic() < r.next_try:
            return
        r.stop = threading.Event()
        r.thread = threading.Thread(target=self._run_camera, args=(r,), name=f"camera-{r.config.id}", daemon=True)
        r.thread.start()

    def _run_camera(self, r: _Running) -> None:
        saver: StateSaver | None = None
        try:
            if self.distributed is not None:
                saver = StateSaver(self.distributed.state, r.config.id, self.id)
            r.runtime = build_runtime(
                r.config,
                self.registry,
                sinks=[saver, *self.sinks] if saver is not None else self.sinks,
                realtime=self.realtime_files,
                loop=self.loop_files,
                evidence=self.evidence,
                clip_writer=self.clip_writer,
                on_inference=self.on_inference,
                batching=self.batching,
            )
            r.error = None
            if saver is not None:
                self._restore(r.config, r.runtime.pipeline, saver)
            r.runtime.source.open()
            if r.runtime.record is not None:
                r.runtime.record.open()
            if saver is None:
                r.runtime.pipeline.run(r.runtime.source, r.stop)
            else:
                self._drive(r, r.runtime, saver)
            r.finished = not r.runtime.source.live
        except (PipelineConfigError, ModelError) as exc:
            r.error = str(exc)
            log.error("camera %s cannot run: %s", r.config.id, exc)
        except SourceError as exc:
            r.error = str(exc)
            log.error("camera %s source failed: %s", r.config.id, exc)
        except Exception as exc:  # the watchdog: one camera's bug must not take the worker down
            r.error = f"{type(exc).__name__}: {exc}"
            log.exception("camera %s crashed", r.config.id)
        finally:
            if r.runtime is not None:
                r.runtime.close()
            if not r.stop.is_set() and not r.finished:
                r.restarts += 1
                r.next_try = time.monotonic() + min(60.0, 2.0 ** min(r.restarts, 6))

    def _restore(self, cfg: CameraConfig, pipeline: CameraPipeline, saver: StateSaver) -> None:
        assert self.distributed is not None
        saver.bind(pipeline.incidents)
        state = self.distributed.state.load(cfg.id)
        if state is not None and (state.incidents or state.cooldowns):
            pipeline.incidents.restore_state(state, grace_seconds=restore_grace(cfg))
            log.info("camera %s: continuing %d incident(s) from the previous owner", cfg.id, len(state.incidents))

    def _drive(self, r: _Running, rt: CameraRuntime, saver: StateSaver) -> None:
        """The distributed frame loop: like `CameraPipeline.run`, but the way out depends on `r.exit`."""
        last: Frame | None = None
        while not r.stop.is_set():
            try:
                frame = rt.source.read(timeout=0.5)
            except EndOfStream:
                break
            if frame is not None:
                rt.pipeline.process(frame)
                saver.tick()
                last = frame
        if r.exit is Exit.finish:
            rt.pipeline.finish(last)
        elif r.exit is Exit.handover:
            if rt.pipeline.evidence is not None:
                _publish(rt.pipeline, rt.pipeline.evidence.close(15.0))
            if self.distributed is not None:  # right after a Redis outage the lease may still need re-taking
                try:
                    self.distributed.leases.renew()
                except redis.RedisError as exc:
                    log.warning("camera %s: lease not renewed before the hand-over: %s", r.config.id, exc)
            saver.save(force=True)

    def _halt(self, r: _Running, how: Exit = Exit.finish, timeout: float = 15.0) -> None:
        r.exit = how
        r.stop.set()
        if r.runtime is not None:
            r.runtime.source.close()
        if r.thread is not None:
            r.thread.join(timeout)

    def _lost(self, camera_id: str) -> None:
        """Renewal thread: the lease is gone (another worker may run the camera): stop at once, publish nothing."""
        with self._lock:
            r = self._cameras.get(camera_id)
        if r is not None:
            r.exit = Exit.abandon
            r.stop.set()

    def _watch(self) -> None:
        failing = False
        while not self._stop.wait(self.poll_s):
            try:
                self.reconcile()
                failing = False
            except redis.RedisError as exc:  # distributed mode, Redis away: keep running what runs, say it once
                if not failing:
                    log.warning("camera configs unavailable (%s); running cameras continue", exc)
                failing = True
            except Exception:
                log.exception("config reconcile failed")

    # -- status ------------------------------------------------------------------------------------------------
    def runtimes(self) -> list[CameraRuntime]:
        with self._lock:
            return [r.runtime for r in self._cameras.values() if r.runtime is not None]

    def status(self) -> list[CameraStatus]:
        with self._lock:
            running = list(self._cameras.values())
        out = []
        now = time.time()
        for r in running:
            rt = r.runtime
            if rt is None:
                out.append(
                    CameraStatus(r.config.id, "starting" if r.error is None else "error", 0, 0, 0, 0, 0, r.error)
                )
                continue
            st, src = rt.pipeline.stats, rt.source.stats
            lag = max(0.0, now - st.last_wall) if st.last_wall else 0.0
            state = rt.source.state.value if r.error is None else "error"
            out.append(
                CameraStatus(r.config.id, state, st.fps(), lag, st.frames, src.frames_dropped, src.reconnects, r.error)
            )
        return out

    def load(self) -> WorkerLoad:
        """The heartbeat summary: running cameras, total analysed fps, worst lag."""
        status = self.status()
        return WorkerLoad(
            cameras=[s.camera_id for s in status],
            fps=sum(s.fps for s in status),
            lag_s=max((s.lag_s for s in status), default=0.0),
        )


def _publish(pipeline: CameraPipeline, events: Iterable[IncidentEvent]) -> None:
    """Send events to the pipeline's sinks, isolated like `CameraPipeline` does."""
    for event in events:
        for sink in pipeline.sinks:
            try:
                sink.handle(event)
            except Exception:
                log.exception("sink %s failed on event %s", type(sink).__name__, event.event_key)
