"""Shared test configuration. Fixture modules live in tests/fixtures/ and are loaded as plugins."""

from __future__ import annotations

import pathlib
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
# A module in tests/fixtures/ is a plugin when it defines fixtures (helper scripts such as the GStreamer server, run
# under Debian's python3, live there too and are not imported).
_FIXTURES = sorted(
    p.stem
    for p in (ROOT / "tests" / "fixtures").glob("*.py")
    if not p.stem.startswith("_") and "@pytest.fixture" in p.read_text(encoding="utf-8")
)
pytest_plugins = [f"tests.fixtures.{name}" for name in _FIXTURES]


@pytest.fixture(scope="session")
def repo_root() -> pathlib.Path:
    return ROOT


@pytest.fixture(scope="session")
def sample_clip() -> pathlib.Path:
    """The real sample clip (vtest, H.264, 768x576, 10 fps, 795 frames, GOP 20)."""
    return ROOT / "sample_media" / "vtest.mp4"


@pytest.fixture(scope="session")
def negative_clip() -> pathlib.Path:
    """A real clip without people (night skyline, 640x360, 25 fps)."""
    return ROOT / "sample_media" / "citycc0.mp4"


@pytest.fixture(scope="session")
def test_images() -> pathlib.Path:
    """Real images from registry packages (bus.jpg, zidane.jpg, astronaut.png, motorcycle_left.png)."""
    out = ROOT / ".cache" / "test-images"
    subprocess.run(["bash", str(ROOT / "scripts" / "test-images.sh"), str(out)], check=True, cwd=ROOT)
    return out
