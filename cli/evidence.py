"""`safewatch evidence verify|keygen|public-key|export`: evidence a regulator can check.

`verify PATH [--public-key FILE]... [--key-env VAR] [--database URL | --no-database]`: PATH is a directory (the
media root, or any directory below it) or an evidence bundle (`.zip`, from `export`).

A directory: every manifest under it, on disk and against the store. One line per problem on stdout, naming the
file: a file whose sha256 does not match its manifest, a missing file, a signature that does not match which key (the
trusted public keys: `--public-key`, default the `*.pub.pem` beside `SAFEWATCH_EVIDENCE_SIGNING_KEY`; the HMAC key of
`--key-env` for evidence signed before), a file in an incident folder that its manifest does not list; the evidence
chains when PATH is a media root (`chains/`): entries missing between which two sequence numbers, an incident whose
folder is gone with no tombstone, a manifest that is not the one the chain recorded (replaced, swapped), a log cut
short; against the store (`--database URL`, default the configured one: `SAFEWATCH_DATABASE_URL`, else
`<SAFEWATCH_DATA_DIR>/safewatch.db`): a manifest that is not the one the store recorded for its incident, an incident
the store does not know, recorded evidence that is gone although retention cannot have removed it (see
`api/evidence_audit.py`), and the store's checkpoints of the chains. `--no-database` checks a bare copy on disk only.

A bundle: verified offline against the keys of `--public-key` (required: the copy inside the bundle proves nothing),
without settings or a store.

Exit 0 and "N manifests OK" when everything holds; exit 1 with one line per problem otherwise; exit 2 when PATH is
neither a directory nor a bundle, holds no manifest, or the store or a key cannot be read (one line naming it).
"""

from __future__ import annotations

import argparse
import os
import sys
import zipfile
from pathlib import Path

from api.evidence_audit import AuditResult, audit_evidence
from api.settings import Settings
from api.store.evidence import StoreUnavailable
from cli import evidence_tools
from cli.common import BadSetting, read_settings
from pipelines.worker.evidence_chain import trusted_keys
from vision.media.bundle import verify_bundle
from vision.media.signing import KeyFileError, PublicKeys

KEY_ENV = "SAFEWATCH_EVIDENCE_KEY"  # what `RuntimeSettings.evidence_key` is read from: the HMAC key of old evidence
PROG = "safewatch evidence verify"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("evidence", help="evidence: verify, signing keys, export bundles for inspectors")
    sub = parser.add_subparsers(dest="evidence_command", metavar="ACTION", required=True)
    verify = sub.add_parser(
        "verify",
        help="verify a media directory or an exported bundle: sha256s, signatures, the evidence chain, the store",
    )
    verify.add_argument("dir", type=Path, metavar="PATH", help="media root, a directory below it, or a bundle .zip")
    verify.add_argument(
        "--public-key",
        type=Path,
        action="append",
        default=[],
        metavar="FILE",
        help="trusted Ed25519 public key (PEM file, or a folder of *.pem); repeat for keys of earlier rotations "
        "(default for a directory: the *.pub.pem beside SAFEWATCH_EVIDENCE_SIGNING_KEY; required for a bundle)",
    )
    verify.add_argument(
        "--key-env",
        default=KEY_ENV,
        metavar="VAR",
        help=f"environment variable holding the HMAC key of evidence signed before public keys (default {KEY_ENV})",
    )
    store = verify.add_mutually_exclusive_group()
    store.add_argument(
        "--database",
        metavar="URL",
        default=None,
        help="store whose recorded manifest sha256s and chain checkpoints the evidence must match (default: "
        "SAFEWATCH_DATABASE_URL, else <SAFEWATCH_DATA_DIR>/safewatch.db)",
    )
    store.add_argument(
        "--no-database", action="store_true", help="do not check against a store (a bare copy of the evidence)"
    )
    verify.set_defaults(func=_verify)
    evidence_tools.register(sub)


