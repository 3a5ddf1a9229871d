"""`CameraWorker`: runs the pipelines of many cameras in one process and keeps them in line with the camera configs.

Each running camera has its own thread (decode and ONNX Runtime release the GIL). Every `poll_s` the worker
reconciles with its `ConfigSource` (pipelines/config/source.py): new cameras start, changed ones restart with the
new config, removed or disabled ones stop (their open incidents are closed). A file that stops validating leaves the
last good config running and logs the problems. A camera thread that dies is restarted with back-off, like a
watchdog; a camera whose rules cannot be served (missing model) is reported and retried when the models or the
config change.

Embedded mode (`safewatch run`): the source is the config directory and the worker runs every enabled camera.

Each camera's frame loop is `CameraPipeline.run`; the worker stops it with a `StopSignal` that names the way out
(`Exit`, pipelines/camera/pipeline.py). Its lifecycle is one `CameraState` (pipelines/camera/state.py), which
`status()` reports and the metrics and `GET /v1/workers` derive from.

Distributed mode (`safewatch worker`, `distributed=Distributed(leases, state)`): the configs come from Redis and the
worker runs only the cameras it holds a lease on (pipelines/distributed/leases.py: claim up to a fair share, renew,
hand over extras). A camera stops in one of three ways:
- *finish* (removed, disabled, config changed): open incidents are closed, as in embedded mode;
- *hand over* (rebalancing, clean shutdown): incidents stay open; the evidence recorder is flushed and the incident
  state saved (pipelines/distributed/incident_state.py) before the lease is released, so the next owner continues them;
- *abandon* (lease lost): nothing more is published; the new owner has the state.
Every event of a camera carries the fencing token of the worker's lease (pipelines/distributed/fencing.py), so what
a paused or partitioned former owner publishes after another worker was granted the camera is refused by the store.
The incident state of each camera is saved to Redis on every event and about once a second while it changes, and is
restored when a camera starts, so a worker killed with `kill -9` costs at most the lease TTL of observation and
never a duplicate `opened`.

Pushed models (`models=`, pipelines/worker/model_sync.py): new versions are hot-swapped between frames.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import redis

from pipelines.camera.assemble import CameraRuntime, EvidenceOptions, PipelineConfigError, build_runtime
from pipelines.camera.pipeline import CameraPipeline, EventSink, Exit, StopSignal
from pipelines.camera.state import CameraState
from pipelines.config.camera import CameraConfig
from pipelines.config.source import ConfigSource, DirConfigSource
from pipelines.distributed.fencing import FencedSink
from pipelines.distributed.incident_state import IncidentStateStore, StateSaver
from pipelines.distributed.leases import LeaseManager, WorkerLoad
from pipelines.worker.model_sync import ModelSync
from vision.detect.batcher import BatcherPool
from vision.detect.errors import ModelError
from vision.detect.registry import ModelRegistry
from vision.media.clip_writer import ClipWriter
from vision.sources import SourceError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CameraStatus:
    """One camera as the worker reports it (metrics, heartbeats and `GET /v1/workers` are built from these)."""

    camera_id: str
    state: CameraState
    fps: float
    lag_s: float
    frames: int
    dropped: int
    reconnects: int
    error: str | None


@dataclass(frozen=True)
class Distributed:
    """What a worker needs in distributed mode: its leases, where incident states live, and `flushed(timeout_s)`: wait
    until the bus has sent what it spooled (True when it has). A hand-over waits for it before releasing a lease, so
    the next owner's grant lands in the stream behind every event of this worker (else the store fences them)."""

    leases: LeaseManager
    state: IncidentStateStore
    flushed: Callable[[float], bool] | None = None


