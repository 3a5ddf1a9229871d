"""Evidence manifests: per incident, the sha256 of every evidence file, the models and the camera config in force,
optionally signed with HMAC-SHA256 over a canonical JSON serialisation; and their verification.

Public-key signatures (`vision/media/chain.py` writes them): a manifest with `signing: {alg: "Ed25519", key_id}`
has its Ed25519 signature over the exact bytes of `manifest.json` in `manifest.sig` beside it (raw 64 bytes), so
`openssl pkeyutl -verify -pubin -inkey pub.pem -rawin -in manifest.json -sigfile manifest.sig` checks it. HMAC stays
for evidence signed before (and for deployments that set both keys): only a holder of the HMAC key can check it.

Canonical form: the manifest without its `signature` field, `json.dumps(sort_keys=True, separators=(",", ":"),
ensure_ascii=False)` in UTF-8. The signature is `{"alg": "HMAC-SHA256", "key_id": ..., "value": hex}`.

Version 2 adds `clips`: for each written clip of the incident, `{"path", "index", "start_offset_s", "duration_s"}`
(seconds from the incident's start to the clip's first frame, negative in the pre-roll; seconds from its first to
its last frame). Like every field but `signature` it is covered by the signature, and each clip must be one of the
`files` (whose sha256 it has). Version 1 manifests (no `clips`) verify as before; their clips are listed without times.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

from vision.digest import sha256_file
from vision.media.clip_plan import clip_index
from vision.media.results import WriteResult, write_bytes_atomic
from vision.media.signing import ALG, PublicKeys
from vision.redact import redact_url

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
MANIFEST_VERSION = 2
SIGNATURE_ALG = "HMAC-SHA256"
SIGNATURE_NAME = "manifest.sig"  # the Ed25519 signature of manifest.json's bytes


@dataclass(frozen=True, slots=True)
class Problem:
    """One verification failure: the manifest, the evidence file concerned (if any) and what is wrong."""

    manifest: Path
    message: str
    file: str | None = None

    def __str__(self) -> str:
        where = f"{self.manifest}" + (f" [{self.file}]" if self.file else "")
        return f"{where}: {self.message}"


@dataclass(frozen=True, slots=True)
class ClipEntry:
    """One clip of an incident: its file, where it starts relative to the incident's start (negative in the pre-roll)
    and how long it runs (first to last frame), and its sha256; times and sha256 are None where no manifest records
    them (an incident still open, a version 1 manifest)."""

    path: Path
    start_offset_s: float | None = None
    duration_s: float | None = None
    sha256: str | None = None

    @property
    def index(self) -> int:
        index = clip_index(self.path.name)
        if index is None:
            raise ValueError(f"not a clip file name: {self.path.name!r}")
        return index


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
    clips: Sequence[ClipEntry] = (),
) -> dict[str, Any]:
    """The manifest of one incident. `files` are the write results (paths made relative to `evidence_dir`; missing
    ones are listed with their reason); `models` maps model name → sha256 of its file; `clips` the timing of each
    written clip (listed in index order, each one of `files`)."""
    present: dict[str, dict[str, Any]] = {}
    missing: list[dict[str, str]] = []

    def rel(path: Path) -> str:
        return path.relative_to(evidence_dir).as_posix() if path.is_absolute() else path.as_posix()

    for f in files:
        if f.missing or f.sha256 is None:
            missing.append({"path": rel(f.path), "reason": redact_url(f.reason or "not written")})  # may quote a source
        else:
            present[rel(f.path)] = {"sha256": f.sha256, "size": f.size}
    timed = [
        {"path": rel(c.path), "index": c.index, "start_offset_s": c.start_offset_s, "duration_s": c.duration_s}
        for c in sorted(clips, key=lambda c: c.index)
        if rel(c.path) in present
    ]
    return {
        "version": MANIFEST_VERSION,
        "incident_id": incident_id,
        "camera_id": camera_id,
        "rule": rule,
        "started_at": _iso(started_at),
        "ended_at": _iso(ended_at),
        "files": present,
        "missing": missing,
        "clips": timed,
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


def _check_clips(path: Path, manifest: Mapping[str, Any]) -> list[Problem]:
    """Each timed clip (version 2) names one of the manifest's files, under its own index."""
    clips = manifest.get("clips", [])
    if not isinstance(clips, list):
        return [Problem(path, "'clips' is not a list")]
    problems = []
    for clip in clips:
        rel = clip.get("path") if isinstance(clip, dict) else None
        if not isinstance(rel, str) or rel not in manifest["files"]:
            problems.append(
                Problem(path, "clip entry names no file of the manifest", rel if isinstance(rel, str) else None)
            )
        elif clip.get("index") != clip_index(rel):
            problems.append(Problem(path, "clip index does not match its file name", rel))
    return problems


