"""Verification of evidence chains (`vision/media/chain.py`): every log under `<media_root>/chains/`, the manifests
their entries name, the manifests that claim a place in a chain, and checkpoints (signed heads a third party or the
store kept).

Each problem says exactly what is wrong: the entries missing between which two sequence numbers (and their
incidents), the incident whose evidence folder is gone with no tombstone recording its deletion, the manifest that is
not the one the chain recorded at its place, the entry whose signature does not match which key, a log cut short
before a checkpoint.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from vision.digest import sha256_file
from vision.media.chain import CHAINS_DIR, GENESIS, decode_signature, entry_hash, signed_body
from vision.media.manifest import Problem
from vision.media.signing import PublicKeys

Entry = dict[str, Any]


@dataclass
class ChainReport:
    problems: list[Problem] = field(default_factory=list)
    entries: dict[str, int] = field(default_factory=dict)  # chain name → entries read
    tombstoned: int = 0  # manifests deleted by retention, each recorded by a tombstone
    claimed: set[str] = field(default_factory=set)  # manifest paths (relative to the root) a log entry names


def read_log(path: Path, problems: list[Problem]) -> list[Entry]:
    """The entries of one log, in file order; unreadable lines become problems."""
    entries: list[Entry] = []
    try:
        lines = path.read_bytes().split(b"\n")
    except OSError as exc:
        problems.append(Problem(path, f"chain log unreadable: {exc.strerror or exc}"))
        return entries
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            entry = None
        if not isinstance(entry, dict) or not isinstance(entry.get("seq"), int):
            problems.append(Problem(path, f"line {number} is not a chain entry (the log was edited)"))
            continue
        entries.append(entry)
    return entries


def describe(entry: Entry | None) -> str:
    if entry is None:
        return "the start"
    what = "tombstone of incident" if entry.get("kind") == "tombstone" else "incident"
    return f"seq {entry.get('seq')} ({what} {entry.get('incident_id')})"


def check_signature(where: Path, entry: Entry, keys: PublicKeys | None) -> Problem | None:
    if not keys:
        return None
    sig = entry.get("signature")
    seq = entry.get("seq")
    if not isinstance(sig, dict) or not isinstance(sig.get("key_id"), str):
        return Problem(where, f"entry seq {seq} is not signed")
    value = decode_signature(sig.get("value"))
    verdict = keys.verify(sig["key_id"], signed_body(entry), value or b"")
    if verdict == "unknown_key":
        trusted = ", ".join(keys.ids)
        return Problem(where, f"entry seq {seq} is signed with key {sig['key_id']}, not a trusted key ({trusted})")
    if verdict == "bad":
        return Problem(where, f"entry seq {seq}: signature does not match key {sig['key_id']} (the entry was changed)")
    return None


def check_links(where: Path, name: str, entries: Sequence[Entry], keys: PublicKeys | None) -> list[Problem]:
    """Seq numbers from 1 without gaps, each entry naming the hash of the one before, each signed by a trusted key."""
    problems: list[Problem] = []
    before: Entry | None = None
    prev_hash = GENESIS
    for entry in entries:
        seq = entry["seq"]
        expected = before["seq"] + 1 if before is not None else 1
        if entry.get("chain") != name:
            problems.append(Problem(where, f"entry seq {seq} belongs to chain {entry.get('chain')!r}, not {name!r}"))
        if seq > expected:
            gap = f"seq {expected}" if seq == expected + 1 else f"seq {expected}-{seq - 1}"
            problems.append(
                Problem(where, f"{gap} missing between {describe(before)} and {describe(entry)}: removed from the log")
            )
        elif seq < expected:
            problems.append(Problem(where, f"entry {describe(entry)} out of order after {describe(before)}"))
        elif entry.get("prev") != prev_hash:
            problems.append(
                Problem(
                    where,
                    f"{describe(entry)} does not follow {describe(before)}: its prev hash differs "
                    "(an entry was replaced, reordered or rewritten)",
                )
            )
        if (p := check_signature(where, entry, keys)) is not None:
            problems.append(p)
        before, prev_hash = entry, entry_hash(entry)
    return problems


def _safe(root: Path, rel: object) -> Path | None:
    if not isinstance(rel, str):
        return None
    p = PurePosixPath(rel)
    return None if p.is_absolute() or ".." in p.parts else root / p


def _neighbours(entries: Sequence[Entry], i: int) -> str:
    before = entries[i - 1] if i > 0 else None
    after = f" and {describe(entries[i + 1])}" if i + 1 < len(entries) else " (the last entry)"
    return f"between {describe(before)}{after}"


def check_manifests(
    root: Path, where: Path, entries: Sequence[Entry], tombstones: Mapping[tuple[str, int], Entry], report: ChainReport
) -> None:
    """Each manifest entry's manifest is there with the recorded sha256, or a tombstone records its deletion."""
    for i, entry in enumerate(entries):
        if entry.get("kind") != "manifest":
            continue
        path = _safe(root, entry.get("path"))
        if path is None:
            report.problems.append(Problem(where, f"entry seq {entry['seq']}: unusable manifest path"))
            continue
        report.claimed.add(path.relative_to(root).as_posix())
        tomb = tombstones.get((str(entry.get("chain")), entry["seq"]))
        if not path.is_file():
            if tomb is None:
                report.problems.append(
                    Problem(
                        path,
                        f"incident {entry.get('incident_id')} is missing: chain {entry.get('chain')} seq "
                        f"{entry['seq']} ({_neighbours(entries, i)}) recorded this manifest, and no tombstone "
                        "records its deletion",
                    )
                )
            elif tomb["deleted"].get("manifest_sha256") != entry.get("manifest_sha256"):
                report.problems.append(
                    Problem(path, f"the tombstone {describe(tomb)} names another manifest than seq {entry['seq']}")
                )
            else:
                report.tombstoned += 1
            continue
        digest = sha256_file(path)
        if digest != entry.get("manifest_sha256"):
            report.problems.append(
                Problem(
                    path,
                    f"not the manifest chain {entry.get('chain')} recorded at seq {entry['seq']} for incident "
                    f"{entry.get('incident_id')} (sha256 {digest}, recorded {entry.get('manifest_sha256')})",
                )
            )


