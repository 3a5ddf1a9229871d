"""Camera leases and worker heartbeats in Redis (distributed mode): exactly one live worker runs each camera.

Keys, all under `<prefix>:`:

- `lease:<camera>` = worker id. Claimed with `SET … NX PX ttl` under a new fencing token `fence:<camera>` (a Lua
  script that also records the grant in the event stream: pipelines/distributed/fencing.py); extended by its owner
  only (a Lua compare-and-`PEXPIRE`) every `ttl_s / 3`; deleted by its owner only (a Lua compare-and-`DEL`) on a clean
  stop or a handover.
  A worker that dies stops renewing, its leases expire at most `ttl_s` later and live workers claim them.
- `worker:<id>` = the worker's heartbeat JSON (`{id, host, cameras, fps, lag_s, last_seen, max_cameras, weight,
  spool_bytes, spool_dropped}`: the last two are its event spool's size and what the spool's byte cap dropped),
  written with the same `PX ttl` by the same thread that renews the leases, so a dead worker's heartbeat and its
  leases disappear together; `workers` is a set of ids to enumerate them (members without a heartbeat are pruned).

Balance: every worker computes the same fair shares from the live heartbeats (`fair_shares`: the cameras split in
proportion to each worker's `weight`, no worker above its `max_cameras`, excess redistributed, rounded up). A worker
claims unowned cameras only while it holds fewer than its share, and hands over its least preferred camera (one
per round) while it holds more, so a joining worker gets its part and a dead worker's part is spread over the rest.
Preference is rendezvous hashing (camera × worker id), so workers try different cameras first and the assignment is
sticky. A new worker waits `settle_s` after its first heartbeat before claiming, so workers started together see
each other before the first one takes everything.

Liveness of a heartbeat is Redis's own key expiry (no clock comparison between hosts).
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import cast

import redis
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pipelines.bus.spool import SpoolStats
from pipelines.distributed.fencing import FenceScripts

log = logging.getLogger(__name__)

_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


class LeaseConfig(BaseModel):
    """How a worker takes part in the camera assignment."""

    model_config = ConfigDict(extra="forbid")

    ttl_s: float = Field(
        default=10.0,
        gt=0.2,
        description="Lease and heartbeat lifetime; a dead worker's cameras move to others within this time.",
    )
    max_cameras: int | None = Field(default=None, ge=0, description="Never run more cameras than this.")
    weight: float = Field(default=1.0, gt=0, description="Relative capacity (a worker with 2 takes twice the share).")
    settle_s: float | None = Field(
        default=None, ge=0, description="Wait after joining before claiming; unset = one renewal interval (ttl_s / 3)."
    )

    @property
    def renew_s(self) -> float:
        return self.ttl_s / 3.0


class Heartbeat(BaseModel):
    """A worker's status as stored in Redis (`GET /v1/workers` reads these)."""

    model_config = ConfigDict(extra="forbid")

    id: str
    host: str
    cameras: list[str] = Field(default_factory=list)
    fps: float = 0.0
    lag_s: float = 0.0
    last_seen: datetime
    max_cameras: int | None = None
    weight: float = 1.0
    spool_bytes: int = 0
    spool_dropped: dict[str, int] = Field(default_factory=dict)  # events dropped by the spool's byte cap, by type


@dataclass(frozen=True, slots=True)
class WorkerLoad:
    """What the worker reports in its heartbeat (from `CameraWorker.status`)."""

    cameras: list[str] = field(default_factory=list)
    fps: float = 0.0
    lag_s: float = 0.0


@dataclass(frozen=True, slots=True)
class LeasePlan:
    """The outcome of one balancing round: cameras this worker owns now, and the ones it should hand over."""

    owned: frozenset[str]
    release: tuple[str, ...] = ()
    share: int = 0


def fair_shares(total: int, workers: Sequence[tuple[str, float, int | None]]) -> dict[str, int]:
    """Cameras per worker id for `(id, weight, max_cameras)` workers: proportional to weight, capped, rounded up."""
    shares: dict[str, int] = {}
    pending = sorted(workers)
    remaining = float(total)
    while pending:
        weights = sum(w for _, w, _ in pending)
        capped = [(i, w, c) for i, w, c in pending if c is not None and c <= remaining * w / weights]
        if not capped:
            break
        for worker_id, _, cap in capped:
            assert cap is not None
            shares[worker_id] = cap
            remaining -= cap
        pending = [p for p in pending if p not in capped]
    weights = sum(w for _, w, _ in pending)
    for worker_id, weight, _ in pending:
        shares[worker_id] = max(0, math.ceil(remaining * weight / weights - 1e-9))
    return shares


def preference(camera_id: str, worker_id: str) -> int:
    """Rendezvous hash: a worker prefers the cameras with the highest score for it."""
    return int.from_bytes(hashlib.sha1(f"{camera_id}\0{worker_id}".encode()).digest()[:8], "big")


