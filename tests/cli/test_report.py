"""`safewatch report` over the replay-filled store of the report tests: it writes the very page the API serves (same
bytes), and bad input exits 2 naming the flag."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import Role
from api.settings import Settings
from cli.main import main
from tests.api.conftest import add_keys, auth, store_of
from tests.api.datasets.field_store import FieldStore, fill_store
from tests.api.reports.report_store import SITE_ZONE, first_site, report_settings, site_day
from tests.pipelines.e2e import harness
from tests.pipelines.e2e.harness import ReplayResult

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FieldStore, Settings]]:
    vtest: ReplayResult = harness.vtest_replay(tmp_path_factory.mktemp("vtest"))
    assert vtest.media_root is not None
    workdir = tmp_path_factory.mktemp("report")
    field = fill_store(f"sqlite:///{(workdir / 'store.db').as_posix()}", vtest, vtest.media_root)
    yield field, report_settings(field, workdir)


def _flags(field: FieldStore, settings: Settings) -> list[str]:
    return ["--database", field.url, "--media-root", str(field.media_root), "--config-dir", str(settings.config_dir)]


@pytest.mark.parametrize("lang", ["zh-CN", "en"])
def test_the_cli_writes_the_page_the_api_serves(
    world: tuple[FieldStore, Settings], tmp_path: Path, lang: str, capsys: pytest.CaptureFixture[str]
) -> None:
    field, settings = world
    site = first_site(field)
    day = site_day(field, site, SITE_ZONE).day.isoformat()
    out = tmp_path / "report.html"
    argv = ["report", "--site", site, "--date", day, "--out", str(out), "--lang", lang, *_flags(field, settings)]
    assert main(argv) == 0
    assert str(out) in capsys.readouterr().out
    app = create_app(settings)
    with TestClient(app) as client:
        viewer = auth(add_keys(store_of(app))[Role.viewer])
        served = client.get("/v1/reports/daily", params={"site": site, "date": day, "lang": lang}, headers=viewer)
    assert served.status_code == 200
    assert out.read_bytes() == served.text.encode("utf-8")


def test_bad_input_exits_2_naming_the_flag(
    world: tuple[FieldStore, Settings], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    field, settings = world
    out = str(tmp_path / "r.html")
    base = ["report", "--out", out, *_flags(field, settings)]
    cases = [
        (["--site", first_site(field), "--date", "2026-02-30"], "--date"),
        (["--site", first_site(field), "--date", "02/03/2026"], "--date"),
        (["--site", "", "--date", "2026-01-01"], "--site"),
        (["--site", "nowhere", "--date", "2026-01-01"], "--site"),
    ]
    for flags, named in cases:
        assert _exit([*base, *flags]) == 2, flags
        assert named in capsys.readouterr().err, flags
    unreadable = ["report", "--site", "s", "--date", "2026-01-01", "--out", out, "--database", "sqlite:///nope/x.db"]
    assert main(unreadable) == 2
    assert "cannot read the store" in capsys.readouterr().err
    assert not Path(out).exists()


def _exit(argv: list[str]) -> int:
    """The exit status of `safewatch ARGV` (argparse exits for a flag it refuses; the command returns its status)."""
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
