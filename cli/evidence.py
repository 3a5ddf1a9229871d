"""`safewatch evidence verify DIR [--key-env VAR] [--database URL | --no-database]`: check every evidence manifest
under DIR, on disk and against the store.

One line per problem on stdout, naming the file: a file whose sha256 does not match its manifest, a missing file, a
bad or missing signature (when a key is available), a file in an incident folder that its manifest does not list;
against the store (`--database URL`, default the configured one: `SAFEWATCH_DATABASE_URL`, else
`<SAFEWATCH_DATA_DIR>/safewatch.db`): a manifest that is not the one the store recorded for its incident (its sha256
differs: an edited clip with a rewritten manifest), an incident the store does not know, and, when DIR is the media
root, recorded evidence that is gone although retention cannot have removed it (see `api/evidence_audit.py`).
`--no-database` checks a bare copy of the evidence on disk only.

Exit 0 and "N manifests OK" when nothing is wrong; exit 1 with one line per problem otherwise; exit 2 when DIR is not
a directory or holds no manifest, or the store cannot be read (a one-line message naming its URL, redacted).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from api.evidence_audit import AuditResult, audit_evidence
from api.settings import Settings
from api.store.evidence import StoreUnavailable
from cli.common import read_settings

KEY_ENV = "SAFEWATCH_EVIDENCE_KEY"  # what `RuntimeSettings.evidence_key` is read from: the key evidence is signed with
PROG = "safewatch evidence verify"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("evidence", help="evidence files: verify integrity manifests")
    sub = parser.add_subparsers(dest="evidence_command", metavar="ACTION", required=True)
    verify = sub.add_parser(
        "verify", help="verify every manifest.json under DIR: sha256s, HMAC signatures, extra files, the store's record"
    )
    verify.add_argument("dir", type=Path, metavar="DIR", help="media root or any directory below it")
    verify.add_argument(
        "--key-env",
        default=KEY_ENV,
        metavar="VAR",
        help=f"environment variable holding the HMAC key (default {KEY_ENV}); unset = signatures not checked",
    )
    store = verify.add_mutually_exclusive_group()
    store.add_argument(
        "--database",
        metavar="URL",
        default=None,
        help="store whose recorded manifest sha256s the manifests must match (default: SAFEWATCH_DATABASE_URL, "
        "else <SAFEWATCH_DATA_DIR>/safewatch.db)",
    )
    store.add_argument(
        "--no-database", action="store_true", help="do not check against a store (a bare copy of the evidence)"
    )
    verify.set_defaults(func=_verify)


def _verify(args: argparse.Namespace) -> int:
    root: Path = args.dir
    if not root.is_dir():
        print(f"{PROG}: {root}: not a directory", file=sys.stderr)
        return 2
    url = None if args.no_database else args.database or read_settings(Settings, args).database_url
    value = os.environ.get(args.key_env, "")  # --key-env names any variable, so it is read here, not via Settings
    key = value.encode("utf-8") if value else None
    try:
        result = audit_evidence(root, key=key, database_url=url)
    except StoreUnavailable as exc:
        hint = "" if args.database else " (pass --database URL, or --no-database for a bare copy of the evidence)"
        print(f"{PROG}: cannot read the store {exc}{hint}", file=sys.stderr)
        return 2
    if not result.manifests:
        print(f"{PROG}: {root}: no manifest.json found", file=sys.stderr)
        return 2
    for problem in result.problems:
        print(problem)
    if result.problems:
        print(_failure(result), file=sys.stderr)
        return 1
    print(f"{len(result.manifests)} manifests OK{_notes(result, key is not None, args.key_env)}")
    return 0


def _failure(result: AuditResult) -> str:
    line = f"{result.bad_manifests} of {len(result.manifests)} manifests have problems"
    if result.missing:
        line += f"; {result.missing} incidents' recorded evidence is missing"
    return line


def _notes(result: AuditResult, signed: bool, key_env: str) -> str:
    notes = [] if signed else [f"signatures not checked: ${key_env} is not set"]
    if result.store is not None:
        notes.append(f"each matches the store {result.store}")
        if not result.media_root:
            notes.append("recorded evidence missing from DIR not looked for: DIR is not a media root")
        elif result.retained:
            notes.append(f"{result.retained} older incidents' evidence is gone, as retention removes it")
    return f" ({'; '.join(notes)})" if notes else ""