@dataclass
class _Running:
    """One camera of this worker. `phase` is the worker's part of its lifecycle: STARTING until its pipeline is
    built, CONNECTING once it runs (from then on its source reports the state: see `state`), STOPPED when a file
    played to its end (not restarted), ERROR when it cannot run or crashed (`error` says why; restarted with
    back-off). `stop` stops its run and says how the run ends."""

    config: CameraConfig
    digest: str
    stop: StopSignal = field(default_factory=StopSignal)
    thread: threading.Thread | None = None
    runtime: CameraRuntime | None = None
    phase: CameraState = CameraState.STARTING
    error: str | None = None
    restarts: int = 0
    next_try: float = 0.0

    @property
    def state(self) -> CameraState:
        if self.phase is CameraState.CONNECTING and self.runtime is not None:
            return CameraState.of_source(self.runtime.source.state)
        return self.phase


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
        models: ModelSync | None = None,
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
        self.models = models  # pushed model versions (None: the models directory only)
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
        how = Exit.HANDOVER if self.distributed is not None else Exit.FINISH
        for r in running:
            r.stop.request(how)
        for r in running:
            self._halt(r, how, timeout)
        if self.distributed is not None:
            self._flush_before_release(min(timeout, self.distributed.leases.config.renew_s))
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
                self._drop(cam_id, r, Exit.FINISH)
        for cam_id, cfg in wanted.items():
            with self._lock:
                running = self._cameras.get(cam_id)
            if running is None:
                self._launch(cfg)
            elif running.phase is not CameraState.STOPPED and (running.thread is None or not running.thread.is_alive()):
                self._relaunch(running)
        if self.models is not None:
            self._models_round(self.models)

    def _models_round(self, models: ModelSync) -> None:
        """New model versions: hot swaps; a restart (as for a changed config) where one cannot be done in place; an
        immediate retry of the cameras that could not start."""
        changed = models.refresh()
        with self._lock:
            cameras = dict(self._cameras)
        running = {
            c: r.runtime for c, r in cameras.items() if r.runtime is not None and r.thread and r.thread.is_alive()
        }
        for cam_id in models.poll(running, self.registry, self.batching):
            cameras[cam_id].digest = ""  # restarted next round
        for r in cameras.values():
            if changed and r.phase is CameraState.ERROR:
                r.next_try = 0.0

    def _lease_round(self, configs: dict[str, CameraConfig], leases: LeaseManager) -> dict[str, CameraConfig]:
        """Stop what is lost, removed or handed over; claim up to the fair share; returns the cameras to run."""
        with self._lock:
            current = dict(self._cameras)
        held = leases.held()
        for cam_id, r in current.items():
            if cam_id not in held:
                self._drop(cam_id, r, Exit.ABANDON)
            elif cam_id not in configs:
                log.info("camera %s: removed or disabled", cam_id)
                self._drop(cam_id, r, Exit.FINISH)
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
                self._drop(cam_id, extra, Exit.HANDOVER)
            self._flush_before_release(leases.config.renew_s)
            leases.release(cam_id)
        return {cam_id: configs[cam_id] for cam_id in sorted(plan.owned - set(plan.release))}

    def _flush_before_release(self, timeout_s: float) -> None:
        flushed = self.distributed.flushed if self.distributed is not None else None
        if flushed is not None and not flushed(timeout_s):
            log.warning("handing over with events still spooled; the store refuses those sent after the next grant")

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
        r.stop = StopSignal()
        r.thread = threading.Thread(target=self._run_camera, args=(r,), name=f"camera-{r.config.id}", daemon=True)
        r.thread.start()

    def _run_camera(self, r: _Running) -> None:
        saver = StateSaver(self.distributed.state, r.config.id, self.id) if self.distributed is not None else None
        try:
            registry = self.models.registry_for(r.config, self.registry) if self.models else self.registry
            r.runtime = build_runtime(
                r.config,
                registry,
                sinks=self._sinks(r.config.id, saver),
                realtime=self.realtime_files,
                loop=self.loop_files,
                evidence=self.evidence,
                clip_writer=self.clip_writer,
                on_inference=self.on_inference,
                batching=self.batching,
            )
            r.error, r.phase = None, CameraState.CONNECTING
            if self.models is not None:
                self.models.started(r.config.id, r.runtime, registry)
            if saver is not None:
                self._restore(r.config, r.runtime.pipeline, saver)
            r.runtime.source.open()
            if r.runtime.record is not None:
                r.runtime.record.open()
            stats = r.runtime.pipeline.run(r.runtime.source, r.stop, on_frame=saver.on_frame if saver else None)
            if stats.exit is Exit.HANDOVER and saver is not None:
                self._save_for_next_owner(r.config.id, saver)
            if not r.runtime.source.live:
                r.phase = CameraState.STOPPED
        except (PipelineConfigError, ModelError) as exc:
            r.error, r.phase = str(exc), CameraState.ERROR
            log.error("camera %s cannot run: %s", r.config.id, exc)
        except SourceError as exc:
            r.error, r.phase = str(exc), CameraState.ERROR
            log.error("camera %s source failed: %s", r.config.id, exc)
        except Exception as exc:  # the watchdog: one camera's bug must not take the worker down
            r.error, r.phase = f"{type(exc).__name__}: {exc}", CameraState.ERROR
            log.exception("camera %s crashed", r.config.id)
        finally:
            if r.runtime is not None:
                r.runtime.close()
                if self.models is not None:
                    self.models.stopped(r.config.id)
            if not r.stop.is_set() and r.phase is not CameraState.STOPPED:
                r.restarts += 1
                r.next_try = time.monotonic() + min(60.0, 2.0 ** min(r.restarts, 6))

    def _sinks(self, camera_id: str, saver: StateSaver | None) -> list[EventSink]:
        """Embedded: the worker's sinks. Distributed: the state saver first, then the sinks, fed events that carry the
        camera's fencing token (0, which the store refuses once it saw any grant, if the lease is already gone)."""
        if self.distributed is None:
            return self.sinks
        token = self.distributed.leases.token(camera_id) or 0
        return [*([saver] if saver is not None else []), *(FencedSink(s, token) for s in self.sinks)]

    def _restore(self, cfg: CameraConfig, pipeline: CameraPipeline, saver: StateSaver) -> None:
        assert self.distributed is not None
        saver.bind(pipeline.incidents)
        state = self.distributed.state.load(cfg.id)
        if state is not None and (state.incidents or state.cooldowns):
            pipeline.incidents.restore_state(state, grace_seconds=pipeline.warmup_s())
            log.info("camera %s: continuing %d incident(s) from the previous owner", cfg.id, len(state.incidents))

    def _save_for_next_owner(self, camera_id: str, saver: StateSaver) -> None:
        """After a hand-over run: save the incident state the next owner continues (the lease first: right after a
        Redis outage it may still need re-taking, and the save is fenced by it)."""
        assert self.distributed is not None
        try:
            self.distributed.leases.renew()
        except redis.RedisError as exc:
            log.warning("camera %s: lease not renewed before the hand-over: %s", camera_id, exc)
        saver.save(force=True)

    def _halt(self, r: _Running, how: Exit = Exit.FINISH, timeout: float = 15.0) -> None:
        r.stop.request(how)
        if r.runtime is not None:
            r.runtime.source.close()
        if r.thread is not None:
            r.thread.join(timeout)

    def _lost(self, camera_id: str) -> None:
        """Renewal thread: the lease is gone (another worker may run the camera): stop at once, publish nothing."""
        with self._lock:
            r = self._cameras.get(camera_id)
        if r is not None:
            r.stop.request(Exit.ABANDON)

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
                out.append(CameraStatus(r.config.id, r.state, 0, 0, 0, 0, 0, r.error))
                continue
            st, src = rt.pipeline.stats, rt.source.stats
            lag = max(0.0, now - st.last_wall) if st.last_wall else 0.0
            out.append(
                CameraStatus(
                    r.config.id, r.state, st.fps(), lag, st.frames, src.frames_dropped, src.reconnects, r.error
                )
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
