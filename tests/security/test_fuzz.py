"""A bounded fuzz pass (hypothesis, derandomized) over the two untrusted inputs: camera YAML and detect uploads.

Camera configs: the valid files of camera_configs/ and the config tests, mutated byte-wise and line-wise, and valid
configs with one field replaced by a random JSON value, go through `load_camera_config` (from a file) and through
`PUT /v1/cameras/{id}` of an in-process app. The only outcomes allowed are a config or ConfigError, and 200/201/422.
Images: small valid images of every common format, truncated, bit-flipped, overwritten or spliced, go through
`load_image` and `POST /v1/detect`: an RGB array or ImageError, and 200 or a 4xx.

Nothing here may reach the network: the apps run in-process (TestClient, no camera workers, no webhook dispatcher),
and a guard on `socket` records any connection or name lookup that is not loopback; each test asserts there was none.
`derandomize=True` makes the examples the same on every run; the example counts keep the pass well under 2 minutes.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from api.app import create_app
from api.auth import Role
from pipelines.config.camera import CameraConfig, ConfigError, load_camera_config
from tests.api.conftest import add_keys, auth, make_settings, store_of
from tests.vision.detect.helpers import built_default_models_dir
from tests.vision.detect.test_images import FORMATS, encoded
from vision.detect.errors import ImageError
from vision.detect.images import decode_image, load_image

CAMERA_ID = re.compile(r"[a-z0-9_-]{1,64}")
ROOT = Path(__file__).resolve().parents[2]
SEEDS = sorted((ROOT / "camera_configs").glob("*.yaml")) + sorted(
    (ROOT / "tests" / "pipelines" / "config" / "cases" / "good").glob("*.yaml")
)
SEED_TEXTS = [p.read_bytes() for p in SEEDS]
SEED_DICTS = [d for d in (yaml.safe_load(t) for t in SEED_TEXTS) if isinstance(d, dict)]
IMAGE_SEEDS = [encoded(fmt, (24, 16)) for fmt in FORMATS] + [encoded("JPEG", (24, 16), progressive=True)]

_BASE = settings(
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def fuzz(examples: int) -> settings:
    """Reproducible (derandomized, no example database) and bounded (`examples`, no per-example deadline)."""
    return settings(_BASE, max_examples=examples)


# -- the network guard ---------------------------------------------------------------------------------------------


def _loopback(host: object) -> bool:
    return isinstance(host, str) and (host in {"localhost", "::1"} or host.startswith("127."))


@pytest.fixture(scope="module")
def outbound() -> Iterator[list[str]]:
    """Every non-loopback connect/lookup attempted while the module runs (refused, and recorded)."""
    seen: list[str] = []
    connect, connect_ex, getaddrinfo = socket.socket.connect, socket.socket.connect_ex, socket.getaddrinfo

    def check(sock: socket.socket, address: Any) -> None:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _loopback(address[0]):
            seen.append(f"connect {address!r}")
            raise ConnectionRefusedError(f"fuzz guard: no connection to {address!r}")

    def guarded_connect(sock: socket.socket, address: Any) -> None:
        check(sock, address)
        connect(sock, address)

    def guarded_connect_ex(sock: socket.socket, address: Any) -> int:
        check(sock, address)
        return connect_ex(sock, address)

    def guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None and not _loopback(host.decode() if isinstance(host, bytes) else host):
            seen.append(f"getaddrinfo {host!r}")
            raise socket.gaierror(f"fuzz guard: no lookup of {host!r}")
        return getaddrinfo(host, *args, **kwargs)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", guarded_connect)
        mp.setattr(socket.socket, "connect_ex", guarded_connect_ex)
        mp.setattr(socket, "getaddrinfo", guarded_getaddrinfo)
        yield seen


# -- apps ----------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory, outbound: list[str]) -> FastAPI:
    tmp = tmp_path_factory.mktemp("fuzz")
    (tmp / "cameras").mkdir()
    settings_ = make_settings(
        tmp,
        f"sqlite:///{(tmp / 'store.db').as_posix()}",
        models_dir=built_default_models_dir(),
        webhook_dispatcher=False,
        max_upload_bytes=1_000_000,
    )
    return create_app(settings_)  # no bus, no workers, no frame provider: PUT validates and writes YAML only


@pytest.fixture(scope="module")
def keys(app: FastAPI) -> dict[Role, str]:
    return add_keys(store_of(app))


@pytest.fixture(scope="module")
def client(app: FastAPI) -> Iterator[TestClient]:
    assert app.state.ctx.frames is None and app.state.ctx.bus is None  # no camera runs in this process
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="module")
def yaml_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz-yaml") / "camera.yaml"


# -- strategies ----------------------------------------------------------------------------------------------------


@st.composite
def mutated(draw: st.DrawFn, seeds: list[bytes], max_edits: int = 4) -> bytes:
    """One seed with 1..max_edits byte- or line-level edits."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, max_edits))):
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        kind = draw(st.sampled_from(["flip", "cut", "insert", "delete", "overwrite", "line"]))
        if kind == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "cut":
            del data[at:]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[at : at + draw(st.integers(1, 64))]
        elif kind == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=16))
            data[at : at + len(chunk)] = chunk
        elif kind == "line":
            lines = bytes(data).split(b"\n")
            i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
            lines.insert(j, lines[i])  # a duplicated line: duplicate keys, broken indentation, repeated items
            data = bytearray(b"\n".join(lines))
    return bytes(data)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=20,
)


