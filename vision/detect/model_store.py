"""Pushed models, content-addressed: validation of an upload, the store the API writes, and a worker's verified cache.

- `validate_model(onnx, card_text)`: the card parses (`vision.detect.card`), is a model of its own (not a precision
  variant), the ONNX loads, its classes agree with the card (count; names where both the card and the file's `names`
  metadata list them; every `labels` class exists), its input size matches, and one inference on a blank image runs.
  A card that records a `sha256` must record this file's. Every refusal is a `ModelRejected` with a reason.
- `ModelStore(root)`: `<root>/<sha256>.onnx` and `<sha256>.yaml` (the card, `file` rewritten to `<sha256>.onnx` and
  `sha256` set). Content addressing makes a stored file immutable: same bytes, same name.
- `ModelCache(store, cache_dir)`: a worker's private copy of the versions it runs. `fetch(sha256)` copies from the
  store while hashing and keeps the copy only when the hash is the one asked for (`ModelRejected` otherwise); a cached
  file is hashed again before every load, so a file changed in the cache is fetched again, and one changed in the
  store is refused. Sessions load from the private copy, never from the shared store, so what runs is what was
  checked.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pathlib
import shutil
import tempfile
import threading
from collections.abc import Collection

import numpy as np
import yaml

from vision.detect.card import ModelCard, dump_card, parse_card
from vision.detect.detector import Detector
from vision.detect.errors import CardError, ModelError

log = logging.getLogger(__name__)

CHUNK = 1 << 20
_SHA = frozenset("0123456789abcdef")


class ModelRejected(ValueError):
    """An upload or a fetched file that must not run; `reason` says why (for a 4xx or a log line)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def is_sha256(value: str) -> bool:
    return len(value) == 64 and set(value) <= _SHA


def file_sha256(path: pathlib.Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def parse_upload_card(text: str) -> ModelCard:
    """The card of an upload; `ModelRejected` naming the fields at fault."""
    try:
        card = parse_card(text, "card")
    except CardError as exc:
        raise ModelRejected("invalid model card: " + "; ".join(exc.lines)) from None
    if card.variant_of is not None:
        raise ModelRejected("card: a precision variant (variant_of) cannot be pushed; push the model itself")
    return card


def validate_model(onnx: pathlib.Path, card_text: str, *, sha256: str | None = None) -> ModelCard:
    """The validated card of `onnx` (module docs), `file` = `<sha256>.onnx`, `sha256` set. `sha256`: what the sender
    says the file's hash is (a mismatch means the bytes changed on the way)."""
    card = parse_upload_card(card_text)
    actual = file_sha256(onnx)
    for claimed, who in ((sha256, "the request"), (card.sha256, "the card")):
        if claimed is not None and claimed != actual:
            raise ModelRejected(f"sha256 mismatch: {who} says {claimed}, the uploaded file is {actual}")
    card = card.model_copy(update={"file": f"{actual}.onnx", "sha256": actual})
    with tempfile.TemporaryDirectory(prefix="safewatch-model-check-") as tmp:
        os.symlink(onnx.resolve(), pathlib.Path(tmp) / card.file)
        try:
            detector = Detector(card, pathlib.Path(tmp))
            _check_metadata(detector, card)
            h, w = detector.input_hw
            found = detector.detect(np.zeros((h, w, 3), dtype=np.uint8), confidence=0.0)
        except ModelError as exc:
            raise ModelRejected(str(exc).replace(str(tmp) + "/", "")) from None
        except Exception as exc:  # the inference itself failed: a graph ORT loads but cannot run
            raise ModelRejected(f"test inference failed: {type(exc).__name__}: {exc}") from None
    log.info("model %s %s validated (test inference: %d boxes)", card.name, actual[:12], len(found))
    return card


def _check_metadata(detector: Detector, card: ModelCard) -> None:
    """Class names the card lists must be the file's `names` metadata, where the file has one."""
    io = detector.io
    if isinstance(card.class_names, list) and io.names is not None and card.class_names != io.names:
        raise ModelRejected(
            f"class mismatch: the card lists {len(card.class_names)} classes {card.class_names[:5]}… but the "
            f"model's metadata names {len(io.names)}: {io.names[:5]}…"
        )


class ModelStore:
    """`<root>/<sha256>.onnx` + `<sha256>.yaml` (module docs)."""

    def __init__(self, root: pathlib.Path) -> None:
        self.root = root

    def onnx(self, sha256: str) -> pathlib.Path:
        if not is_sha256(sha256):
            raise ModelRejected(f"not a sha256: {sha256!r}")
        return self.root / f"{sha256}.onnx"

    def add(self, onnx: pathlib.Path, card: ModelCard) -> pathlib.Path:
        """Move the validated file `onnx` (on the same filesystem, or copied) into the store under its hash."""
        assert card.sha256 is not None
        self.root.mkdir(parents=True, exist_ok=True)
        dest = self.onnx(card.sha256)
        if not dest.is_file():
            tmp = _part(dest)
            shutil.copyfile(onnx, tmp)
            os.replace(tmp, dest)
        dump_card(card, self.root / f"{card.sha256}.yaml")
        return dest

    def remove(self, sha256: str) -> None:
        for path in (self.onnx(sha256), self.root / f"{sha256}.yaml"):
            path.unlink(missing_ok=True)


class ModelCache:
    """A worker's verified copies of pushed versions (module docs)."""

    def __init__(self, store: ModelStore, cache_dir: pathlib.Path) -> None:
        self.store = store
        self.dir = cache_dir

    def fetch(self, sha256: str) -> pathlib.Path:
        """The verified private copy of version `sha256` (fetched when missing or changed); `ModelRejected`."""
        dest = self.dir / f"{sha256}.onnx"
        try:
            if file_sha256(dest) == sha256:
                return dest
            log.warning("model cache: %s changed on disk; fetching it again", dest.name)
            dest.unlink(missing_ok=True)
        except FileNotFoundError:  # not cached (or pruned by a worker sharing the directory meanwhile)
            pass
        src = self.store.onnx(sha256)
        if not src.is_file():
            raise ModelRejected(f"model {sha256[:12]} is not in the model store {self.store.root}")
        self.dir.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        tmp = _part(dest)
        with src.open("rb") as fin, tmp.open("wb") as fout:
            while chunk := fin.read(CHUNK):
                digest.update(chunk)
                fout.write(chunk)
        if digest.hexdigest() != sha256:
            tmp.unlink(missing_ok=True)
            raise ModelRejected(f"sha256 mismatch: the store's {src.name} hashes to {digest.hexdigest()}; refused")
        os.replace(tmp, dest)
        return dest

    def prune(self, keep: Collection[str]) -> list[str]:
        """Delete the cached copies of versions not in `keep` (sha256s); returns the ones deleted. A copy is only a
        cache: a version needed again is fetched again (and a running session holds its model in memory)."""
        gone = []
        for path in sorted(self.dir.glob("*.onnx")) if self.dir.is_dir() else []:
            if path.stem not in keep:
                path.unlink(missing_ok=True)
                gone.append(path.stem)
        return gone


def _part(dest: pathlib.Path) -> pathlib.Path:
    """A temporary name beside `dest`, own to this thread (several workers may share a cache directory)."""
    return dest.with_name(f".{dest.name}.{os.getpid()}-{threading.get_ident()}.part")


def card_text(card: ModelCard) -> str:
    """A card as YAML text (what `POST /v1/models` takes)."""
    data = card.model_dump(mode="json")
    data["input_size"] = list(card.input_size)
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=120)