def read_heartbeats(client: redis.Redis, prefix: str) -> list[Heartbeat]:
    """The live workers (heartbeat not expired), by id; prunes ids whose heartbeat expired."""
    ids = sorted(cast(set[str], client.smembers(f"{prefix}:workers")))
    if not ids:
        return []
    raw = cast(list[str | None], client.mget([f"{prefix}:worker:{i}" for i in ids]))
    out, dead = [], []
    for worker_id, text in zip(ids, raw, strict=True):
        if text is None:
            dead.append(worker_id)
            continue
        try:
            out.append(Heartbeat.model_validate_json(text))
        except ValidationError:
            log.warning("unreadable heartbeat of worker %s", worker_id)
    if dead:
        client.srem(f"{prefix}:workers", *dead)
    return out


def lease_owners(client: redis.Redis, prefix: str) -> dict[str, str]:
    """camera id → owning worker id, for every live lease."""
    keys = sorted(cast(list[str], list(client.scan_iter(match=f"{prefix}:lease:*", count=500))))
    if not keys:
        return {}
    values = cast(list[str | None], client.mget(keys))
    start = len(f"{prefix}:lease:")
    return {k[start:]: v for k, v in zip(keys, values, strict=True) if v is not None}


class LeaseManager:
    """One worker's side of the assignment: claim, renew, release, heartbeat (module docs).

    `client` must decode responses (`decode_responses=True`). `on_lost(camera_id)` is called from the renewal
    thread when a lease could not be renewed (another worker may own the camera now: stop it without publishing).
    """

    def __init__(
        self,
        client: redis.Redis,
        prefix: str,
        worker_id: str,
        *,
        host: str = "",
        config: LeaseConfig | None = None,
        load: Callable[[], WorkerLoad] | None = None,
        on_lost: Callable[[str], None] | None = None,
        spool: Callable[[], SpoolStats] | None = None,
        stream: str | None = None,
    ) -> None:
        self.client = client
        self._spool = spool
        self.prefix = prefix
        self.id = worker_id
        self.host = host
        self.config = config or LeaseConfig()
        self._load = load or WorkerLoad
        self._on_lost = on_lost
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        self._fence = FenceScripts(client, prefix, stream)
        self._tokens: dict[str, int] = {}  # camera id → fencing token of this worker's grant
        self._held: dict[str, float] = {}  # camera id → monotonic time of the last successful claim/renewal
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._joined = 0.0
        self._uncertain: set[str] = set()  # held cameras whose renewal failed because Redis was unreachable
        self._quiet_until = 0.0  # after an outage: no new claims until owners had a full TTL to re-take theirs

    def bind(self, *, load: Callable[[], WorkerLoad], on_lost: Callable[[str], None]) -> None:
        """Attach the worker: what its heartbeat reports, and whom to tell when a lease is lost."""
        self._load, self._on_lost = load, on_lost

    @property
    def ttl_ms(self) -> int:
        return max(1, round(self.config.ttl_s * 1000))

    def lease_key(self, camera_id: str) -> str:
        return f"{self.prefix}:lease:{camera_id}"

    # -- lifecycle -----------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Announce this worker (first heartbeat) and start renewing leases and heartbeats every ttl_s / 3."""
        self.heartbeat()
        self._joined = time.monotonic()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="lease-renewal", daemon=True)
        self._thread.start()

    def stop(self, *, release: bool = True) -> None:
        """Stop renewing; release every lease still held (clean shutdown) and withdraw the heartbeat."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.config.ttl_s)
        if release:
            for camera_id in sorted(self.held()):
                self.release(camera_id)
            try:
                self.client.delete(f"{self.prefix}:worker:{self.id}")
                self.client.srem(f"{self.prefix}:workers", self.id)
            except redis.RedisError as exc:
                log.warning("could not withdraw the heartbeat of worker %s: %s", self.id, exc)

    # -- leases --------------------------------------------------------------------------------------------------
    def held(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._held)

    def token(self, camera_id: str) -> int | None:
        """The fencing token of this worker's lease on the camera (None when it does not hold it)."""
        with self._lock:
            return self._tokens.get(camera_id) if camera_id in self._held else None

    def owner(self, camera_id: str) -> str | None:
        return cast(str | None, self.client.get(self.lease_key(camera_id)))

    def claim(self, camera_id: str) -> bool:
        """Take the camera if nobody holds it (`SET NX PX`, under a new fencing token)."""
        token = self._fence.claim(self.lease_key(camera_id), camera_id, self.id, self.ttl_ms)
        if token is None:
            return False
        with self._lock:
            self._held[camera_id] = time.monotonic()
            self._tokens[camera_id] = token
        log.info("lease claimed: camera %s by %s (token %d)", camera_id, self.id, token, extra={"camera_id": camera_id})
        return True

    def release(self, camera_id: str) -> bool:
        """Give the camera up (only if this worker still owns it)."""
        with self._lock:
            self._held.pop(camera_id, None)
            self._tokens.pop(camera_id, None)
        try:
            done = bool(self._release(keys=[self.lease_key(camera_id)], args=[self.id]))
        except redis.RedisError as exc:
            log.warning("lease of camera %s not released (%s); it expires by itself", camera_id, exc)
            return False
        if done:
            log.info("lease released: camera %s by %s", camera_id, self.id, extra={"camera_id": camera_id})
        return done

    def renew(self) -> list[str]:
        """Extend every held lease; returns the cameras whose lease was lost (and forgets them).

        Redis unreachable: the leases are kept and the cameras keep running. Nobody can claim a lease while Redis is
        down, and stopping would lose every incident of the outage (their events are spooled by the bus). When Redis
        answers again, a lease that expired meanwhile is re-taken if it is free and nobody was granted it meanwhile
        (same fencing token); otherwise it counts as lost. (In a partition where only this worker lost Redis, another
        one may take the camera after the TTL: both then run it until this worker reconnects, finds the lease lost
        and stops the camera; what it publishes meanwhile carries its older fencing token and the store refuses it:
        pipelines/distributed/fencing.py.)
        """
        lost = []
        for camera_id in sorted(self.held()):
            try:
                ok = bool(self._renew(keys=[self.lease_key(camera_id)], args=[self.id, self.ttl_ms]))
                if not ok and camera_id in self._uncertain:
                    ok = self._retake(camera_id)
                    log.info("lease of camera %s after the Redis outage: %s", camera_id, "re-taken" if ok else "lost")
            except redis.RedisError as exc:
                if camera_id not in self._uncertain:
                    log.warning("lease renewal of camera %s failed (%s): keeping the camera running", camera_id, exc)
                self._uncertain.add(camera_id)
                continue
            self._uncertain.discard(camera_id)
            if ok:
                with self._lock:
                    if camera_id in self._held:
                        self._held[camera_id] = time.monotonic()
            else:
                with self._lock:
                    self._held.pop(camera_id, None)
                    self._tokens.pop(camera_id, None)
                lost.append(camera_id)
                log.warning("lease lost: camera %s by %s", camera_id, self.id, extra={"camera_id": camera_id})
        return lost

    def _retake(self, camera_id: str) -> bool:
        """After an outage: take the lapsed lease back, under the same token if nobody was granted it meanwhile."""
        token = self.token(camera_id)
        return token is not None and self._fence.retake(
            self.lease_key(camera_id), camera_id, self.id, self.ttl_ms, token
        )

    # -- heartbeats and balance ------------------------------------------------------------------------------------
    def heartbeat(self) -> None:
        load = self._load()
        spool = self._spool() if self._spool is not None else None
        beat = Heartbeat(
            id=self.id,
            host=self.host,
            cameras=sorted(load.cameras),
            fps=round(load.fps, 2),
            lag_s=round(load.lag_s, 2),
            last_seen=datetime.now(UTC),
            max_cameras=self.config.max_cameras,
            weight=self.config.weight,
            spool_bytes=spool.bytes if spool is not None else 0,
            spool_dropped=spool.dropped if spool is not None else {},
        )
        pipe = self.client.pipeline(transaction=False)
        pipe.set(f"{self.prefix}:worker:{self.id}", beat.model_dump_json(), px=self.ttl_ms)
        pipe.sadd(f"{self.prefix}:workers", self.id)
        pipe.execute()

    def plan(self, cameras: Collection[str]) -> LeasePlan:
        """One balancing round over the cameras to run: claim below the fair share, hand over one above it."""
        wanted = set(cameras)
        owned = set(self.held() & wanted)
        settle = self.config.renew_s if self.config.settle_s is None else self.config.settle_s
        if time.monotonic() - self._joined < settle or time.monotonic() < self._quiet_until:
            return LeasePlan(frozenset(owned))
        live = [(h.id, h.weight, h.max_cameras) for h in read_heartbeats(self.client, self.prefix)]
        if self.id not in {w[0] for w in live}:
            live.append((self.id, self.config.weight, self.config.max_cameras))
        share = fair_shares(len(wanted), live)[self.id]
        if len(owned) > share:
            least = min(owned, key=lambda c: preference(c, self.id))
            return LeasePlan(frozenset(owned), (least,), share)
        candidates = sorted(wanted - owned, key=lambda c: preference(c, self.id), reverse=True)
        for camera_id in candidates:
            if len(owned) >= share:
                break
            if self.claim(camera_id):
                owned.add(camera_id)
        return LeasePlan(frozenset(owned), (), share)

    def _run(self) -> None:
        failing = False
        while not self._stop.wait(self.config.renew_s):
            lost: list[str] = []
            try:
                lost = self.renew()
                self.heartbeat()
                failing = False
            except redis.RedisError as exc:
                if not failing:
                    log.warning(
                        "heartbeat of worker %s failed (%s); retrying every %.1f s", self.id, exc, self.config.renew_s
                    )
                failing = True
                self._quiet_until = time.monotonic() + self.config.ttl_s
            except Exception:
                log.exception("lease renewal round failed")
            for camera_id in lost:  # whatever the heartbeat did: a lost lease always stops its camera
                if self._on_lost is not None:
                    self._on_lost(camera_id)