@st.composite
def config_dicts(draw: st.DrawFn) -> dict[str, Any]:
    """A valid config with one value somewhere replaced (or one key added) by a random JSON value."""
    config = json.loads(json.dumps(draw(st.sampled_from(SEED_DICTS)), default=str))
    node: Any = config
    for _ in range(draw(st.integers(0, 3))):
        if isinstance(node, dict) and node:
            child = node[draw(st.sampled_from(sorted(node)))]
        elif isinstance(node, list) and node:
            child = draw(st.sampled_from(node))
        else:
            break
        if not isinstance(child, dict | list):
            break
        node = child
    if isinstance(node, dict):
        key = draw(st.sampled_from(sorted(node)) | st.text(min_size=1, max_size=12))
        node[key] = draw(JSON)
    elif isinstance(node, list) and node:
        node[draw(st.integers(0, len(node) - 1))] = draw(JSON)
    return config


def _as_body(text: bytes) -> dict[str, Any] | None:
    """The YAML text as a PUT body, when it parses to a mapping that JSON can carry."""
    try:
        data = yaml.safe_load(text)
        if not isinstance(data, dict):
            return None
        body: dict[str, Any] = json.loads(json.dumps(data, default=str))
    except (yaml.YAMLError, TypeError, ValueError):
        return None
    return body


def _put(client: TestClient, headers: dict[str, str], body: dict[str, Any]) -> int:
    given_id = body.get("id")
    camera_id = given_id if isinstance(given_id, str) and CAMERA_ID.fullmatch(given_id) else "fuzz-cam"
    content = json.dumps(body, allow_nan=True)  # NaN/Infinity too: Python's JSON parser (FastAPI's) accepts them
    r = client.put(f"/v1/cameras/{camera_id}", content=content, headers={**headers, "Content-Type": "application/json"})
    assert r.status_code in {200, 201, 422}, (r.status_code, r.text[:500], body)
    event(f"PUT {r.status_code}")  # `--hypothesis-show-statistics` shows how many were accepted
    return r.status_code


# -- camera YAML ---------------------------------------------------------------------------------------------------


@fuzz(300)
@given(text=mutated(SEED_TEXTS))
def test_mutated_yaml_files_load_or_raise_config_error(text: bytes, yaml_file: Path, outbound: list[str]) -> None:
    yaml_file.write_bytes(text)
    try:
        assert isinstance(load_camera_config(yaml_file), CameraConfig)
    except ConfigError as exc:
        assert exc.problems
    assert outbound == []


@fuzz(150)
@given(text=mutated(SEED_TEXTS))
def test_mutated_yaml_put_is_validated(text: bytes, client: TestClient, keys: dict[Role, str]) -> None:
    body = _as_body(text)
    if body is not None:
        _put(client, auth(keys[Role.operator]), body)


@fuzz(200)
@given(body=config_dicts())
def test_structured_configs_load_or_put_cleanly(
    body: dict[str, Any], yaml_file: Path, client: TestClient, keys: dict[Role, str], outbound: list[str]
) -> None:
    yaml_file.write_text(yaml.safe_dump(body, allow_unicode=True), encoding="utf-8")
    try:
        load_camera_config(yaml_file)
    except ConfigError as exc:
        assert exc.problems
    _put(client, auth(keys[Role.operator]), body)
    assert outbound == []


# -- detect uploads ------------------------------------------------------------------------------------------------


@fuzz(400)
@given(data=mutated(IMAGE_SEEDS, max_edits=3))
def test_mutated_images_decode_or_raise_image_error(data: bytes) -> None:
    for load in (
        lambda: load_image(data),
        lambda: decode_image(data, max_side=16, max_decoded_pixels=1_000_000).pixels,
    ):
        try:
            out = load()
        except ImageError:
            continue
        assert out.ndim == 3 and out.shape[2] == 3 and out.dtype.name == "uint8"


@fuzz(60)
@given(data=mutated(IMAGE_SEEDS, max_edits=3))
def test_mutated_uploads_are_200_or_4xx(
    data: bytes, client: TestClient, keys: dict[Role, str], outbound: list[str]
) -> None:
    r = client.post("/v1/detect", files={"file": ("fuzz.img", data, "image/jpeg")}, headers=auth(keys[Role.platform]))
    assert r.status_code == 200 or 400 <= r.status_code < 500, (r.status_code, r.text[:300])
    assert outbound == []
