"""Evidence bundles for inspectors: one incident's evidence as a zip that verifies offline, with only the bundle and
the deployment's public key.

Layout: `evidence/` (the incident folder's files its manifest lists: clips, raw and annotated snapshots, ...; plus
`manifest.json` and its Ed25519 signature `manifest.sig`), `chain.jsonl` (the entries of the manifest's chain from
`AROUND` before to `AROUND` after its own, as the log holds them), `public-key.pem` (a copy of the key that signed),
`SHA256SUMS` (the manifest's file hashes in `sha256sum -c` form) and `README.md` (zh-CN and English, with an
openssl/sha256sum-only recipe, `vision/media/bundle_readme.py`).

`verify_bundle` unpacks a bundle into a temporary folder (names checked: nothing lands outside it) and checks the
manifest's files and signature against the trusted keys given (never only the copy inside), the chain segment
(consecutive, linked, signed) and that the manifest is the one the chain recorded.
"""

from __future__ import annotations

import itertools
import json
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any

from vision.digest import sha256_file
from vision.media.bundle_readme import render
from vision.media.chain import KEYS_DIR, entry_hash, log_path
from vision.media.chain_verify import check_signature, describe, read_log
from vision.media.manifest import MANIFEST_NAME, SIGNATURE_NAME, Problem, verify_manifest
from vision.media.signing import PUBLIC_SUFFIX, PublicKeys, load_public_key, public_pem

AROUND = 3
EVIDENCE = "evidence"
CHAIN = "chain.jsonl"
PUBLIC_KEY = "public-key.pem"
SUMS = "SHA256SUMS"
README = "README.md"
MAX_MEMBERS = 10_000


class BundleError(Exception):
    """The incident's evidence cannot be bundled (no manifest yet: the incident is still open)."""


@dataclass(frozen=True, slots=True)
class BundleInfo:
    incident_id: str
    files: int
    chain: str | None
    seq: int | None
    key_id: str | None


def _manifest(folder: Path) -> dict[str, Any]:
    try:
        data = json.loads((folder / MANIFEST_NAME).read_bytes())
    except (OSError, ValueError) as exc:
        raise BundleError(f"{folder}: no readable manifest ({exc}); an open incident has none yet") from None
    if not isinstance(data, dict) or not isinstance(data.get("files"), dict):
        raise BundleError(f"{folder / MANIFEST_NAME}: not an evidence manifest")
    return data


def _chain_lines(media_root: Path, chain: dict[str, Any] | None) -> bytes:
    if not chain or not isinstance(chain.get("seq"), int):
        return b""
    seq = chain["seq"]
    try:
        lines = log_path(media_root, str(chain.get("id"))).read_bytes().split(b"\n")
    except (OSError, ValueError):
        return b""
    out = []
    for line in lines:
        try:
            entry = json.loads(line) if line.strip() else None
        except ValueError:
            continue
        if isinstance(entry, dict) and isinstance(entry.get("seq"), int) and abs(entry["seq"] - seq) <= AROUND:
            out.append(line + b"\n")
    return b"".join(out)


def _public_key(media_root: Path, keys: PublicKeys, key_id: str | None) -> str | None:
    if key_id is None:
        return None
    if key_id in keys.keys:
        return keys.pems()[key_id]
    published = media_root / "chains" / KEYS_DIR / f"{key_id}{PUBLIC_SUFFIX}"
    return public_pem(load_public_key(published)) if published.is_file() else None


def write_bundle(out: IO[bytes], folder: Path, media_root: Path, keys: PublicKeys) -> BundleInfo:
    """Write the bundle of the incident folder `folder` (under `media_root`) to `out`. Raises `BundleError`."""
    manifest = _manifest(folder)
    chain = manifest.get("chain") if isinstance(manifest.get("chain"), dict) else None
    signing = manifest.get("signing") if isinstance(manifest.get("signing"), dict) else None
    key_id = str(signing["key_id"]) if signing and isinstance(signing.get("key_id"), str) else None
    files = sorted(rel for rel in manifest["files"] if (folder / rel).is_file())
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for rel in [*files, MANIFEST_NAME, SIGNATURE_NAME]:
            if (folder / rel).is_file():
                zf.write(folder / rel, f"{EVIDENCE}/{rel}", compress_type=_compression(rel))
        zf.writestr(CHAIN, _chain_lines(media_root, chain))
        pem = _public_key(media_root, keys, key_id)
        if pem is not None:
            zf.writestr(PUBLIC_KEY, pem)
        sums = "".join(f"{manifest['files'][rel]['sha256']}  {EVIDENCE}/{rel}\n" for rel in files)
        zf.writestr(SUMS, sums)
        zf.writestr(README, _readme(manifest, chain, key_id))
    return BundleInfo(
        str(manifest.get("incident_id")),
        len(files),
        str(chain["id"]) if chain else None,
        chain.get("seq") if chain else None,
        key_id,
    )