def _verify(args: argparse.Namespace) -> int:
    root: Path = args.dir
    try:
        given = PublicKeys.load(args.public_key)
    except KeyFileError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    if root.is_file() and zipfile.is_zipfile(root):
        return _verify_bundle(root, given)
    if not root.is_dir():
        print(f"{PROG}: {root}: not a directory or an evidence bundle (.zip)", file=sys.stderr)
        return 2
    settings = _settings(args, given)
    url = None if args.no_database else args.database or (settings.database_url if settings else None)
    keys = given or (trusted_keys(settings) if settings is not None else PublicKeys())
    value = os.environ.get(args.key_env, "")  # --key-env names any variable, so it is read here, not via Settings
    key = value.encode("utf-8") if value else None
    try:
        result = audit_evidence(root, key=key, database_url=url, public_keys=keys or None)
    except StoreUnavailable as exc:
        hint = "" if args.database else " (pass --database URL, or --no-database for a bare copy of the evidence)"
        print(f"{PROG}: cannot read the store {exc}{hint}", file=sys.stderr)
        return 2
    if not result.manifests and result.chain is None:
        print(f"{PROG}: {root}: no manifest.json found", file=sys.stderr)
        return 2
    for problem in result.problems:
        print(problem)
    if result.problems:
        print(_failure(result), file=sys.stderr)
        return 1
    print(f"{len(result.manifests)} manifests OK{_notes(result, keys, key is not None, args.key_env)}")
    return 0


def _settings(args: argparse.Namespace, given: PublicKeys) -> Settings | None:
    """The settings, for the default store and trusted keys; a bare copy (`--no-database`) does not need them, so
    there a bad setting of this machine only means no default keys."""
    if args.no_database and given:
        return None
    try:
        return read_settings(Settings, args)
    except BadSetting:
        if args.no_database:
            return None
        raise


def _verify_bundle(bundle: Path, keys: PublicKeys) -> int:
    if not keys:
        print(
            f"{PROG}: {bundle}: a bundle is verified against a public key you trust: pass --public-key FILE "
            "(the key the operator published; the copy inside the bundle proves nothing)",
            file=sys.stderr,
        )
        return 2
    problems = verify_bundle(bundle, keys)
    for problem in problems:
        print(problem)
    if problems:
        print(f"{bundle}: {len(problems)} problems", file=sys.stderr)
        return 1
    print(f"{bundle}: bundle OK (signed by {', '.join(keys.ids)}; files, manifest signature and chain entries hold)")
    return 0


def _failure(result: AuditResult) -> str:
    line = f"{result.bad_manifests} of {len(result.manifests)} manifests have problems"
    if result.missing:
        line += f"; {result.missing} incidents' recorded evidence is missing"
    if result.chain is not None:
        line += f"; {len(result.chain.problems)} problems in the evidence chains"
    return line


def _notes(result: AuditResult, keys: PublicKeys, hmac: bool, key_env: str) -> str:
    notes = []
    if keys:
        notes.append(f"signatures checked against keys {', '.join(keys.ids)}")
    elif not hmac:
        notes.append(f"signatures not checked: no public key (--public-key) and ${key_env} is not set")
    if result.chain is not None:
        chains = ", ".join(f"{name} ({n} entries)" for name, n in sorted(result.chain.entries.items()))
        notes.append(f"chains {chains or 'none'} intact")
        if result.chain.tombstoned:
            notes.append(f"{result.chain.tombstoned} deletions recorded by tombstones")
    if result.store is not None:
        notes.append(f"each matches the store {result.store}")
        if not result.media_root:
            notes.append("recorded evidence missing from DIR not looked for: DIR is not a media root")
        elif result.retained:
            notes.append(f"{result.retained} older incidents' evidence is gone, as retention removes it")
    return f" ({'; '.join(notes)})" if notes else ""
