"""`RedisStreamBus`: the distributed-mode `EventBus`, a Redis stream with consumer groups, spooling in outages.

- `publish` → `XADD stream MAXLEN ~ maxlen * id <id> seq <seq> event <IncidentEvent JSON>`. When Redis cannot take it
  (refused, timeout, LOADING, READONLY, OOM) the event goes to the local spool (pipelines/bus/spool.py, fsync'ed JSON
  lines) and `publish` returns within the socket timeouts (0.5 s each). While the spool holds anything new events
  go there too, so the stream keeps the publish order; a flusher thread moves the spool to the stream in order
  (pipelined batches, backoff), and a new bus on the same `spool_dir` flushes what a stopped or crashed one left.
  Past `spool_max_bytes` the spool drops the oldest `updated` events (a later event of the incident supersedes
  them), never `opened`/`closed` ones: it exceeds the cap rather than lose those. `spool_stats` counts the drops.
  A crash between an XADD batch and the spool commit sends that batch twice: harmless, since every consumer
  de-duplicates by the event's stable `(id, seq)` (the store's `apply_event` does).
- `consume` → `XGROUP CREATE … 0 MKSTREAM` on first use (again if a Redis restart lost the group), then `XAUTOCLAIM`
  of entries idle for `redeliver_after_s` (a dead or stuck consumer's), else `XREADGROUP … BLOCK … >`.
  `Delivery.token` is the entry id; `attempt` is 1, or XPENDING's delivery count for a reclaimed entry. A lease
  grant entry (pipelines/bus/entries.py) is delivered as a `FenceGrant`. Malformed entries are logged and acked.
  While Redis is down `consume` logs (rate-limited), waits and returns `[]`.
- `ack` → `XACK`; one that cannot reach Redis is logged and dropped (the entries are redelivered later).
- `backlog(group)` → spooled + XINFO GROUPS `lag` + `pending` (XLEN for a group not created yet).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import redis
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from redis.exceptions import OutOfMemoryError, ReadOnlyError, ResponseError

from pipelines.bus.base import Delivery
from pipelines.bus.entries import decode_entry, droppable_event, fields_from_json, fields_of
from pipelines.bus.redis_client import check_url, redis_client
from pipelines.bus.spool import Spool, SpoolPump, SpoolStats
from pipelines.events import IncidentEvent
from vision.redact import redact_url

log = logging.getLogger(__name__)

# Redis cannot take the write now, but may later: spool instead of raising.
UNAVAILABLE: tuple[type[Exception], ...] = (redis.ConnectionError, redis.TimeoutError, ReadOnlyError, OutOfMemoryError)
_ACK_ERRORS: tuple[type[Exception], ...] = (*UNAVAILABLE, ResponseError)
_BACKOFF_MAX_S = 2.0
_LOG_EVERY_S = 10.0

Entry = tuple[bytes, dict[bytes, bytes]]  # a stream entry as redis-py returns it: (entry id, fields)


class BusUnavailableError(RuntimeError):
    """Redis could not be reached to answer a query (publish and consume never raise this)."""


class RedisBusConfig(BaseModel):
    """Options of `RedisStreamBus` (validated, so a bad value fails at construction with the field's name)."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(
        repr=False, description="redis://, rediss:// or unix:// URL (kept out of repr: it may hold a password)"
    )
    spool_dir: Path = Field(description="Directory of the outage spool (one file per stream)")
    prefix: str = Field("safewatch", min_length=1, description="Key namespace; the stream defaults to <prefix>:events")
    stream: str | None = Field(None, min_length=1, description="Stream key (default <prefix>:events)")
    maxlen: int = Field(100_000, ge=1, description="Approximate stream length cap (XADD MAXLEN ~)")
    redeliver_after_s: float = Field(30.0, gt=0, description="Unacked deliveries idle this long are reclaimed")
    socket_timeout_s: float = Field(0.5, gt=0, description="Per-command socket timeout (bounds a publish in outages)")
    connect_timeout_s: float = Field(0.5, gt=0, description="TCP connect timeout")
    max_block_s: float = Field(0.5, gt=0, description="Longest XREADGROUP BLOCK (close waits for consumers this long)")
    flush_batch: int = Field(500, ge=1, description="Spooled events per pipelined XADD batch")
    close_drain_s: float = Field(2.0, ge=0, description="How long close() keeps flushing the spool")
    spool_max_bytes: int | None = Field(1 << 30, ge=1, description="Spool cap: drops oldest `updated` (None: no cap)")

    @property
    def stream_key(self) -> str:
        return self.stream or f"{self.prefix}:events"


