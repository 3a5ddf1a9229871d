"""Every clip of a long incident through the API: detail `clips`, `clips/{index}.mp4` with Range and HEAD.

The incident is real: the cached vtest replay (tests/pipelines/e2e/harness.py, evidence on) keeps the van of
exit_van.yaml in its bay for the whole ~80 s file, so its exit_blocked incident (~65 s open, `max_clip_s` 60) is
split into `clip-000.mp4` and `clip-001.mp4` with a manifest. Its events go into a store and an app serves the
replay's media root. An incident still open is the same evidence folder before the close: no manifest, and only the
clips written so far.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import Role
from api.store.incidents import apply_event
from api.store.keys import create_key
from pipelines.events import EventType, IncidentEvent
from tests.api.conftest import add_keys, auth, make_settings, store_of
from tests.pipelines.e2e import harness
from tests.pipelines.e2e.harness import ReplayResult

GOP_S = 2.0  # vtest: GOP 20 at 10 fps
FRAME_S = 0.1
BASE = "http://safewatch.test"
SAME_HEADERS = ("content-type", "content-length", "accept-ranges", "etag", "last-modified")


@pytest.fixture(scope="module")
def vtest(tmp_path_factory: pytest.TempPathFactory) -> ReplayResult:
    return harness.vtest_replay(tmp_path_factory.mktemp("vtest"))


@pytest.fixture(scope="module")
def van(vtest: ReplayResult) -> list[IncidentEvent]:
    """Every event of the van's incident, in publish order (the last one is `closed`)."""
    closed = [e for e in vtest.of(zone="van_bay", type_=EventType.closed)]
    assert len(closed) == 1, closed
    return [e for e in vtest.events if e.id == closed[0].id]


@dataclass
class Api:
    http: TestClient
    viewer: dict[str, str]
    other_site: dict[str, str]  # a viewer key scoped to a site the incident is not at
    media: Path


@contextmanager
def _api(tmp_path: Path, media: Path, events: list[IncidentEvent]) -> Iterator[Api]:
    """An app over `media` whose store holds `events`, with a viewer key and one scoped to another site."""
    settings = make_settings(tmp_path, f"sqlite:///{(tmp_path / 'store.db').as_posix()}", media_root=media)
    app = create_app(settings)
    store = store_of(app)
    for event in events:
        apply_event(store, event)
    viewer = add_keys(store)[Role.viewer]
    with store.session() as session:
        _row, scoped = create_key(session, role=Role.viewer.value, name="elsewhere", sites=["elsewhere"])
    with TestClient(app) as http:
        yield Api(http, auth(viewer), auth(scoped), media)


@pytest.fixture
def closed(tmp_path: Path, vtest: ReplayResult, van: list[IncidentEvent]) -> Iterator[Api]:
    assert vtest.media_root is not None
    with _api(tmp_path, vtest.media_root, van) as api:
        yield api


def _duration_s(data: bytes, tmp_path: Path) -> float:
    """Seconds from the first to the last frame of an MP4 (presentation times)."""
    path = tmp_path / "probe.mp4"
    path.write_bytes(data)
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        pts = [p.pts for p in container.demux(stream) if p.size and p.pts is not None]
        assert stream.time_base is not None
        return float((max(pts) - min(pts)) * stream.time_base)


def _clips(api: Api, incident: str) -> list[dict[str, Any]]:
    r = api.http.get(f"/v1/incidents/{incident}", headers=api.viewer)
    assert r.status_code == 200, r.text
    clips: list[dict[str, Any]] = r.json()["clips"]
    return clips


def test_detail_lists_every_clip_with_sha256_and_times(
    closed: Api, van: list[IncidentEvent], vtest: ReplayResult, tmp_path: Path
) -> None:
    incident, end = van[-1].id, van[-1]
    assert end.clip_url is not None
    folder = closed.media / end.clip_url
    manifest = json.loads((folder.parent / "manifest.json").read_text(encoding="utf-8"))
    clips = _clips(closed, incident)
    assert [c["index"] for c in clips] == [0, 1], "a ~65 s incident with max_clip_s 60 is two clips"
    cfg = vtest.camera.evidence.clip
    previous_end: float | None = None
    for clip in clips:
        i = clip["index"]
        assert clip["url"].startswith(f"{BASE}/v1/incidents/{incident}/clips/{i}.mp4?exp=")  # signed
        data = closed.http.get(f"/v1/incidents/{incident}/clips/{i}.mp4", headers=closed.viewer).content
        assert clip["sha256"] == hashlib.sha256(data).hexdigest() == manifest["files"][f"clip-{i:03d}.mp4"]["sha256"]
        assert abs(clip["duration_s"] - _duration_s(data, tmp_path)) <= FRAME_S + 1e-6
        planned = -cfg.pre_roll_s + i * cfg.max_clip_s  # the window start; the clip starts at the keyframe before
        if i == 0:  # the keyframe before the pre-roll's start, or the file's first frame when that is later
            assert planned - GOP_S <= clip["start_offset_s"] <= 0.0
        else:
            assert planned - GOP_S - 1e-3 <= clip["start_offset_s"] <= planned + 1e-3
            assert previous_end is not None and clip["start_offset_s"] <= previous_end  # contiguous: no gap
        previous_end = clip["start_offset_s"] + clip["duration_s"]
    assert [(c["path"], c["index"]) for c in manifest["clips"]] == [("clip-000.mp4", 0), ("clip-001.mp4", 1)]


