"""HEAD /v1/cameras/{id}/frame.jpg: the headers of the GET (same Content-Length, source, caching), no picture."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import Role
from tests.api.conftest import add_keys, auth, make_settings, store_of

URL = "/v1/cameras/{}/frame.jpg"
SAME_HEADERS = ("content-type", "content-length", "x-frame-source", "cache-control")


@pytest.fixture
def http(tmp_path: Path, sqlite_url: str, repo_root: Path, sample_clip: Path) -> Iterator[TestClient]:
    """An app with demo-gate.yaml on the sample clip (not running here: frame.jpg is the file's first frame)."""
    config_dir = tmp_path / "cameras"
    config_dir.mkdir()
    text = (repo_root / "camera_configs" / "demo-gate.yaml").read_text(encoding="utf-8")
    (config_dir / "demo-gate.yaml").write_text(text.replace("sample_media/vtest.mp4", str(sample_clip)), "utf-8")
    app = create_app(make_settings(tmp_path, sqlite_url, config_dir=config_dir, webhook_dispatcher=False))
    with TestClient(app) as client:
        client.headers.update(auth(add_keys(store_of(app))[Role.operator]))
        yield client


def test_head_frame_has_the_get_headers_and_no_body(http: TestClient) -> None:
    client = http
    for query in ("", "?max_side=320"):
        get, head = client.get(URL.format("demo-gate") + query), client.head(URL.format("demo-gate") + query)
        assert (get.status_code, head.status_code, head.content) == (200, 200, b""), query
        assert {k: head.headers[k] for k in SAME_HEADERS} == {k: get.headers[k] for k in SAME_HEADERS}
        assert int(head.headers["content-length"]) == len(get.content) > 1000
        assert head.headers["x-frame-source"] == "file"


def test_head_frame_of_an_unknown_camera_is_404(http: TestClient) -> None:
    assert http.head(URL.format("nope")).status_code == 404