def _check_ed25519(path: Path, manifest: Mapping[str, Any], keys: PublicKeys) -> list[Problem]:
    signing = manifest.get("signing")
    if not isinstance(signing, dict) or signing.get("alg") != ALG or not isinstance(signing.get("key_id"), str):
        return [Problem(path, "no Ed25519 signature (the manifest names no Ed25519 signing key)")]
    kid = signing["key_id"]
    try:
        verdict = keys.verify(kid, path.read_bytes(), path.with_name(SIGNATURE_NAME).read_bytes())
    except OSError:
        return [Problem(path, f"signature file missing (the manifest says key {kid} signed it)", SIGNATURE_NAME)]
    if verdict == "unknown_key":
        trusted = ", ".join(keys.ids)
        return [Problem(path, f"signed with key {kid}, which is not one of the trusted public keys ({trusted})")]
    if verdict == "bad":
        return [Problem(path, f"signature does not match key {kid}: manifest.json changed or another key signed it")]
    return []


def verify_manifest(path: Path, key: bytes | None = None, public_keys: PublicKeys | None = None) -> list[Problem]:
    """Problems of one manifest: unreadable, missing files, sha256 mismatches, bad/missing signature (with `key`, the
    HMAC key; with `public_keys`, the trusted Ed25519 keys: a manifest must carry a signature one of them checks)."""
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return [Problem(path, f"unreadable manifest: {exc}")]
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), dict):
        return [Problem(path, "not an evidence manifest (no 'files' object)")]
    problems = [p for rel, e in sorted(manifest["files"].items()) if (p := _check_file(path, rel, e)) is not None]
    problems += _check_clips(path, manifest)
    signed_ed = "signing" in manifest
    if public_keys and (signed_ed or key is None):
        problems += _check_ed25519(path, manifest, public_keys)
    if key is not None and (not signed_ed or "signature" in manifest or not public_keys):
        problems += _check_signature(path, manifest, key)
    return problems


def find_manifests(root: Path) -> list[Path]:
    return sorted(root.rglob(MANIFEST_NAME))


def verify_dir(root: Path, key: bytes | None = None, public_keys: PublicKeys | None = None) -> list[Problem]:
    """Verify every `manifest.json` under `root` (see `verify_manifest`)."""
    return [p for m in find_manifests(root) for p in verify_manifest(m, key, public_keys)]


def read_clips(evidence_dir: Path) -> list[ClipEntry]:
    """Every `clip-NNN.mp4` in an incident's evidence folder, in index order, with the sha256 and times its manifest
    records. A folder without a manifest (the incident is still open) lists the clips written so far without them.

    What the manifest says is reported, not re-checked (that is `verify_manifest`'s job)."""
    recorded = _recorded_clips(evidence_dir / MANIFEST_NAME)
    try:
        names = [p.name for p in evidence_dir.iterdir() if clip_index(p.name) is not None and p.is_file()]
    except OSError:
        return []
    return sorted((recorded.get(name) or ClipEntry(evidence_dir / name) for name in names), key=lambda c: c.index)


def _recorded_clips(path: Path) -> dict[str, ClipEntry]:
    """The clips a manifest lists among its files, by file name; empty when there is no readable manifest."""
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict):
        return {}
    clips = manifest.get("clips")
    listed = clips if isinstance(clips, list) else []
    timed = {c["path"]: c for c in listed if isinstance(c, dict) and isinstance(c.get("path"), str)}
    out: dict[str, ClipEntry] = {}
    for name, entry in files.items():
        if clip_index(name) is None or not isinstance(entry, dict):
            continue
        times = timed.get(name, {})
        sha256 = entry.get("sha256")
        out[name] = ClipEntry(
            path.parent / name,
            _seconds(times.get("start_offset_s")),
            _seconds(times.get("duration_s")),
            sha256 if isinstance(sha256, str) else None,
        )
    return out


def _seconds(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)
