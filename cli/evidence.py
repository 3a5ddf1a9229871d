"""`safewatch evidence verify DIR [--key-env VAR]`: check every evidence manifest under DIR.

Exit 0 and "N manifests OK" when all files match their sha256 (and signatures, when a key is available); exit 1 with
one line per problem otherwise; exit 2 when DIR is not a directory or holds no manifest.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from vision.media.manifest import find_manifests, verify_manifest

KEY_ENV = "SAFEWATCH_EVIDENCE_KEY"  # what `RuntimeSettings.evidence_key` is read from: the key evidence is signed with


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("evidence", help="evidence files: verify integrity manifests")
    sub = parser.add_subparsers(dest="evidence_command", metavar="ACTION", required=True)
    verify = sub.add_parser("verify", help="verify sha256s and HMAC signatures of every manifest.json under DIR")
    verify.add_argument("dir", type=Path, metavar="DIR", help="media root or any directory below it")
    verify.add_argument(
        "--key-env",
        default=KEY_ENV,
        metavar="VAR",
        help=f"environment variable holding the HMAC key (default {KEY_ENV}); unset = signatures not checked",
    )
    verify.set_defaults(func=_verify)


def _verify(args: argparse.Namespace) -> int:
    root: Path = args.dir
    if not root.is_dir():
        print(f"safewatch evidence verify: {root}: not a directory", file=sys.stderr)
        return 2
    manifests = find_manifests(root)
    if not manifests:
        print(f"safewatch evidence verify: {root}: no manifest.json found", file=sys.stderr)
        return 2
    value = os.environ.get(args.key_env, "")  # --key-env names any variable, so it is read here, not via Settings
    key = value.encode("utf-8") if value else None
    problems = [p for m in manifests for p in verify_manifest(m, key)]
    for problem in problems:
        print(problem)
    if problems:
        bad = len({p.manifest for p in problems})
        print(f"{bad} of {len(manifests)} manifests have problems", file=sys.stderr)
        return 1
    note = "" if key is not None else f" (signatures not checked: ${args.key_env} is not set)"
    print(f"{len(manifests)} manifests OK{note}")
    return 0
