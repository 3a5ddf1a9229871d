"""A durable local queue of lines (one JSON record each): where `RedisStreamBus` parks events while Redis is down.

Layout in `directory`, per spool `name`:

- `<name>.jsonl`  the records, append-only, one line each, `fsync`ed after every append;
- `<name>.offset` how many bytes of the `.jsonl` file have been delivered (replaced atomically after each batch);
- `<name>.lock`   an exclusive `flock`, so one spool file has one owner (across threads and processes).

The reader takes a batch (`read_batch`), delivers it, then `commit`s it; once everything is delivered the file is
truncated and the offset reset. A crash between delivering a batch and committing it delivers that batch again
(at-least-once; the bus's consumers de-duplicate by `(id, seq)`). A crash in the middle of an append leaves a torn
last line without its newline: it is cut off when the spool is opened (that append never returned).

Byte cap (`max_bytes`): an append-only file cannot drop a record in place, so when an append would take the file past
the cap the spool is *compacted*: the undelivered part is copied to `<name>.jsonl.compact` without its oldest
droppable records (`droppable(line)` names their kind, e.g. "updated"; None = never dropped, e.g. opened/closed),
fsynced, the offset file set to 0, then renamed over `<name>.jsonl` (and the directory fsynced). A crash before the
rename leaves the old file with offset 0: delivered records are sent again (at-least-once, as above); a crash after
it leaves the new file with offset 0: exact. Compaction drops down to 90 % of the cap, so it runs once per ~10 % of
the cap appended rather than on every append. The batch a `SpoolPump` is sending is copied verbatim to the start of
the new file (its `commit` is translated), never dropped; one whose send failed is `abandon`ed and droppable again
(an outage must not shield the oldest `flush_batch` records). When only undroppable records remain the cap is exceeded
rather than lose one: the spool keeps them, counts it (`SpoolStats.over_cap`) and logs a warning.

Written here rather than taken from a library: the job is a few hundred lines of os.write/fsync/flock, and the queue
libraries on PyPI (persist-queue, diskcache) bring SQLite or pickle formats for what is a JSON-lines log.
`Spool` is not thread-safe: its owner serialises calls (the bus holds its lock around every call). `SpoolPump` is the
thread that drains a spool into a sink (Redis for the bus) in order.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")
_CHUNK = 1 << 20


class SpoolLockedError(RuntimeError):
    """Another owner (a bus in this or another process) holds this spool."""


@dataclass(frozen=True)
class SpoolBatch:
    lines: list[str]
    end: int  # byte offset just past the batch's last line; pass it to `commit`
    start: int = 0  # byte offset of its first line
    generation: int = 0  # compactions of the spool when it was read (a later one moved it to the file's start)


@dataclass(frozen=True)
class SpoolStats:
    """What `/metrics` shows of a spool: its size, records waiting, and what the byte cap cost."""

    bytes: int
    records: int
    dropped: dict[str, int]  # records dropped by the byte cap, by kind (e.g. {"updated": 3})
    over_cap: int  # compactions that could not get under the cap (only undroppable records left)
    max_bytes: int | None


def _never(_line: str) -> str | None:
    return None


class Spool:
    """Append-only JSON-lines spool with a persisted read offset (see the module docstring)."""

    def __init__(
        self,
        directory: Path,
        name: str,
        *,
        max_bytes: int | None = None,
        droppable: Callable[[str], str | None] = _never,
    ) -> None:
        if max_bytes is not None and max_bytes < 1:
            raise ValueError("spool max_bytes must be at least 1")
        directory.mkdir(parents=True, exist_ok=True)
        safe = _UNSAFE.sub("_", name)
        self.path = directory / f"{safe}.jsonl"
        self._compact_path = directory / f"{safe}.jsonl.compact"
        self._max_bytes, self._droppable = max_bytes, droppable
        self._compact_at = max_bytes or 0  # compact when an append would take the file past this size
        self._generation = 0
        self._reading: tuple[int, int] | None = None  # (start, end) of the batch read and not yet committed
        self._dropped: dict[str, int] = {}
        self._over_cap = 0
        self._offset_path = directory / f"{safe}.offset"
        self._lock_fd = os.open(directory / f"{safe}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock_fd)
            raise SpoolLockedError(f"spool {self.path} is in use by another bus (lock {safe}.lock is held)") from None
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._rfd = os.open(self.path, os.O_RDONLY)  # positional reads (os.pread): no stale buffer after truncation
        self._compact_path.unlink(missing_ok=True)  # a compaction that crashed before its rename
        self._cut_torn_tail()
        self._size = os.fstat(self._fd).st_size
        self._offset = self._load_offset()
        self._pending = self._count_lines(self._offset)
        self._closed = False
        if self._pending:
            log.info("spool holds undelivered records", extra={"spool": str(self.path), "records": self._pending})

    @property
    def pending(self) -> int:
        """Records appended and not yet committed."""
        return self._pending

    def append(self, line: str) -> None:
        """Append one record and fsync it. `line` must not contain a newline (JSON from json/pydantic does not)."""
        if "\n" in line or "\r" in line:
            raise ValueError("a spool record must be a single line")
        data = memoryview((line + "\n").encode("utf-8"))
        if self._max_bytes is not None and self._size + len(data) > self._compact_at:
            self._compact(len(data))
        self._size += len(data)
        while data:
            written = os.write(self._fd, data)
            data = data[written:]
        os.fsync(self._fd)
        self._pending += 1

    def read_batch(self, max_records: int) -> SpoolBatch:
        """Up to `max_records` complete records from the delivered offset on (nothing is consumed until `commit`)."""
        lines: list[str] = []
        end = self._offset
        carry = b""
        pos = self._offset
        while len(lines) < max_records:
            chunk = os.pread(self._rfd, _CHUNK, pos)
            if not chunk:
                break  # EOF; an incomplete last line (an append in progress) stays for the next batch
            pos += len(chunk)
            *complete, carry = (carry + chunk).split(b"\n")
            for raw in complete[: max_records - len(lines)]:
                end += len(raw) + 1
                lines.append(raw.decode("utf-8", errors="replace"))
        self._reading = (self._offset, end)
        return SpoolBatch(lines, end, self._offset, self._generation)

    def commit(self, batch: SpoolBatch) -> None:
        """Mark `batch` delivered; truncate the file once everything in it is delivered."""
        # A compaction since the read copied the batch verbatim to the start of the new file.
        self._offset = batch.end if batch.generation == self._generation else batch.end - batch.start
        self._reading = None
        self._pending = max(0, self._pending - len(batch.lines))
        if self._offset >= self._size:
            os.ftruncate(self._fd, 0)
            os.fsync(self._fd)
            self._offset = 0
            self._pending = 0
            self._size = 0
        self._store_offset()

    def abandon(self) -> None:
        """The batch last read was not delivered (the sink is down): the cap may drop from it again."""
        self._reading = None

    @property
    def stats(self) -> SpoolStats:
        return SpoolStats(self._size, self._pending, dict(self._dropped), self._over_cap, self._max_bytes)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        os.close(self._rfd)
        os.close(self._fd)
        fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
        os.close(self._lock_fd)

    def _compact(self, incoming: int) -> None:
        """Rewrite the undelivered part without its oldest droppable records (module docstring: byte cap)."""
        assert self._max_bytes is not None
        headroom = self._max_bytes // 10
        reading = self._reading if self._reading is not None and self._reading[0] == self._offset else None
        keep_from = reading[1] if reading is not None else self._offset  # the batch being sent stays as it is
        excess = (self._size - self._offset) + incoming - (self._max_bytes - headroom)
        cut = keep_from
        shed = 0
        for end, raw in self._records(keep_from):
            if shed >= excess:
                break
            if self._droppable(raw.decode("utf-8", errors="replace")) is not None:
                shed += len(raw) + 1
                cut = end
        dropped = self._rewrite(keep_from, cut)
        self._reading = (0, reading[1] - reading[0]) if reading is not None else None
        after = self._size + incoming
        # Reached 90 %: next compaction at the cap. Fell short: after another 10 % of the cap, or 25 % of the size
        # when over the cap (geometric, so a spool of undroppable records is not rewritten on every append).
        self._compact_at = max(self._max_bytes, after + max(headroom, after // 4 if after > self._max_bytes else 0))
        if dropped:
            log.warning(
                "spool over its byte cap (%d bytes): dropped the oldest %s",
                self._max_bytes,
                ", ".join(f"{n} {kind}" for kind, n in sorted(dropped.items())),
                extra={"spool": str(self.path), "dropped": dropped},
            )
        if self._size + incoming > self._max_bytes:
            self._over_cap += 1
            log.warning(
                "spool over its byte cap (%d bytes) with nothing left to drop: keeping %d undroppable records "
                "(%d bytes)",
                self._max_bytes,
                self._pending,
                self._size,
                extra={"spool": str(self.path)},
            )

    def _rewrite(self, keep_from: int, cut: int) -> dict[str, int]:
        """Copy [offset, keep_from) verbatim, then the records after it except droppable ones ending at or before
        `cut`, to a new file that replaces the spool (fsync, offset 0, rename); returns the drops by kind."""
        dropped: dict[str, int] = {}
        kept = 0
        with self._compact_path.open("wb") as out:
            for end, raw in self._records(self._offset):
                kind = self._droppable(raw.decode("utf-8", errors="replace")) if keep_from < end <= cut else None
                if kind is not None:
                    dropped[kind] = dropped.get(kind, 0) + 1
                    continue
                out.write(raw + b"\n")
                kept += 1
            out.flush()
            os.fsync(out.fileno())
            size = out.tell()
        self._offset = 0
        self._store_offset()  # before the rename: a crash in between re-sends delivered records, never skips any
        os.replace(self._compact_path, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        os.close(self._rfd)
        os.close(self._fd)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        self._rfd = os.open(self.path, os.O_RDONLY)
        self._size, self._pending = size, kept
        self._generation += 1
        for kind, n in dropped.items():
            self._dropped[kind] = self._dropped.get(kind, 0) + n
        return dropped

    def _records(self, start: int) -> Iterator[tuple[int, bytes]]:
        """(offset just past it, the record without its newline) of each complete record from `start` on."""
        end, pos, carry = start, start, b""
        while chunk := os.pread(self._rfd, _CHUNK, pos):
            pos += len(chunk)
            *complete, carry = (carry + chunk).split(b"\n")
            for raw in complete:
                end += len(raw) + 1
                yield end, raw

    def _cut_torn_tail(self) -> None:
        end = os.fstat(self._fd).st_size
        if end == 0 or os.pread(self._rfd, 1, end - 1) == b"\n":
            return
        keep = 0
        pos = max(0, end - _CHUNK)
        while True:  # find the last newline, scanning backwards a chunk at a time
            idx = os.pread(self._rfd, end - pos, pos).rfind(b"\n")
            if idx >= 0:
                keep = pos + idx + 1
                break
            if pos == 0:
                break
            end, pos = pos, max(0, pos - _CHUNK)
        log.warning("spool: cut a torn last record (crash during an append)", extra={"spool": str(self.path)})
        os.ftruncate(self._fd, keep)
        os.fsync(self._fd)

    def _load_offset(self) -> int:
        try:
            offset = int(self._offset_path.read_text(encoding="ascii").strip() or 0)
        except FileNotFoundError:
            return 0
        except ValueError:
            log.warning("spool: unreadable offset file, delivering from the start", extra={"spool": str(self.path)})
            return 0
        size = os.fstat(self._fd).st_size
        if not 0 <= offset <= size:  # crashed between truncating the file and resetting the offset
            return 0
        if offset and os.pread(self._rfd, 1, offset - 1) != b"\n":
            return 0  # not on a record boundary: delivering again is safer than skipping
        return offset

    def _store_offset(self) -> None:
        tmp = self._offset_path.with_suffix(".offset.tmp")
        with tmp.open("w", encoding="ascii") as f:
            f.write(str(self._offset))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self._offset_path)

    def _count_lines(self, start: int) -> int:
        count = 0
        while chunk := os.pread(self._rfd, _CHUNK, start):
            count += chunk.count(b"\n")
            start += len(chunk)
        return count


class SpoolPump:
    """Moves a spool's records, in order, to `send` on a background thread, retrying with backoff until it succeeds.

    `lock` is the owner's lock around every use of `spool` (the owner appends under it, and decides under it whether
    a record goes to the spool at all). The pump holds it only to read a batch and to commit it, never during
    `send`, and notifies it after each commit. `send` raising leaves the batch in the spool (`on_error` is told).
    """

    def __init__(
        self,
        spool: Spool,
        lock: threading.Condition,
        send: Callable[[list[str]], None],
        *,
        batch: int = 500,
        on_error: Callable[[Exception], None] | None = None,
        name: str = "spool-pump",
        backoff_s: tuple[float, float] = (0.1, 2.0),
    ) -> None:
        self._spool, self._lock, self._send = spool, lock, send
        self._batch = batch
        self._on_error = on_error or (lambda exc: log.warning("spool pump: send failed: %s", exc))
        self._backoff_min_s, self._backoff_max_s = backoff_s
        self._stopping = False
        self._deadline = 0.0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Records were appended: send them (now, or when the current backoff ends)."""
        self._wake.set()

    def wait_empty(self, timeout_s: float) -> bool:
        """Wait until every record is sent; True when the spool is empty."""
        with self._lock:
            return self._lock.wait_for(lambda: self._spool.pending == 0, timeout_s)

    def stop(self, drain_s: float, grace_s: float = 2.0) -> bool:
        """Keep sending for up to `drain_s`, then stop; True when the thread has ended (within `grace_s` more)."""
        with self._lock:
            self._stopping = True
            self._deadline = time.monotonic() + drain_s
        self._stop.set()
        self._wake.set()
        self._thread.join(drain_s + grace_s)
        return not self._thread.is_alive()

    def _run(self) -> None:
        backoff = self._backoff_min_s
        while True:
            with self._lock:
                pending, stopping = self._spool.pending, self._stopping
            left_s = self._deadline - time.monotonic()
            if pending == 0 or (stopping and left_s <= 0):
                if stopping:
                    if pending:
                        log.warning("spool pump stopped with records left", extra={"records": pending})
                    return
                self._wake.wait(1.0)
                self._wake.clear()
                continue
            try:
                self._pump_batch()
                backoff = self._backoff_min_s
                continue
            except Exception as exc:  # keep the batch; the sink being down is the expected case
                self._on_error(exc)
            if stopping:
                time.sleep(min(backoff, max(left_s, 0.0)))
            else:
                self._stop.wait(backoff)
            backoff = min(backoff * 2, self._backoff_max_s)

    def _pump_batch(self) -> None:
        with self._lock:
            batch = self._spool.read_batch(self._batch)
        try:
            self._send(batch.lines)
        except BaseException:
            with self._lock:
                self._spool.abandon()
            raise
        with self._lock:
            self._spool.commit(batch)
            self._lock.notify_all()