def _compression(name: str) -> int:
    """Video and JPEG do not compress: stored as they are."""
    return zipfile.ZIP_STORED if name.endswith((".mp4", ".jpg", ".jpeg")) else zipfile.ZIP_DEFLATED


def _readme(manifest: dict[str, Any], chain: dict[str, Any] | None, key_id: str | None) -> str:
    return render(
        incident_id=manifest.get("incident_id"),
        camera_id=manifest.get("camera_id"),
        rule=manifest.get("rule"),
        started_at=manifest.get("started_at"),
        ended_at=manifest.get("ended_at") or "-",
        key_id=key_id or "-",
        chain=chain.get("id") if chain else "-",
        seq=chain.get("seq") if chain else "-",
    )


# -- verification ------------------------------------------------------------------------------------------------
def _extract(bundle: Path, into: Path) -> list[Problem]:
    try:
        with zipfile.ZipFile(bundle) as zf:
            members = zf.infolist()
            if len(members) > MAX_MEMBERS:
                return [Problem(bundle, f"not an evidence bundle: {len(members)} members")]
            for m in members:
                p = PurePosixPath(m.filename)
                if p.is_absolute() or ".." in p.parts or "\\" in m.filename:
                    return [Problem(bundle, "unsafe member name (outside the bundle)", m.filename)]
            zf.extractall(into)
    except (OSError, zipfile.BadZipFile) as exc:
        return [Problem(bundle, f"not a readable zip: {exc}")]
    return []


def verify_bundle(bundle: Path, keys: PublicKeys) -> list[Problem]:
    """Problems of an evidence bundle, checked against the trusted `keys` (not the copy inside)."""
    with tempfile.TemporaryDirectory(prefix="safewatch-bundle-") as tmp:
        root = Path(tmp)
        problems = _extract(bundle, root)
        if problems:
            return problems
        manifest_path = root / EVIDENCE / MANIFEST_NAME
        if not manifest_path.is_file():
            return [Problem(bundle, "no evidence/manifest.json: not an evidence bundle")]
        problems = verify_manifest(manifest_path, public_keys=keys)
        problems += _extra(root, manifest_path)
        problems += _check_segment(root / CHAIN, manifest_path, keys)
        return [Problem(bundle, p.message, _name(root, p)) for p in problems]


def _name(root: Path, problem: Problem) -> str | None:
    """A problem's file as its name inside the bundle."""
    if problem.file is not None:
        base = problem.manifest.parent if problem.manifest.name == MANIFEST_NAME else root
        return (base / problem.file).relative_to(root).as_posix()
    return problem.manifest.relative_to(root).as_posix() if problem.manifest.is_relative_to(root) else None


def _extra(root: Path, manifest_path: Path) -> list[Problem]:
    listed = set(json.loads(manifest_path.read_bytes()).get("files", {}))
    folder = manifest_path.parent
    own = {folder / MANIFEST_NAME, folder / SIGNATURE_NAME}
    return [
        Problem(manifest_path, "extra file, not listed in the manifest", p.relative_to(folder).as_posix())
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p not in own and p.relative_to(folder).as_posix() not in listed
    ]


def _check_segment(path: Path, manifest_path: Path, keys: PublicKeys) -> list[Problem]:
    """The chain entries: consecutive and linked, signed by a trusted key, one of them recording this manifest."""
    claim = json.loads(manifest_path.read_bytes()).get("chain")
    if not isinstance(claim, dict):
        return [Problem(path, "the manifest names no chain position")]
    problems: list[Problem] = []
    entries = read_log(path, problems) if path.is_file() else []
    for before, entry in itertools.pairwise(entries):
        if entry["seq"] != before["seq"] + 1 or entry.get("prev") != entry_hash(before):
            problems.append(Problem(path, f"{describe(entry)} does not follow {describe(before)}"))
    problems += [p for e in entries if (p := check_signature(path, e, keys)) is not None]
    own = _own_entry(entries, claim)
    if own is None:
        return [*problems, Problem(path, f"no entry for chain {claim.get('id')} seq {claim.get('seq')}")]
    digest = sha256_file(manifest_path)
    if own.get("manifest_sha256") != digest or own.get("prev") != claim.get("prev"):
        problems.append(
            Problem(path, f"{describe(own)} records another manifest (sha256 {own.get('manifest_sha256')})")
        )
    return problems


def _own_entry(entries: Sequence[dict[str, Any]], claim: dict[str, Any]) -> dict[str, Any] | None:
    return next(
        (e for e in entries if e.get("chain") == claim.get("id") and e["seq"] == claim.get("seq")),
        None,
    )
