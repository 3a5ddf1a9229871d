"""Schemathesis against the app: every operation, positive and negative examples, every check (`--checks all`).

Bounded (20 derandomized examples per operation) and closed: the app runs no camera workers (a plain `create_app`),
no webhook dispatcher, the webhook SSRF guard is on (the default), and host names resolve only when they are
loopback (`_loopback_dns`), so a fuzz run contacts nothing but this process. `DELETE /v1/keys/{key_id}` is excluded:
it could revoke the key the run authenticates with; `GET /v1/events` too: a 200 is an endless stream (its errors
are tested in tests/api/routers/test_events.py).

One check is excluded: `positive_data_acceptance` (a schema-valid request must not get a 4xx). The schema cannot
express what the server rightly refuses after reading its state: a cursor that is not one it issued (400), an
`If-Match` that is not the current ETag (412), a model that is not built (422), a `Last-Event-ID` that is not an
event number (400). Every other check runs, negative data included.
"""

from __future__ import annotations

import socket
import tempfile
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from api.app import create_app
from api.auth import Role
from api.store.keys import create_key
from tests.api.conftest import make_settings

_getaddrinfo = socket.getaddrinfo


def _loopback_only(host: Any, *args: Any, **kwargs: Any) -> Any:
    infos = _getaddrinfo(host, *args, **kwargs)
    if host not in ("localhost", "127.0.0.1", "::1"):
        raise socket.gaierror(socket.EAI_NONAME, f"{host!r} does not resolve in this test")
    return infos


def _fuzzed_app() -> tuple[FastAPI, str]:
    """Built at import: schemathesis parametrizes the test from the app's schema at collection."""
    tmp = Path(tempfile.mkdtemp(prefix="safewatch-conformance-"))
    settings = make_settings(tmp, f"sqlite:///{(tmp / 'store.db').as_posix()}", webhook_dispatcher=False)
    app = create_app(settings)
    with app.state.ctx.store.session() as session:
        _row, admin = create_key(session, role=Role.admin.value, name="fuzz-admin")
    return app, admin


APP, ADMIN_KEY = _fuzzed_app()


@pytest.fixture(autouse=True)
def _loopback_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    """A generated webhook URL must not make the guard ask a real resolver."""
    monkeypatch.setattr(socket, "getaddrinfo", _loopback_only)


schema = (
    schemathesis.openapi.from_asgi("/openapi.json", APP)
    .exclude(method="DELETE", path="/v1/keys/{key_id}")
    .exclude(method="GET", path="/v1/events")
)
schema.config.generation.update(
    modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE], max_examples=20, deterministic=True
)


@schema.parametrize()
def test_conformance(case: Any) -> None:
    case.call_and_validate(headers={"X-API-Key": ADMIN_KEY}, excluded_checks=[positive_data_acceptance])
