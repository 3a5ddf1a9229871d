"""`safewatch evidence verify`: every manifest under a directory, checked on disk and against the store.

On disk (`vision/media/manifest.py`): the sha256 of every file a manifest lists, its Ed25519 signature against the
trusted public keys and its HMAC signature when a key is given. The evidence chains (`vision/media/chain_verify.py`)
when DIR holds them (`DIR/chains/`: DIR is a media root): gaps, broken links, manifests missing without a tombstone,
replaced or swapped manifests, signatures, and the store's checkpoints (`api/store/checkpoints.py`). Here, in
addition:

- files in an incident folder that its manifest does not list are reported ("extra file"): a manifest lists every file
  it covers (subfolders holding their own manifest are theirs);
- with a store (`api/store/evidence.py`): each manifest's own sha256 against the `evidence_sha256` the store recorded
  for its incident, so an edited clip plus a rewritten, unsigned manifest no longer passes; a manifest whose incident
  the store does not know, or for which it recorded no evidence; two manifests for one incident;
- with a store, when DIR is a whole media root (`YYYY-MM-DD/<camera>/<incident>/`): incidents whose recorded evidence
  has no manifest under DIR. Retention deletes whole incident folders, oldest first and never those of open or kept
  incidents, and leaves the store's row as it is; so a missing manifest is a problem only where retention cannot have
  removed it: the incident's folder is still there, the incident is kept, or it ended more than `RETENTION_SLACK` after
  the oldest unkept incident whose evidence is still present. The others are counted as removed by retention.
"""

from __future__ import annotations

import json
import os
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from api.store.checkpoints import recorded_checkpoints
from api.store.evidence import RecordedEvidence, recorded_evidence
from vision.digest import sha256_file
from vision.media.chain import CHAINS_DIR
from vision.media.chain_verify import ChainReport, verify_chains
from vision.media.manifest import MANIFEST_NAME, SIGNATURE_NAME, Problem, find_manifests, verify_manifest
from vision.media.signing import PublicKeys
from vision.media.store import MediaStore
from vision.redact import redact_url

#: The manifest is written at most post_roll_s (<= 300 s) + the clip wait timeout (<= 600 s) after an incident ends,
#: so retention's order (the newest file of a folder) and the store's `ended_at` agree beyond this margin.
RETENTION_SLACK = timedelta(hours=1)
_NEVER = datetime.max.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class _OnDisk:
    path: Path
    incident_id: str  # the manifest's `incident_id`; its folder's name when the manifest cannot be read
    sha256: str | None  # of the manifest file's bytes (what the store records)
    listed: frozenset[str] | None  # the files it covers; None when it cannot be read

    @classmethod
    def read(cls, path: Path) -> _OnDisk:
        try:
            data = json.loads(path.read_bytes())
            digest: str | None = sha256_file(path)
        except (OSError, ValueError):  # reported by verify_manifest
            return cls(path, path.parent.name, None, None)
        if not isinstance(data, dict):
            return cls(path, path.parent.name, digest, None)
        incident_id = data.get("incident_id")
        files = data.get("files")
        listed = frozenset(files) if isinstance(files, dict) else None
        return cls(path, incident_id if isinstance(incident_id, str) else path.parent.name, digest, listed)


@dataclass
class AuditResult:
    manifests: list[Path]
    problems: list[Problem] = field(default_factory=list)
    store: str | None = None  # the store checked against (URL, credentials redacted); None: not checked
    media_root: bool = False  # DIR is a media root, so recorded evidence missing from it was looked for
    retained: int = 0  # incidents with recorded evidence that retention removed from DIR
    chain: ChainReport | None = None  # None: DIR holds no evidence chain

    @property
    def bad_manifests(self) -> int:
        """Manifests found under DIR with at least one problem."""
        found = set(self.manifests)
        return len({p.manifest for p in self.problems if p.manifest in found})

    @property
    def missing(self) -> int:
        """Problems of recorded evidence that has no manifest under DIR."""
        found = set(self.manifests)
        return sum(1 for p in self.problems if p.manifest not in found)


