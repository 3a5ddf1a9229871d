"""`ModelSync`: a worker's side of model rollout (pushed models, `POST /v1/models`).

- When a camera starts, `registry_for(camera, base)` resolves the version of every model it runs (its `models:` pin,
  else the newest pushed version, else the models directory's own file), fetches the pushed ones into the worker's
  cache, verifying their sha256 (`vision.detect.model_store.ModelCache`: a changed cache file is fetched again, a
  store file whose hash is wrong is refused and the camera does not start: ModelError), and returns a registry view
  with them installed.
- Every worker poll, `poll(runtimes)` re-reads the catalogue (one Redis GET while nothing changed) and, for each
  running camera whose wanted versions differ from what it runs, prepares a hot swap in a thread of its own
  (`pipelines.camera.model_swap`: sessions built and warmed off the frame thread, swapped at a frame boundary).
  A swap that cannot be done in place names the camera for a restart; a refused fetch keeps the old version running
  and is retried after `RETRY_S`.
- Cached copies of versions that left the catalogue (deleted, or older than its last versions of a name) and that
  no camera here runs are deleted when the catalogue changes and when a camera stops or swaps.
- What each camera runs (name → sha256, or the error that stops it) is reported to the catalogue, so
  `GET /v1/models` shows the rollout and `DELETE /v1/models/{name}` is refused while a camera runs a version.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping

from pipelines.camera.assemble import CameraRuntime, resolve_models
from pipelines.camera.model_swap import apply_swap, prepare_swap
from pipelines.config.camera import CameraConfig
from pipelines.distributed.model_catalog import ModelCatalog, ModelVersion, resolve_version
from vision.detect.batcher import BatcherPool
from vision.detect.card import ModelCard
from vision.detect.errors import ModelError
from vision.detect.model_store import ModelCache, ModelRejected
from vision.detect.registry import Installed, ModelRegistry

log = logging.getLogger(__name__)

#: A refused version (hash mismatch, missing file) is tried again after this long.
RETRY_S = 30.0
#: Running reports are refreshed at least this often (the catalogue forgets them after a minute).
REPORT_S = 15.0


class ModelSync:
    def __init__(self, catalog: ModelCatalog, cache: ModelCache, worker_id: str) -> None:
        self.catalog = catalog
        self.cache = cache
        self.worker_id = worker_id
        self._versions: dict[str, list[ModelVersion]] = {}
        self._current: dict[str, dict[str, str]] = {}  # camera id → name → sha256 it runs
        self._reported: dict[str, float] = {}
        self._busy: set[str] = set()
        self._refused: dict[str, float] = {}  # sha256 → when it was refused
        self._restart: set[str] = set()
        self._lock = threading.Lock()
        self._base: ModelRegistry | None = None  # the worker's registry (its loaded detectors are pruned here)
        self.refresh()

    def refresh(self) -> bool:
        """Re-read the catalogue; True when it changed (then cached copies of versions it dropped are deleted)."""
        versions = self.catalog.versions()
        changed = versions != self._versions
        self._versions = versions
        if changed:
            self._prune()
        return changed

    # -- camera start --------------------------------------------------------------------------------------------
    def registry_for(
        self, camera: CameraConfig, base: ModelRegistry, running: dict[str, str] | None = None
    ) -> ModelRegistry:
        """`base` with the versions `camera` runs installed (module docs); ModelError when one cannot be had (reported
        with `running`, the versions the camera still runs, if any)."""
        try:
            chosen = self._chosen(camera, base)
            probe = base.install({n: Installed(c, self.cache.store.root) for n, c in chosen.items()})
            wanted = set(resolve_models(camera, probe)) | set(camera.shadow_models)
            fetched = {n: Installed(c, self.cache.fetch(_sha(c)).parent) for n, c in chosen.items() if n in wanted}
        except (ModelRejected, ModelError) as exc:
            self._report(camera.id, running or {}, error=str(exc))
            raise ModelError(f"camera {camera.id}: {exc}") from None
        return base.install(fetched)

    def _chosen(self, camera: CameraConfig, base: ModelRegistry) -> dict[str, ModelCard]:
        """Name → card of the pushed version `camera` runs, for every pushed name (and every pinned one)."""
        pins = camera.model_pins
        out = {}
        for name in sorted(set(self._versions) | set(pins)):
            pin = pins.get(name)
            version = resolve_version(self._versions.get(name, []), pin)
            if version is not None:
                out[name] = ModelCard.model_validate(version.card)
                continue
            shipped = base.cards.get(name)
            if pin is not None and not (shipped is not None and (shipped.sha256 or "").startswith(pin)):
                raise ModelError(f"models: {name} is pinned to {pin}, which matches no single version of it")
        return out

    def started(self, camera_id: str, runtime: CameraRuntime, registry: ModelRegistry) -> None:
        versions = {n: registry.card(n).sha256 or "" for n in runtime.models}
        with self._lock:
            self._current[camera_id] = versions
        self._report(camera_id, versions)

    def stopped(self, camera_id: str) -> None:
        with self._lock:
            self._current.pop(camera_id, None)
            self._reported.pop(camera_id, None)
        self._prune()
        self._report(camera_id, {})

    # -- while running --------------------------------------------------------------------------------------------
    def poll(
        self, runtimes: Mapping[str, CameraRuntime], base: ModelRegistry, batching: BatcherPool | None
    ) -> set[str]:
        """Start hot swaps where versions changed since `refresh` (module docs); returns the cameras to restart
        instead."""
        self._base = base
        now = time.monotonic()
        for camera_id, runtime in runtimes.items():
            with self._lock:
                current = self._current.get(camera_id)
                busy = camera_id in self._busy
            if current is None or busy:
                continue
            wanted = self._wanted(runtime.camera, current)
            if wanted != current and not self._held_back(wanted, now):
                with self._lock:
                    self._busy.add(camera_id)
                args = (camera_id, runtime, base, batching, wanted)
                threading.Thread(target=self._swap, args=args, name=f"model-swap-{camera_id}", daemon=True).start()
            elif now - self._reported.get(camera_id, 0.0) >= REPORT_S:
                self._report(camera_id, current)
        with self._lock:
            restart, self._restart = self._restart, set()
        return restart

    def _wanted(self, camera: CameraConfig, current: dict[str, str]) -> dict[str, str]:
        """Name → sha256 `camera`'s running models should run now: the pinned or newest pushed version; what runs
        where no pushed version applies (a new model name, or a deleted one, waits for a restart)."""
        pins = camera.model_pins
        out = dict(current)
        for name in current:
            version = resolve_version(self._versions.get(name, []), pins.get(name))
            if version is not None:
                out[name] = version.sha256
        return out

    def _held_back(self, wanted: dict[str, str], now: float) -> bool:
        return any(now - self._refused.get(sha, -RETRY_S) < RETRY_S for sha in wanted.values())

    def _swap(
        self,
        camera_id: str,
        runtime: CameraRuntime,
        base: ModelRegistry,
        batching: BatcherPool | None,
        wanted: dict[str, str],
    ) -> None:
        """A swap thread: the camera stays busy (no second swap) until the swap landed or failed."""
        current = self._current.get(camera_id, {})
        changed = {n for n, sha in wanted.items() if current.get(n) != sha}
        try:
            registry = self.registry_for(runtime.camera, base, running=current)
            swap = prepare_swap(runtime, registry, changed, batching=batching)
            if swap is None:
                log.info("camera %s: new model versions need a restart (%s)", camera_id, sorted(changed))
                with self._lock:
                    self._restart.add(camera_id)
                    self._busy.discard(camera_id)
                return
            apply_swap(runtime, swap, done=lambda: self._swapped(camera_id, swap.versions))
        except Exception as exc:
            for sha in set(wanted.values()) - set(current.values()):
                self._refused[sha] = time.monotonic()
            if isinstance(exc, ModelError):
                log.error("camera %s: new model version refused, the running one stays: %s", camera_id, exc)
            else:
                log.exception("camera %s: model swap failed; the running version stays", camera_id)
            with self._lock:
                self._busy.discard(camera_id)

    def _swapped(self, camera_id: str, versions: dict[str, str]) -> None:
        with self._lock:
            self._current[camera_id] = dict(versions)
            self._busy.discard(camera_id)
        self._report(camera_id, versions)
        self._prune()

    def _prune(self) -> None:
        """Unload the pushed versions no camera of this worker runs any more (their sessions hold memory), and
        delete the cached copies of versions that are neither run here nor in the catalogue any more (deleted, or
        beyond its last `MAX_VERSIONS` of a name): the cache stays bounded however often models are pushed."""
        with self._lock:
            running = {sha for v in self._current.values() for sha in v.values() if sha}
            published = {v.sha256 for versions in self._versions.values() for v in versions}
        keep = {self.cache.dir / f"{sha}.onnx" for sha in running}
        if self._base is not None and (gone := self._base.prune(keep)):
            log.info("unloaded %d model session(s) no camera runs", gone)
        try:
            deleted = self.cache.prune(running | published)
        except OSError as exc:
            log.warning("model cache %s not pruned: %s", self.cache.dir, exc)
            return
        if deleted:
            log.info("model cache: deleted %d version(s) no longer published: %s", len(deleted),
                     ", ".join(d[:12] for d in deleted))  # fmt: skip

    def _report(self, camera_id: str, versions: dict[str, str], error: str | None = None) -> None:
        self._reported[camera_id] = time.monotonic()
        try:
            self.catalog.report(camera_id, self.worker_id, versions, error=error)
        except Exception as exc:  # Redis away: the next poll reports again
            log.warning("camera %s: running models not reported: %s", camera_id, exc)


def _sha(card: ModelCard) -> str:
    assert card.sha256 is not None  # pushed cards always record it
    return card.sha256
