"""Evidence manifests: per incident, the sha256 of every evidence file, the models and the camera config in force,
optionally signed with HMAC-SHA256 over a canonical JSON serialisation; and their verification.

Canonical form: the manifest without its `signature` field, `json.dumps(sort_keys=True, separators=(",", ":"),
ensure_ascii=False)` in UTF-8. The signature is `{"alg": "HMAC-SHA256", "key_id": ..., "value": hex}`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from vision.digest import sha256_file
from vision.media.results import WriteResult, write_bytes_atomic
from vision.redact import redact_url

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 1
SIGNATURE_ALG = "HMAC-SHA256"


@dataclass(frozen=True, slots=True)
class Problem:
    """One verification failure: the manifest, the evidence file concerned (if any) and what is wrong."""

    manifest: Path
    message: str
    file: str | None = None

    def __str__(self) -> str:
        where = f"{self.manifest}" + (f" [{self.file}]" if self.file else "")
        return f"{where}: {self.message}"


def canonical_json(obj: Mapping[str, Any]) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def config_sha256(config: Mapping[str, Any]) -> str:
    """sha256 of a camera config (its JSON-able dict, e.g. `model_dump(mode="json")`) in canonical form."""
    return hashlib.sha256(canonical_json(config)).hexdigest()


def derive_key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:12]


def _mac(manifest: Mapping[str, Any], key: bytes) -> str:
    body = {k: v for k, v in manifest.items() if k != "signature"}
    return hmac.new(key, canonical_json(body), hashlib.sha256).hexdigest()


def sign(manifest: Mapping[str, Any], key: bytes, key_id: str | None = None) -> dict[str, Any]:
    """A copy of `manifest` with its `signature` field set."""
    out = {k: v for k, v in manifest.items() if k != "signature"}
    out["signature"] = {"alg": SIGNATURE_ALG, "key_id": key_id or derive_key_id(key), "value": _mac(out, key)}
    return out


def _iso(t: datetime | None) -> str | None:
    return t.isoformat() if t is not None else None


def build_manifest(
    *,
    incident_id: str,
    camera_id: str,
    rule: str,
    started_at: datetime,
    ended_at: datetime | None,
    evidence_dir: Path,
    files: Sequence[WriteResult],
    models: Mapping[str, str],
    camera_config_sha256: str,
    created_at: datetime | None = None,
) -> dict[str, Any]:
    """The manifest of one incident. `files` are the write results (paths made relative to `evidence_dir`; missing
    ones are listed with their reason); `models` maps model name → sha256 of its file."""
    present: dict[str, dict[str, Any]] = {}
    missing: list[dict[str, str]] = []
    for f in files:
        rel = f.path.relative_to(evidence_dir).as_posix() if f.path.is_absolute() else f.path.as_posix()
        if f.missing or f.sha256 is None:
            missing.append({"path": rel, "reason": redact_url(f.reason or "not written")})  # may quote a source
        else:
            present[rel] = {"sha256": f.sha256, "size": f.size}
    return {
        "version": MANIFEST_VERSION,
        "incident_id": incident_id,
        "camera_id": camera_id,
        "rule": rule,
        "started_at": _iso(started_at),
        "ended_at": _iso(ended_at),
        "files": present,
        "missing": missing,
        "models": [{"name": n, "sha256": h} for n, h in sorted(models.items())],
        "camera_config_sha256": camera_config_sha256,
        "created_at": _iso(created_at or datetime.now(UTC)),
    }


def write_manifest(
    evidence_dir: Path, manifest: Mapping[str, Any], *, key: bytes | None = None, key_id: str | None = None
) -> WriteResult:
    """Write `manifest.json` into `evidence_dir`, signed when `key` is given; errors → a `missing` result."""
    body = sign(manifest, key, key_id) if key else dict(manifest)
    data = json.dumps(body, sort_keys=True, indent=2, ensure_ascii=False).encode("utf-8") + b"\n"
    return write_bytes_atomic(evidence_dir / MANIFEST_NAME, data)


def _check_signature(path: Path, manifest: Mapping[str, Any], key: bytes) -> list[Problem]:
    sig = manifest.get("signature")
    if not isinstance(sig, dict) or not isinstance(sig.get("value"), str):
        return [Problem(path, "not signed (a verification key was given)")]
    if sig.get("alg") != SIGNATURE_ALG:
        return [Problem(path, f"unsupported signature algorithm {sig.get('alg')!r}")]
    if not hmac.compare_digest(sig["value"], _mac(manifest, key)):
        key_note = "" if sig.get("key_id") == derive_key_id(key) else f" (signed with key id {sig.get('key_id')!r})"
        return [Problem(path, f"bad signature{key_note}")]
    return []


def _check_file(path: Path, rel: str, entry: Any) -> Problem | None:
    p = PurePosixPath(rel)
    if p.is_absolute() or ".." in p.parts:
        return Problem(path, "path escapes the evidence directory", rel)
    target = path.parent / p
    if not isinstance(entry, dict) or not isinstance(entry.get("sha256"), str):
        return Problem(path, "no sha256 recorded", rel)
    if not target.is_file():
        return Problem(path, "file missing", rel)
    if sha256_file(target) != entry["sha256"]:
        return Problem(path, "sha256 mismatch (file changed)", rel)
    return None


def verify_manifest(path: Path, key: bytes | None = None) -> list[Problem]:
    """Problems of one manifest: unreadable, missing files, sha256 mismatches, bad/missing signature (with `key`)."""
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return [Problem(path, f"unreadable manifest: {exc}")]
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        return [Problem(path, "not an evidence manifest (no 'files' object)")]
    problems = [p for rel, e in sorted(manifest["files"].items()) if (p := _check_file(path, rel, e)) is not None]
    if key is not None:
        problems += _check_signature(path, manifest, key)
    return problems


def find_manifests(root: Path) -> list[Path]:
    return sorted(root.rglob(MANIFEST_NAME))


def verify_dir(root: Path, key: bytes | None = None) -> list[Problem]:
    """Verify every `manifest.json` under `root` (see `verify_manifest`)."""
    return [p for m in find_manifests(root) for p in verify_manifest(m, key)]
