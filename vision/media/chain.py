"""The evidence chain: an append-only, hash-linked, signed log per writing process, so that removing, reordering or
replacing an incident's evidence shows.

One chain per process that writes evidence (`safewatch run`: `main`; each `safewatch worker`: its worker id), named
in every manifest. Its log is `<media_root>/chains/<name>.jsonl`, one entry per line (canonical JSON: sorted keys,
no spaces, UTF-8), numbered by `seq` from 1; each entry names the sha256 of the one before (`prev`; the first names
`GENESIS`). The hash of an entry is the sha256 of its line (its canonical JSON, signature included).

- a `manifest` entry is written with each incident's manifest: the manifest itself carries `chain: {id, seq, prev}`
  (and `signing: {alg, key_id}`; its Ed25519 signature over the manifest file's exact bytes is `manifest.sig` beside
  it), the entry the manifest's path under the media root and the sha256 of its bytes;
- a `tombstone` entry is written by retention before it deletes an incident's folder: what it deletes (the folder,
  its size, the deleted manifest's chain, seq, prev and sha256) and why (`age`, `size`, `record`).

With a signing key every entry carries `signature: {alg: "Ed25519", key_id, value: base64}` over its canonical JSON
without the `signature` field. The head (seq and hash of the last entry) is also kept in
`<data_dir>/evidence-chain/<name>.head.json`, beside a lock file: a restart continues the chain, a log cut short
while the process was down leaves a visible gap instead of being silently continued, and processes sharing a data
dir append in turn. A crash between writing a manifest and appending its entry leaves a manifest the log does not
list (`safewatch evidence verify` reports it): the chain never skips silently.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import logging
import os
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from vision.digest import sha256_file
from vision.media.manifest import MANIFEST_NAME, SIGNATURE_NAME, canonical_json, write_manifest
from vision.media.results import WriteResult, write_bytes_atomic
from vision.media.signing import ALG, PUBLIC_SUFFIX, Signer
from vision.media.store import check_id

log = logging.getLogger(__name__)

CHAINS_DIR = "chains"
KEYS_DIR = "keys"  # <media_root>/chains/keys/<key id>.pub.pem: the public keys that signed (for convenience only)
GENESIS = "0" * 64
_TAIL_BYTES = 1 << 16


def log_path(media_root: Path, chain: str) -> Path:
    return media_root / CHAINS_DIR / f"{check_id('chain name', chain)}.jsonl"


def entry_hash(entry: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json(entry)).hexdigest()


def signed_body(entry: Mapping[str, Any]) -> bytes:
    """What an entry's signature covers: its canonical JSON without the `signature` field."""
    return canonical_json({k: v for k, v in entry.items() if k != "signature"})


def decode_signature(value: object) -> bytes | None:
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value, validate=True)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class Head:
    chain: str
    seq: int
    hash: str


def read_tail(path: Path) -> dict[str, Any] | None:
    """The last complete entry of a log, or None (no log, empty, or the last line unreadable)."""
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - _TAIL_BYTES))
            data = f.read()
    except OSError:
        return None
    lines = [line for line in data.split(b"\n") if line.strip()]
    if not lines:
        return None
    try:
        entry = json.loads(lines[-1])
    except ValueError:
        return None
    return entry if isinstance(entry, dict) else None


def manifest_ref(folder: Path) -> dict[str, Any] | None:
    """The chain position of the manifest in `folder` (chain, seq, prev, sha256 of its bytes), or None when it has
    no chained manifest (an incident still open, evidence written before chains)."""
    path = folder / MANIFEST_NAME
    try:
        data = json.loads(path.read_bytes())
        digest = sha256_file(path)
    except (OSError, ValueError):
        return None
    chain = data.get("chain") if isinstance(data, dict) else None
    if not isinstance(chain, dict):
        return None
    return {"chain": chain.get("id"), "seq": chain.get("seq"), "prev": chain.get("prev"), "manifest_sha256": digest}