def test_clip_mp4_stays_the_first_and_range_works_on_a_later_clip(closed: Api, van: list[IncidentEvent]) -> None:
    incident, h = van[-1].id, closed.viewer
    first = closed.http.get(f"/v1/incidents/{incident}/clip.mp4", headers=h)
    assert first.status_code == 200
    assert first.content == closed.http.get(f"/v1/incidents/{incident}/clips/0.mp4", headers=h).content
    url = f"/v1/incidents/{incident}/clips/1.mp4"
    data = closed.http.get(url, headers=h).content
    assert data != first.content and len(data) > 2000
    part = closed.http.get(url, headers={**h, "Range": "bytes=100-1099"})
    assert part.status_code == 206 and part.headers["content-type"] == "video/mp4"
    assert part.headers["content-range"] == f"bytes 100-1099/{len(data)}" and part.content == data[100:1100]
    tail = closed.http.get(url, headers={**h, "Range": "bytes=-500"})
    assert tail.status_code == 206 and tail.content == data[-500:]
    bad = closed.http.get(url, headers={**h, "Range": f"bytes={len(data) + 10}-"})
    assert bad.status_code == 416 and bad.headers["content-range"] == f"bytes */{len(data)}"


def test_head_answers_the_get_headers_without_a_body(closed: Api, van: list[IncidentEvent]) -> None:
    incident, h = van[-1].id, closed.viewer
    for media in ("clips/1.mp4", "clips/0.mp4", "clip.mp4", "snapshot.jpg", "snapshot.jpg?raw=1"):
        url = f"/v1/incidents/{incident}/{media}"
        get, head = closed.http.get(url, headers=h), closed.http.head(url, headers=h)
        assert (get.status_code, head.status_code, head.content) == (200, 200, b""), media
        assert {k: head.headers[k] for k in SAME_HEADERS} == {k: get.headers[k] for k in SAME_HEADERS}, media
        assert int(head.headers["content-length"]) == len(get.content)
    ranged = closed.http.head(f"/v1/incidents/{incident}/clips/1.mp4", headers={**h, "Range": "bytes=0-99"})
    assert (ranged.status_code, ranged.headers["content-length"], ranged.content) == (206, "100", b"")
    assert ranged.headers["content-range"].startswith("bytes 0-99/")


def test_missing_and_invalid_clip_index(closed: Api, van: list[IncidentEvent]) -> None:
    incident, h = van[-1].id, closed.viewer
    for method in ("GET", "HEAD"):
        missing = closed.http.request(method, f"/v1/incidents/{incident}/clips/2.mp4", headers=h)
        assert missing.status_code == 404, method
    body = closed.http.get(f"/v1/incidents/{incident}/clips/2.mp4", headers=h).json()
    assert body == {"detail": f"incident {incident!r} has no clip 2"}
    for bad in ("-1", "x", "1.5", "01x"):
        r = closed.http.get(f"/v1/incidents/{incident}/clips/{bad}.mp4", headers=h)
        assert r.status_code == 422, bad
        assert [p["path"] for p in r.json()["detail"]] == ["path.index"], bad
    assert closed.http.get("/v1/incidents/nope/clips/0.mp4", headers=h).status_code == 404
    for media in ("clips/0.mp4", "clip.mp4", "snapshot.jpg"):
        r = closed.http.post(f"/v1/incidents/{incident}/{media}", headers=h)
        assert (r.status_code, r.headers["allow"]) == (405, "GET, HEAD"), media


def test_a_key_of_another_site_gets_404(closed: Api, van: list[IncidentEvent]) -> None:
    incident = van[-1].id
    for path in ("", "/clips/0.mp4", "/clips/1.mp4", "/clip.mp4", "/snapshot.jpg"):
        for method in ("GET", "HEAD") if path else ("GET",):  # HEAD: media routes only
            r = closed.http.request(method, f"/v1/incidents/{incident}{path}", headers=closed.other_site)
            assert r.status_code == 404, (method, path)
            assert closed.http.request(method, f"/v1/incidents/{incident}{path}", headers=closed.viewer).is_success


def _open_folder(tmp_path: Path, vtest: ReplayResult, end: IncidentEvent, keep: tuple[str, ...]) -> Path:
    """A media root holding the incident's evidence folder as it was before the close: `keep`'s files only."""
    assert vtest.media_root is not None and end.clip_url is not None
    media = tmp_path / "media"
    source = (vtest.media_root / end.clip_url).parent
    target = media / source.relative_to(vtest.media_root)
    target.mkdir(parents=True)
    for name in keep:
        shutil.copy(source / name, target / name)
    return media


@pytest.mark.parametrize("written", [("clip-000.mp4",), ()], ids=["first-clip-written", "no-clip-yet"])
def test_an_open_incident_lists_the_clips_written_so_far(
    tmp_path: Path, vtest: ReplayResult, van: list[IncidentEvent], written: tuple[str, ...]
) -> None:
    media = _open_folder(tmp_path, vtest, van[-1], ("snapshot.jpg", *written))
    still_open = [e for e in van if e.type is not EventType.closed]
    with _api(tmp_path, media, still_open) as api:
        incident = van[0].id
        assert api.http.get(f"/v1/incidents/{incident}", headers=api.viewer).json()["status"] == "open"
        clips = _clips(api, incident)
        if written:
            assert clips[0]["url"].startswith(f"{BASE}/v1/incidents/{incident}/clips/0.mp4?exp=")  # signed
            assert clips == [
                {
                    "index": 0,
                    "url": clips[0]["url"],
                    "start_offset_s": None,
                    "duration_s": None,
                    "sha256": None,
                }
            ]
        else:
            assert clips == []
        status = 200 if written else 404
        assert api.http.get(f"/v1/incidents/{incident}/clips/0.mp4", headers=api.viewer).status_code == status
        assert api.http.head(f"/v1/incidents/{incident}/clip.mp4", headers=api.viewer).status_code == status
        assert api.http.get(f"/v1/incidents/{incident}/clips/1.mp4", headers=api.viewer).status_code == 404