class _Throttle:
    """At most one log line per message per `every_s`, with the count of the ones held back (outages repeat)."""

    def __init__(self, every_s: float = _LOG_EVERY_S) -> None:
        self._every_s = every_s
        self._next: dict[str, float] = {}
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()

    def warning(self, message: str, exc: BaseException, **extra: Any) -> None:
        with self._lock:
            now = time.monotonic()
            if now < self._next.get(message, 0.0):
                self._held[message] = self._held.get(message, 0) + 1
                return
            held = self._held.pop(message, 0)
            self._next[message] = now + self._every_s
        log.warning("%s: %s", message, redact_url(str(exc)), extra={**extra, "suppressed": held})


def _client(url: str, timeout_s: float, connect_timeout_s: float) -> redis.Redis:
    # Bytes replies in RESP2 (the shapes parsed here); one immediate retry reconnects a pooled socket that went stale
    # while Redis restarted, and without backoff a publish during an outage still fails within the timeouts.
    return redis_client(
        url,
        decode_responses=False,
        timeout_s=timeout_s,
        connect_timeout_s=connect_timeout_s,
        retry_once=True,
        resp2=True,
    )


class RedisStreamBus:
    """`EventBus` on a Redis stream (see the module docstring). Thread-safe; one bus per `spool_dir` + stream."""

    def __init__(
        self,
        url: str,
        *,
        spool_dir: Path,
        prefix: str = "safewatch",
        stream: str | None = None,
        maxlen: int = 100_000,
        redeliver_after_s: float = 30.0,
        socket_timeout_s: float = 0.5,
        connect_timeout_s: float = 0.5,
        max_block_s: float = 0.5,
        flush_batch: int = 500,
        close_drain_s: float = 2.0,
        spool_max_bytes: int | None = 1 << 30,
    ) -> None:
        try:
            cfg = RedisBusConfig(
                url=url, spool_dir=spool_dir, prefix=prefix, stream=stream, maxlen=maxlen,
                redeliver_after_s=redeliver_after_s, socket_timeout_s=socket_timeout_s,
                connect_timeout_s=connect_timeout_s, max_block_s=max_block_s, flush_batch=flush_batch,
                close_drain_s=close_drain_s, spool_max_bytes=spool_max_bytes,
            )  # fmt: skip
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"])
            raise ValueError(f"RedisStreamBus option {field!r}: {first['msg']}") from None
        check_url(url)
        self.config = cfg
        self.stream = cfg.stream_key
        self._client = _client(url, cfg.socket_timeout_s, cfg.connect_timeout_s)
        self._blocking = _client(url, cfg.max_block_s + cfg.socket_timeout_s, cfg.connect_timeout_s)
        try:
            self._check_credentials()
            self._spool = Spool(cfg.spool_dir, self.stream, max_bytes=cfg.spool_max_bytes, droppable=droppable_event)
        except BaseException:
            self._client.close()
            self._blocking.close()
            raise
        self._cond = threading.Condition()  # guards the spool, _closed and _reads; notified when either shrinks
        self._closed = False
        self._reads = 0
        self._stop = threading.Event()
        self._groups: set[str] = set()
        self._cursors: dict[str, bytes] = {}
        self._next_reclaim: dict[str, float] = {}
        self._reclaim_every_s = min(cfg.redeliver_after_s / 2, 5.0)
        self._down = _Throttle()
        self._pump = SpoolPump(
            self._spool, self._cond, self._send, batch=cfg.flush_batch, on_error=self._flush_failed,
            name=f"bus-spool-{self.stream}", backoff_s=(0.1, _BACKOFF_MAX_S),
        )  # fmt: skip

    # ---- EventBus -------------------------------------------------------------------------------------------------
    def publish(self, event: IncidentEvent) -> None:
        line = event.model_dump_json()
        with self._cond:
            if self._closed:
                raise RuntimeError("bus is closed")
            if self._spool.pending == 0:
                try:
                    self._client.xadd(self.stream, fields_of(event.id, event.seq, line), **self._trim())
                    return
                except UNAVAILABLE as exc:
                    self._down.warning("redis unavailable, spooling events", exc, spool=str(self._spool.path))
            self._spool.append(line)
        self._pump.wake()

    def consume(self, group: str, consumer: str, *, max_count: int = 100, timeout_s: float = 1.0) -> list[Delivery]:
        deadline = time.monotonic() + max(timeout_s, 0.0)
        while not self._closed:
            try:
                self._ensure_group(group)
                out = self._reclaim(group, consumer, max_count)
                if not out:
                    out = self._read_new(group, consumer, max_count, deadline - time.monotonic())
            except ResponseError as exc:
                if not str(exc).startswith("NOGROUP"):
                    raise
                log.warning(
                    "consumer group vanished (Redis restarted without data?); recreating", extra={"group": group}
                )
                self._groups.discard(group)
                continue
            except UNAVAILABLE as exc:
                self._down.warning("redis unavailable, consumer waiting", exc, group=group)
                self._stop.wait(min(max(deadline - time.monotonic(), 0.0), _BACKOFF_MAX_S))
                return []
            if out or time.monotonic() >= deadline:
                return out
        return []

    def ack(self, group: str, deliveries: Sequence[Delivery]) -> None:
        if not deliveries:
            return
        try:
            self._client.xack(self.stream, group, *[d.token for d in deliveries])
        except _ACK_ERRORS as exc:
            self._down.warning("ack failed; the deliveries will be redelivered", exc, group=group)

    def close(self) -> None:
        """Stop; keep flushing the spool for up to `close_drain_s` first (what is left stays for the next bus)."""
        with self._cond:
            if self._closed:
                return
            self._closed = True
        self._stop.set()
        with self._cond:  # blocked XREADGROUPs return within max_block_s; then their sockets can be closed
            self._cond.wait_for(lambda: self._reads == 0, self.config.max_block_s + self.config.socket_timeout_s + 1)
        if self._pump.stop(self.config.close_drain_s, grace_s=2 * (self.config.socket_timeout_s + 1.0)):
            self._spool.close()
        else:
            log.error("spool flusher did not stop; leaving the spool open", extra={"stream": self.stream})
        self._client.close()
        self._blocking.close()

    # ---- observability --------------------------------------------------------------------------------------------
    @property
    def spooled(self) -> int:
        """Events waiting in the local spool for Redis."""
        with self._cond:
            return self._spool.pending

    def spool_stats(self) -> SpoolStats:
        """Size of the outage spool and what its byte cap dropped (for `/metrics` and the worker heartbeat)."""
        with self._cond:
            return self._spool.stats

    def wait_flushed(self, timeout_s: float) -> bool:
        """Wait until the spool is empty; True when it is."""
        return self._pump.wait_empty(timeout_s)

    def backlog(self, group: str) -> int:
        """Events `group` has not acked: spooled + not yet delivered (lag) + delivered and unacked (pending)."""
        spooled = self.spooled
        try:
            return spooled + self._stream_backlog(group)
        except UNAVAILABLE as exc:
            raise BusUnavailableError(f"backlog of group {group!r}: redis unavailable ({exc})") from exc

    def pending(self, group: str) -> int:
        """Deliveries handed out to `group` and not yet acked."""
        try:
            summary = self._client.xpending(self.stream, group)
        except ResponseError:  # no stream or no group
            return 0
        return int(summary["pending"])

    # ---- internals ------------------------------------------------------------------------------------------------
    def _trim(self) -> dict[str, Any]:
        return {"maxlen": self.config.maxlen, "approximate": True}

    def _check_credentials(self) -> None:
        """Fail at construction on a wrong password (a configuration error); an unreachable Redis is fine."""
        try:
            self._client.ping()
        except redis.AuthenticationError as exc:
            raise ValueError(f"redis url {redact_url(self.config.url)!r}: authentication failed ({exc})") from None
        except UNAVAILABLE as exc:
            log.warning("redis unreachable at start; events will be spooled: %s", redact_url(str(exc)))

    def _ensure_group(self, group: str) -> None:
        if group in self._groups:
            return
        try:
            self._client.xgroup_create(self.stream, group, id="0", mkstream=True)
        except ResponseError as exc:
            if not str(exc).startswith("BUSYGROUP"):
                raise
        self._groups.add(group)

    def _reclaim(self, group: str, consumer: str, max_count: int) -> list[Delivery]:
        """Take over entries idle for `redeliver_after_s` (XAUTOCLAIM, resuming the scan where the last one ended)."""
        now = time.monotonic()
        cursor = self._cursors.get(group, b"0-0")
        if cursor == b"0-0" and now < self._next_reclaim.get(group, 0.0):
            return []
        idle_ms = int(self.config.redeliver_after_s * 1000)
        reply = self._client.xautoclaim(self.stream, group, consumer, idle_ms, start_id=cursor, count=max_count)
        self._cursors[group] = cursor = bytes(reply[0])
        if cursor == b"0-0":
            self._next_reclaim[group] = now + self._reclaim_every_s
        entries = [(bytes(eid), fields) for eid, fields in reply[1] if fields is not None]
        if gone := [bytes(eid) for eid, fields in reply[1] if fields is None]:  # trimmed away (Redis 6.2 replies)
            self._client.xack(self.stream, group, *gone)
        if not entries:
            return []
        attempts = self._attempts(group, consumer, entries)
        return self._deliver(group, entries, attempts)

    def _attempts(self, group: str, consumer: str, entries: list[Entry]) -> dict[bytes, int]:
        rows = cast(
            list[dict[str, Any]],
            self._client.xpending_range(
                self.stream, group, entries[0][0], entries[-1][0], len(entries) + 100, consumername=consumer
            ),
        )
        return {bytes(r["message_id"]): int(r["times_delivered"]) for r in rows}

    def _read_new(self, group: str, consumer: str, max_count: int, remaining_s: float) -> list[Delivery]:
        block = int(min(remaining_s, self.config.max_block_s) * 1000) if remaining_s > 0 else 0
        with self._cond:
            if self._closed:
                return []
            self._reads += 1  # close() waits for blocked reads to end before it disconnects their sockets
        try:
            reply = cast(
                list[Any] | None,
                self._blocking.xreadgroup(group, consumer, {self.stream: ">"}, count=max_count, block=block or None),
            )
        finally:
            with self._cond:
                self._reads -= 1
                self._cond.notify_all()
        entries: list[Entry] = [(bytes(eid), fields) for _, items in reply or [] for eid, fields in items]
        return self._deliver(group, entries, {})

    def _deliver(self, group: str, entries: list[Entry], attempts: dict[bytes, int]) -> list[Delivery]:
        out: list[Delivery] = []
        bad: list[bytes] = []
        for entry_id, fields in entries:
            event = decode_entry(entry_id, fields)
            if event is None:
                bad.append(entry_id)
                continue
            out.append(Delivery(event=event, token=entry_id.decode(), attempt=attempts.get(entry_id, 1)))
        if bad:
            log.error("acking malformed stream entries", extra={"group": group, "entries": [b.decode() for b in bad]})
            self._client.xack(self.stream, group, *bad)
        return out

    def _stream_backlog(self, group: str) -> int:
        try:
            groups = self._client.xinfo_groups(self.stream)
        except ResponseError:  # no such key: nothing published yet
            return 0
        for info in groups:
            if bytes(info["name"]).decode() != group:
                continue
            lag = info.get("lag")
            if lag is None:  # unknown after an XDEL (or Redis < 7): count what follows last-delivered-id (~ the lag)
                last = bytes(info["last-delivered-id"]).decode()
                lag = len(cast(list[Any], self._client.xrange(self.stream, min=f"({last}", max="+")))
            return int(lag) + int(info["pending"])
        return self._client.xlen(self.stream)

    # ---- spool flusher (SpoolPump's sink) --------------------------------------------------------------------------
    def _send(self, lines: list[str]) -> None:
        pipe = self._client.pipeline(transaction=False)
        for line in lines:
            fields = fields_from_json(line)
            if fields is None:
                log.error("dropping an unreadable spool record", extra={"spool": str(self._spool.path)})
                continue
            pipe.xadd(self.stream, fields, **self._trim())
        pipe.execute()

    def _flush_failed(self, exc: Exception) -> None:
        self._down.warning("spool flush failed, will retry", exc, spool=str(self._spool.path))