def audit_evidence(
    root: Path,
    *,
    key: bytes | None = None,
    database_url: str | None = None,
    public_keys: PublicKeys | None = None,
) -> AuditResult:
    """Check every manifest under `root` (see the module docstring); with `database_url`, against that store too.

    No manifest and no chain: an empty result, and the store is not read. Raises
    `api.store.evidence.StoreUnavailable`."""
    result = AuditResult(find_manifests(root))
    chained = (root / CHAINS_DIR).is_dir()
    if not result.manifests and not chained:
        return result
    if chained:
        checkpoints = recorded_checkpoints(database_url) if database_url is not None else []
        result.chain = verify_chains(root, result.manifests, public_keys, checkpoints)
        result.problems += result.chain.problems
    on_disk = [_OnDisk.read(m) for m in result.manifests]
    records: Mapping[str, RecordedEvidence] | None = None
    if database_url is not None:
        records = recorded_evidence(database_url, {d.incident_id for d in on_disk})
        result.store = redact_url(database_url)
    dirs = {m.parent for m in result.manifests}
    seen: dict[str, Path] = {}
    for d in on_disk:
        result.problems += verify_manifest(d.path, key, public_keys)
        result.problems += _extra_files(d, dirs)
        if records is not None:
            result.problems += _against_store(d, records, seen)
        seen.setdefault(d.incident_id, d.path)
    folders = {i.incident_id: i.path for i in MediaStore(root).incidents()}
    if records is not None and folders:
        result.media_root = True
        missing, result.retained = _missing_evidence(root, on_disk, records, folders)
        result.problems += missing
    return result


def _extra_files(d: _OnDisk, manifest_dirs: Collection[Path]) -> list[Problem]:
    """Files in the manifest's folder (and below, except folders with their own manifest) that it does not list."""
    if d.listed is None:
        return []
    folder, out = d.path.parent, []
    for dirpath, dirnames, filenames in os.walk(folder):
        here = Path(dirpath)
        links = [n for n in dirnames if (here / n).is_symlink()]  # never followed: reported as they are
        dirnames[:] = sorted(n for n in dirnames if n not in links and here / n not in manifest_dirs)
        for name in sorted([*filenames, *links]):
            rel = (here / name).relative_to(folder).as_posix()
            if here / name not in (d.path, d.path.with_name(SIGNATURE_NAME)) and rel not in d.listed:
                out.append(Problem(d.path, "extra file, not listed in the manifest", rel))
    return sorted(out, key=lambda p: p.file or "")


def _against_store(d: _OnDisk, records: Mapping[str, RecordedEvidence], seen: Mapping[str, Path]) -> list[Problem]:
    out: list[Problem] = []
    if d.incident_id in seen:
        out.append(Problem(d.path, f"a second manifest for incident {d.incident_id} (first: {seen[d.incident_id]})"))
    rec = records.get(d.incident_id)
    if rec is None:
        out.append(Problem(d.path, f"incident {d.incident_id} is unknown to the store"))
    elif rec.evidence_sha256 is None:
        out.append(Problem(d.path, f"the store recorded no evidence for incident {d.incident_id} (it is {rec.status})"))
    elif d.sha256 is not None and d.sha256 != rec.evidence_sha256:
        out.append(
            Problem(
                d.path,
                f"not the manifest the store recorded for incident {d.incident_id} "
                f"(sha256 {d.sha256}, recorded {rec.evidence_sha256})",
            )
        )
    return out


def _missing_evidence(
    root: Path, on_disk: Sequence[_OnDisk], records: Mapping[str, RecordedEvidence], folders: Mapping[str, Path]
) -> tuple[list[Problem], int]:
    """Problems of recorded evidence with no manifest under the media root `root`, and how many retention removed."""
    present = {d.incident_id for d in on_disk}
    oldest = min(
        (
            r.ended_at
            for i in present
            if (r := records.get(i)) is not None and not r.keep and r.evidence_sha256 and r.ended_at is not None
        ),
        default=None,
    )
    problems, retained = [], 0
    for rec in sorted(records.values(), key=lambda r: (r.ended_at or _NEVER, r.incident_id)):
        if rec.evidence_sha256 is None or rec.incident_id in present:
            continue
        what = f"the store recorded evidence for incident {rec.incident_id} (camera {rec.camera_id}"
        what += f", ended {_iso(rec.ended_at)})" if rec.ended_at is not None else ")"
        folder = folders.get(rec.incident_id)
        if folder is not None:
            problems.append(Problem(folder / MANIFEST_NAME, f"manifest missing: {what}"))
        elif rec.keep:
            problems.append(Problem(root, f"{what} but none is here; it is kept, and retention never deletes that"))
        elif oldest is not None and rec.ended_at is not None and rec.ended_at > oldest + RETENTION_SLACK:
            why = f"retention deletes the oldest first, and evidence of an incident ended {_iso(oldest)} is still here"
            problems.append(Problem(root, f"{what} but none is here; {why}"))
        else:
            retained += 1
    return problems, retained


def _iso(t: datetime) -> str:
    return t.isoformat(timespec="seconds")
