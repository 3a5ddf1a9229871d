"""`safewatch models push FILE --card CARD [--url URL] [--key KEY]`: push a model version to a running API
(`POST /v1/models`), which validates it, stores it by sha256 and rolls it out to the workers.

The file's sha256 is computed here and sent with it, so bytes changed on the way are refused. Bad input (a missing
file, an invalid card, a model the API refuses) exits 2 with the reason; an unreachable API or a server error exits 1.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import sys

import httpx

from vision.detect.model_store import ModelRejected, file_sha256, parse_upload_card

DEFAULT_URL = "http://127.0.0.1:8000"
TIMEOUT_S = 600.0  # validation loads the model and runs it once; a large model on a busy API takes a while


def add_push(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("push", help="push a model version (ONNX + card) to the API, which rolls it out to workers")
    p.add_argument("file", type=pathlib.Path, metavar="FILE.onnx")
    p.add_argument("--card", type=pathlib.Path, required=True, help="the model card YAML (its name names the model)")
    p.add_argument("--url", default=None, help=f"API base URL (default: $SAFEWATCH_API_URL or {DEFAULT_URL})")
    p.add_argument("--key", default=None, help="an admin API key (default: $SAFEWATCH_API_KEY)")
    p.add_argument("--json", action="store_true", help="print the API's answer as JSON")
    p.set_defaults(func=cmd_push)


def _fail(code: int, message: str) -> int:
    sys.stderr.write(f"models push: {message}\n")
    return code


def cmd_push(args: argparse.Namespace) -> int:
    url = (args.url or os.environ.get("SAFEWATCH_API_URL") or DEFAULT_URL).rstrip("/")
    key = args.key or os.environ.get("SAFEWATCH_API_KEY")
    if not key:
        return _fail(2, "no API key: pass --key or set SAFEWATCH_API_KEY (an admin key)")
    if not args.file.is_file():
        return _fail(2, f"{args.file}: no such file")
    try:
        card_text = args.card.read_text(encoding="utf-8")
        parse_upload_card(card_text)
    except (OSError, UnicodeDecodeError) as exc:
        return _fail(2, f"{args.card}: cannot read: {exc}")
    except ModelRejected as exc:
        return _fail(2, f"{args.card}: {exc.reason}")
    sha = file_sha256(args.file)
    try:
        with args.file.open("rb") as onnx:
            files = {"file": (args.file.name, onnx, "application/octet-stream"),
                     "card": (args.card.name, card_text.encode("utf-8"), "application/yaml")}  # fmt: skip
            r = httpx.post(f"{url}/v1/models", files=files, data={"sha256": sha}, headers={"X-API-Key": key},
                           timeout=TIMEOUT_S)  # fmt: skip
    except httpx.HTTPError as exc:
        return _fail(1, f"{url}: {type(exc).__name__}: {exc}")
    if r.status_code >= 400:
        try:
            detail = r.json().get("detail", r.text)
        except ValueError:
            detail = r.text
        return _fail(2 if r.status_code < 500 else 1, f"refused ({r.status_code}): {detail}")
    body = r.json()
    if args.json:
        sys.stdout.write(json.dumps(body, indent=2) + "\n")
    else:
        sys.stdout.write(f"pushed {body['name']} {sha} ({args.file.stat().st_size} bytes)\n")
    return 0