class EvidenceChain:
    """The writer of one chain: appends manifest and tombstone entries (thread- and process-safe)."""

    def __init__(
        self,
        media_root: Path,
        state_dir: Path,
        name: str,
        *,
        signer: Signer | None = None,
        hmac_key: bytes | None = None,
    ) -> None:
        self.media_root = Path(media_root)
        self.name = check_id("chain name", name)
        self.signer = signer
        self.hmac_key = hmac_key
        self.log = log_path(self.media_root, name)
        self._state = state_dir / f"{name}.head.json"
        self._lockfile = state_dir / f"{name}.lock"
        self._lock = threading.Lock()
        state_dir.mkdir(parents=True, exist_ok=True)
        self.log.parent.mkdir(parents=True, exist_ok=True)
        if signer is not None:
            self._publish_key(signer)

    # -- writing -------------------------------------------------------------------------------------------------
    def write_manifest(self, evidence_dir: Path, manifest: Mapping[str, Any]) -> WriteResult:
        """Write `manifest.json` (with its chain position), `manifest.sig` and the chain entry; a manifest that cannot
        be written is a `missing` result and takes no place in the chain."""
        with self._locked() as head:
            body = dict(manifest)
            body["chain"] = {"id": self.name, "seq": head.seq + 1, "prev": head.hash}
            if self.signer is not None:
                body["signing"] = {"alg": ALG, "key_id": self.signer.key_id, "signature_file": SIGNATURE_NAME}
            result = write_manifest(evidence_dir, body, key=self.hmac_key)
            if result.missing or result.sha256 is None:
                return result
            if self.signer is not None:
                self._sign_file(evidence_dir / MANIFEST_NAME)
            self._append(
                head,
                {
                    "kind": "manifest",
                    "incident_id": manifest.get("incident_id"),
                    "camera_id": manifest.get("camera_id"),
                    "path": self._rel(evidence_dir / MANIFEST_NAME),
                    "manifest_sha256": result.sha256,
                },
            )
        return result

    def tombstone(self, folder: Path, *, incident_id: str, camera_id: str, reason: str, size: int) -> None:
        """Record, before it happens, that retention deletes the incident folder `folder` and why. Raises OSError
        when the entry cannot be written (the caller then keeps the folder)."""
        with self._locked() as head:
            self._append(
                head,
                {
                    "kind": "tombstone",
                    "incident_id": incident_id,
                    "camera_id": camera_id,
                    "path": self._rel(folder),
                    "reason": reason,
                    "bytes": size,
                    "deleted": manifest_ref(folder),
                },
            )

    def head(self) -> Head:
        with self._locked() as head:
            return head

    # -- internals -----------------------------------------------------------------------------------------------
    def _append(self, head: Head, fields: Mapping[str, Any]) -> Head:
        entry: dict[str, Any] = {
            "chain": self.name,
            "seq": head.seq + 1,
            "prev": head.hash,
            "at": datetime.now(UTC).isoformat(timespec="milliseconds"),
            **fields,
        }
        if self.signer is not None:
            value = base64.b64encode(self.signer.sign(signed_body(entry))).decode("ascii")
            entry["signature"] = {"alg": ALG, "key_id": self.signer.key_id, "value": value}
        fd = os.open(self.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        with os.fdopen(fd, "ab") as f:
            f.write(canonical_json(entry) + b"\n")
            f.flush()
            os.fsync(f.fileno())
        new = Head(self.name, entry["seq"], entry_hash(entry))
        data = json.dumps({"chain": new.chain, "seq": new.seq, "hash": new.hash}).encode("utf-8")
        state = write_bytes_atomic(self._state, data)
        if state.missing:
            log.error("evidence chain %s: head not saved (%s); the log holds it", self.name, state.reason)
        return new

    @contextlib.contextmanager
    def _locked(self) -> Iterator[Head]:
        with self._lock, self._lockfile.open("a+b") as lockfile:
            fcntl.flock(lockfile.fileno(), fcntl.LOCK_EX)
            try:
                yield self._read_head()
            finally:
                fcntl.flock(lockfile.fileno(), fcntl.LOCK_UN)

    def _read_head(self) -> Head:
        """The saved head, reconciled with the log's last entry: a later entry in the log (a crash after appending
        it) is adopted; a log that ends earlier was cut short, and the chain continues after the saved head."""
        saved: Head | None = None
        try:
            data = json.loads(self._state.read_bytes())
            saved = Head(self.name, int(data["seq"]), str(data["hash"]))
        except (OSError, ValueError, KeyError, TypeError):
            saved = None
        tail = read_tail(self.log)
        tail_head = (
            Head(self.name, tail["seq"], entry_hash(tail))
            if tail is not None and tail.get("chain") == self.name and isinstance(tail.get("seq"), int)
            else None
        )
        if saved is None:
            return tail_head or Head(self.name, 0, GENESIS)
        if tail_head is not None and tail_head.seq > saved.seq:
            return tail_head
        if tail_head is None or tail_head.seq < saved.seq:
            ends = f"seq {tail_head.seq}" if tail_head is not None else "nothing readable"
            log.error(
                "evidence chain %s: its log %s ends at %s but this chain reached seq %d: entries were removed; "
                "continuing after seq %d",
                self.name,
                self.log,
                ends,
                saved.seq,
                saved.seq,
            )
        return saved

    def _sign_file(self, path: Path) -> None:
        assert self.signer is not None
        try:
            signature = self.signer.sign(path.read_bytes())
        except OSError as exc:
            log.error("evidence chain %s: cannot read %s to sign it: %s", self.name, path, exc)
            return
        result = write_bytes_atomic(path.with_name(SIGNATURE_NAME), signature)
        if result.missing:
            log.error("evidence chain %s: signature of %s not written (%s)", self.name, path, result.reason)

    def _publish_key(self, signer: Signer) -> None:
        path = self.log.parent / KEYS_DIR / f"{signer.key_id}{PUBLIC_SUFFIX}"
        if not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            write_bytes_atomic(path, signer.public_pem.encode("ascii"))

    def _rel(self, path: Path) -> str:
        try:
            return path.relative_to(self.media_root).as_posix()
        except ValueError:
            return path.as_posix()
