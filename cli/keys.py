"""`safewatch keys create --role ROLE [--name N]` (prints the key once), `keys list`, `keys delete ID`."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from sqlalchemy.exc import SQLAlchemyError

from api.auth import Role
from api.settings import Settings
from api.store.db import Store
from api.store.keys import create_key, delete_key, list_keys
from cli.common import read_settings

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("keys", help="manage API keys (uses SAFEWATCH_DATABASE_URL / SAFEWATCH_DATA_DIR)")
    sub = parser.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    create = sub.add_parser("create", help="create a key and print it once")
    create.add_argument("--role", required=True, choices=[r.value for r in Role])
    create.add_argument("--name", default=None, help="a label (default: the role)")
    create.add_argument("--json", action="store_true", help="print {id, name, role, key} as JSON")
    create.set_defaults(func=_create)
    lst = sub.add_parser("list", help="list keys (never the keys themselves)")
    lst.set_defaults(func=_list)
    delete = sub.add_parser("delete", help="revoke a key by id")
    delete.add_argument("key_id")
    delete.set_defaults(func=_delete)


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
        row, plain = create_key(session, role=args.role, name=args.name or args.role)
        info = {"id": row.id, "name": row.name, "role": row.role, "key": plain}
    store.dispose()
    if args.json:
        sys.stdout.write(json.dumps(info) + "\n")
    else:
        sys.stdout.write(f"{plain}\n")
        sys.stderr.write(f"created {info['role']} key {info['id']} ({info['name']}); it is shown only once\n")
    return 0


def _list(args: argparse.Namespace) -> int:
    store = _store(args)
    if store is None:
        return 2
    with store.read() as session:
        for row in list_keys(session):
            sys.stdout.write(f"{row.id}\t{row.role}\t{row.prefix}…\t{row.name}\t{row.created_at.isoformat()}\n")
    store.dispose()
    return 0


def _delete(args: argparse.Namespace) -> int:
    store = _store(args)
    if store is None:
        return 2
    with store.session() as session:
        found = delete_key(session, args.key_id)
    store.dispose()
    if not found:
        sys.stderr.write(f"safewatch keys: no key with id {args.key_id!r}\n")
        return 1
    return 0