def check_claims(root: Path, manifests: Sequence[Path], chains: Mapping[str, Sequence[Entry]]) -> list[Problem]:
    """A manifest that names a chain position must be the one the log holds there."""
    problems: list[Problem] = []
    for path in manifests:
        try:
            data = json.loads(path.read_bytes())
        except (OSError, ValueError):
            continue  # reported by verify_manifest
        claim = data.get("chain") if isinstance(data, dict) else None
        if not isinstance(claim, dict):
            continue  # evidence written before chains
        name, seq = str(claim.get("id")), claim.get("seq")
        entries = chains.get(name)
        if entries is None:
            problems.append(Problem(path, f"claims chain {name} seq {seq}, but there is no log of chain {name}"))
            continue
        at = next((e for e in entries if e["seq"] == seq), None)
        rel = path.relative_to(root).as_posix() if path.is_relative_to(root) else str(path)
        if at is None:
            last = entries[-1]["seq"] if entries else 0
            cut = isinstance(seq, int) and seq > last
            why = f"beyond the end of the log (seq {last}): the log was cut short" if cut else "not in the log"
            problems.append(Problem(path, f"claims chain {name} seq {seq}, {why}"))
        elif at.get("path") != rel:
            problems.append(
                Problem(
                    path,
                    f"claims chain {name} seq {seq}, which the log records for incident {at.get('incident_id')} at "
                    f"{at.get('path')} (manifests swapped or moved)",
                )
            )
    return problems


def check_checkpoints(
    root: Path, checkpoints: Sequence[Mapping[str, Any]], chains: Mapping[str, Sequence[Entry]], keys: PublicKeys | None
) -> list[Problem]:
    """Each checkpoint (a signed head entry kept elsewhere) must still be in its chain's log, unchanged."""
    problems: list[Problem] = []
    for cp in checkpoints:
        head: Entry = dict(cp["entry"])
        name, seq, when = str(head.get("chain")), head.get("seq"), cp.get("at", "?")
        where = root / CHAINS_DIR / f"{name}.jsonl"
        if (p := check_signature(where, head, keys)) is not None:
            problems.append(Problem(where, f"checkpoint of {when}: {p.message}"))
        entries = chains.get(name, [])
        at = next((e for e in entries if e["seq"] == seq), None)
        if at is None:
            last = entries[-1]["seq"] if entries else 0
            problems.append(
                Problem(
                    where,
                    f"the checkpoint of {when} vouches for chain {name} up to seq {seq}, but the log ends at seq "
                    f"{last}: the chain was cut short",
                )
            )
        elif entry_hash(at) != entry_hash(head):
            problems.append(
                Problem(where, f"entry seq {seq} is not the one the checkpoint of {when} vouches for (rewritten)")
            )
    return problems


def verify_chains(
    root: Path,
    manifests: Sequence[Path],
    keys: PublicKeys | None = None,
    checkpoints: Sequence[Mapping[str, Any]] = (),
) -> ChainReport:
    """Every chain log under `root/chains/`, the manifests they name, the chain claims of `manifests` (the manifests
    found under `root`) and `checkpoints`."""
    report = ChainReport()
    chains: dict[str, list[Entry]] = {}
    for log in sorted((root / CHAINS_DIR).glob("*.jsonl")):
        chains[log.stem] = read_log(log, report.problems)
        report.entries[log.stem] = len(chains[log.stem])
    tombstones = {
        (str(e["deleted"].get("chain")), e["deleted"].get("seq")): e
        for entries in chains.values()
        for e in entries
        if e.get("kind") == "tombstone" and isinstance(e.get("deleted"), dict)
    }
    for name, entries in chains.items():
        where = root / CHAINS_DIR / f"{name}.jsonl"
        report.problems += check_links(where, name, entries, keys)
        check_manifests(root, where, entries, tombstones, report)
    report.problems += check_claims(root, manifests, chains)
    report.problems += check_checkpoints(root, checkpoints, chains, keys)
    return report
