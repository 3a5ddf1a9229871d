"""`safewatch evidence keygen|public-key|export` (registered by `cli/evidence.py`).

- `keygen --out DIR`: a new Ed25519 key pair: `evidence-<key id>.key` (0600) and `evidence-<key id>.pub.pem`; point
  `SAFEWATCH_EVIDENCE_SIGNING_KEY` at the private key. Rotation: generate into the same folder and point the setting
  at the new key; the older public keys beside it stay trusted and served.
- `public-key`: the PEM of the configured signing key (with `--all`, also the keys kept from earlier rotations).
- `export INCIDENT_ID --out FILE.zip`: the incident's evidence bundle (`vision/media/bundle.py`), from the configured
  store and media root; recorded in the incident's audit trail with the local user as the principal.
"""

from __future__ import annotations

import argparse
import getpass
import socket
import sys
from pathlib import Path

from api.evidence_export import NoEvidence, export_incident
from api.settings import Settings
from api.store.db import Store
from api.store.handling import Actor, IncidentNotFound
from cli.common import add_data_dir_flag, read_settings
from pipelines.worker.evidence_chain import trusted_keys
from vision.media.signing import generate


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keygen = sub.add_parser("keygen", help="generate an Ed25519 evidence signing key pair")
    keygen.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder for the key pair")
    keygen.set_defaults(func=_keygen)
    public = sub.add_parser("public-key", help="print the public key evidence is signed with (PEM)")
    public.add_argument("--all", action="store_true", help="also the keys kept from earlier rotations")
    public.set_defaults(func=_public_key)
    export = sub.add_parser("export", help="export one incident's evidence as a bundle inspectors verify offline")
    export.add_argument("incident_id", metavar="INCIDENT_ID")
    export.add_argument("--out", type=Path, required=True, metavar="FILE.zip", help="the bundle to write")
    add_data_dir_flag(export, "store and media (default ./data)")
    export.set_defaults(func=_export)


def _keygen(args: argparse.Namespace) -> int:
    try:
        pair = generate(args.out)
    except OSError as exc:
        print(f"safewatch evidence keygen: {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    print(f"key id {pair.key_id}")
    print(f"private key {pair.private} (keep it secret; SAFEWATCH_EVIDENCE_SIGNING_KEY={pair.private})")
    print(f"public key  {pair.public} (publish it: inspectors verify evidence with it)")
    return 0


def _public_key(args: argparse.Namespace) -> int:
    settings = read_settings(Settings, args)
    signer = settings.evidence_signer()
    if signer is None:
        print("safewatch evidence public-key: SAFEWATCH_EVIDENCE_SIGNING_KEY is not set", file=sys.stderr)
        return 2
    pems = trusted_keys(settings).pems() if args.all else {signer.key_id: signer.public_pem}
    for kid, pem in pems.items():
        print(f"# key id {kid}{' (current)' if kid == signer.key_id else ''}")
        print(pem, end="")
    return 0


def _export(args: argparse.Namespace) -> int:
    settings = read_settings(Settings, args)
    actor = Actor(name=f"cli:{getpass.getuser()}@{socket.gethostname()}", key_id=None, key_name=None)
    store = Store(settings.database_url)
    tmp = args.out.with_name(f".{args.out.name}.tmp")
    try:
        with tmp.open("wb") as out:
            exported = export_incident(store, settings, args.incident_id, actor, out)
        tmp.replace(args.out)
    except (IncidentNotFound, NoEvidence) as exc:
        tmp.unlink(missing_ok=True)
        message = f"incident {args.incident_id!r} not found" if isinstance(exc, IncidentNotFound) else str(exc)
        print(f"safewatch evidence export: {message}", file=sys.stderr)
        return 2
    finally:
        store.dispose()
    info = exported.info
    print(f"{args.out}: incident {info.incident_id}, {info.files} files, chain {info.chain} seq {info.seq}, ", end="")
    print(f"key {info.key_id}, sha256 {exported.sha256}")
    return 0
