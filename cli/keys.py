"""`safewatch keys create --role ROLE [--name N] [--site S]...` (prints the key once), `keys list`, `keys delete ID`.

`--site` (repeatable) scopes the key to those sites; without it the key sees every site. `keys delete` refuses the
last admin key for all sites (exit 1), as `DELETE /v1/keys/{id}` does.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from sqlalchemy.exc import SQLAlchemyError

from api.auth import Role
from api.settings import Settings
from api.store.db import Store
from api.store.keys import LastAdminKey, create_key, delete_key, list_keys
from cli.common import read_settings

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("keys", help="manage API keys (uses SAFEWATCH_DATABASE_URL / SAFEWATCH_DATA_DIR)")
    sub = parser.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    create = sub.add_parser("create", help="create a key and print it once")
    create.add_argument("--role", required=True, choices=[r.value for r in Role])
    create.add_argument("--name", default=None, help="a label (default: the role)")
    create.add_argument(
        "--site",
        action="append",
        dest="sites",
        metavar="SITE",
        type=_site,
        help="scope the key to this site (repeat for more); default: every site",
    )
    create.add_argument("--json", action="store_true", help="print {id, name, role, key} as JSON")
    create.set_defaults(func=_create)
    lst = sub.add_parser("list", help="list keys, never the keys themselves (id, role, prefix, name, created, sites)")
    lst.set_defaults(func=_list)
    delete = sub.add_parser("delete", help="revoke a key by id")
    delete.add_argument("key_id")
    delete.set_defaults(func=_delete)


def _site(value: str) -> str:
    if not value or len(value) > 128 or any(ord(c) < 0x20 for c in value):
        raise argparse.ArgumentTypeError(f"invalid site {value!r}: 1-128 characters, no control characters")
    return value


def _store(args: argparse.Namespace) -> Store | None:
    settings = read_settings(Settings, args)
    try:
        return Store(settings.database_url)
    except (SQLAlchemyError, OSError) as exc:
        sys.stderr.write(f"safewatch keys: cannot open the store: {type(exc).__name__}: {exc}\n".splitlines()[0] + "\n")
    return None


def _create(args: argparse.Namespace) -> int:
    store = _store(args)
    if store is None:
        return 2
    with store.session() as session:
        row, plain = create_key(session, role=args.role, name=args.name or args.role, sites=args.sites)
        info = {"id": row.id, "name": row.name, "role": row.role, "sites": row.sites, "key": plain}
    store.dispose()
    if args.json:
        sys.stdout.write(json.dumps(info) + "\n")
    else:
        sys.stdout.write(f"{plain}\n")
        scope = ", ".join(row.sites) if row.sites is not None else "every site"
        sys.stderr.write(f"created {info['role']} key {info['id']} ({info['name']}, {scope}); it is shown only once\n")
    return 0


def _list(args: argparse.Namespace) -> int:
    store = _store(args)
    if store is None:
        return 2
    with store.read() as session:
        for row in list_keys(session):
            sites = ",".join(row.sites) if row.sites is not None else "*"
            sys.stdout.write(
                f"{row.id}\t{row.role}\t{row.prefix}…\t{row.name}\t{row.created_at.isoformat()}\t{sites}\n"
            )
    store.dispose()
    return 0


def _delete(args: argparse.Namespace) -> int:
    store = _store(args)
    if store is None:
        return 2
    try:
        with store.session() as session:
            found = delete_key(session, args.key_id)
    except LastAdminKey as exc:
        sys.stderr.write(f"safewatch keys: {exc}\n")
        return 1
    finally:
        store.dispose()
    if not found:
        sys.stderr.write(f"safewatch keys: no key with id {args.key_id!r}\n")
        return 1
    return 0
