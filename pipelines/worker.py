"""`CameraWorker`: runs the pipelines of many cameras in one process and keeps them in line with the config dir.

Each enabled camera runs in its own thread (decode and ONNX Runtime release the GIL). The worker polls the camera
config directory (YAML files are the source of truth; the HTTP API writes them too) and reconciles: new cameras
start, changed ones restart with the new config, removed or disabled ones stop (their open incidents are closed).
A file that stops validating leaves the last good config running and logs the problems. A camera thread that dies
is restarted with back-off, like a watchdog; a camera whose rules cannot be served (missing model) is reported and
retried when the models or the config change.
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

from pipelines.assemble import CameraRuntime, EvidenceOptions, PipelineConfigError, build_runtime
from pipelines.camera import EventSink
from pipelines.config import CameraConfig, ConfigError, load_camera_config
from vision.detect.errors import ModelError
from vision.detect.registry import ModelRegistry
from vision.media.clip_writer import ClipWriter
from vision.sources import SourceError

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
    path: Path | None = None


class CameraWorker:
    def __init__(
        self,
        config_dir: Path,
        registry: ModelRegistry,
        sinks: Sequence[EventSink],
        *,
        evidence: EvidenceOptions | None = None,
        realtime_files: bool = True,
        loop_files: bool = True,
        poll_s: float = 2.0,
        on_inference: Callable[[str, float], None] | None = None,
        worker_id: str | None = None,
    ) -> None:
        self.config_dir = config_dir
        self.registry = registry
        self.sinks = list(sinks)
        self.evidence = evidence
        self.realtime_files = realtime_files
        self.loop_files = loop_files
        self.poll_s = poll_s
        self.on_inference = on_inference
        self.id = worker_id or f"{socket.gethostname()}-{os.getpid()}"
        self.host = socket.gethostname()
        self.clip_writer = ClipWriter() if evidence is not None else None
        self._cameras: dict[str, _Running] = {}
        self._mtimes: dict[Path, float] = {}
        self._paths: dict[str, Path] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def start(self) -> None:
        self.reconcile()
        self._thread = threading.Thread(target=self._watch, name="camera-worker", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 15.0) -> None:
        """Stop every camera: open incidents are closed and their clips flushed before this returns."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        with self._lock:
            running = list(self._cameras.values())
            self._cameras.clear()
        for r in running:
            self._halt(r, timeout)
        if self.clip_writer is not None:
            self.clip_writer.close(timeout)

    # -- reconciliation ----------------------------------------------------------------------------------------
    def reconcile(self) -> None:
        """Bring the running cameras in line with the config dir (called every `poll_s`)."""
        wanted = self._load_configs()
        with self._lock:
            current = dict(self._cameras)
        for cam_id, r in current.items():
            new = wanted.get(cam_id)
            if new is None or new.config_hash() != r.digest:
                log.info("camera %s: %s", cam_id, "removed or disabled" if new is None else "config changed")
                with self._lock:
                    self._cameras.pop(cam_id, None)
                self._halt(r)
        for cam_id, cfg in wanted.items():
            with self._lock:
                running = self._cameras.get(cam_id)
            if running is None:
                self._launch(cfg)
            elif not running.finished and (running.thread is None or not running.thread.is_alive()):
                self._relaunch(running)

    def _load_configs(self) -> dict[str, CameraConfig]:
        paths = sorted(p for p in self.config_dir.glob("*.y*ml")) if self.config_dir.is_dir() else []
        wanted: dict[str, CameraConfig] = {}
        for path in paths:
            try:
                cfg = load_camera_config(path)
            except ConfigError as exc:
                if self._mtimes.get(path) != _mtime(path):
                    for problem in exc.problems:
                        log.error("camera config problem: %s", problem)
                old = next((r.config for r in self._cameras.values() if r.path == path), None)
                if old is not None:
                    wanted[old.id] = old  # keep the last good config running
                self._mtimes[path] = _mtime(path)
                continue
            self._mtimes[path] = _mtime(path)
            if cfg.enabled and cfg.id not in wanted:
                wanted[cfg.id] = cfg
                self._paths[cfg.id] = path
        return wanted

    def _launch(self, cfg: CameraConfig) -> None:
        r = _Running(cfg, cfg.config_hash(), path=self._paths.get(cfg.id))
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
        try:
            r.runtime = build_runtime(
                r.config,
                self.registry,
                sinks=self.sinks,
                realtime=self.realtime_files,
                loop=self.loop_files,
                evidence=self.evidence,
                clip_writer=self.clip_writer,
                on_inference=self.on_inference,
            )
            r.error = None
            r.runtime.source.open()
            if r.runtime.record is not None:
                r.runtime.record.open()
            r.runtime.pipeline.run(r.runtime.source, r.stop)
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

    def _halt(self, r: _Running, timeout: float = 15.0) -> None:
        r.stop.set()
        if r.runtime is not None:
            r.runtime.source.close()
        if r.thread is not None:
            r.thread.join(timeout)

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                self.reconcile()
            except Exception:
                log.exception("config reconcile failed")

    # -- status ------------------------------------------------------------------------------------------------
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


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
