"""Issue 11, finding 4: webhooks as a server-side request forgery channel.

An admin key holder subscribes webhooks to the service's own network: loopback (the API itself, Redis on 6379),
RFC 1918, the cloud metadata address, IPv6 loopback, decimal/hex IPv4 forms and names that resolve to loopback.
The real `safewatch run` must refuse each with a 422 that says why. With `SAFEWATCH_WEBHOOK_ALLOW_HOSTS` a loopback
receiver is reachable, and what it answers (status 500 with a body) never comes back through the deliveries API or
the log: only `http_500`. A name that does not resolve is accepted and fails at delivery as `dns_error`. (DNS
rebinding, public at creation and loopback at delivery, is tested with a resolver stub in
tests/api/webhooks/test_guard.py.)
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.api.webhook_receiver import wait_for
from tests.security.conftest import LiveService, StartService, camera_yaml

pytestmark = pytest.mark.timeout(240)

SECRET = "ssrf-test-secret"
BODY_MARKER = "INTERNAL-ONLY-7f3a"  # what an internal server answers: must never reach an API answer or a log

ATTACKS = [
    ("http://127.0.0.1:8000/v1/keys", "loopback"),
    ("http://127.0.0.1:6379/", "loopback"),  # Redis
    ("http://10.0.0.1/hook", "private"),
    ("http://192.168.1.10:8080/hook", "private"),
    ("http://169.254.169.254/latest/meta-data/iam/security-credentials/", "link-local"),
    ("http://[::1]:8000/hook", "loopback"),
    ("http://[::ffff:127.0.0.1]:6379/", "loopback"),
    ("http://2130706433:6379/", "loopback"),  # 127.0.0.1 in decimal
    ("http://0x7f.1/", "loopback"),  # hex, shorthand
    ("http://localhost:6379/", "loopback"),  # a name that resolves to loopback
    ("http://0.0.0.0:8000/", "unspecified"),
    ("http://[fe80::1]/", "link-local"),
    ("http://224.0.0.1/", "multicast"),
]


def test_internal_addresses_are_refused_with_the_reason(start_service: StartService) -> None:
    svc = start_service([camera_yaml("yard-1", "north")])
    refused: dict[str, str] = {}
    with svc.client(svc.admin_key) as admin:
        for url, _kind in ATTACKS:
            r = admin.post("/v1/webhooks", json={"url": url, "secret": SECRET})
            refused[url] = f"{r.status_code} {r.text}"
        for scheme_url in ("gopher://127.0.0.1:6379/_INFO", "file:///etc/passwd"):
            assert admin.post("/v1/webhooks", json={"url": scheme_url, "secret": SECRET}).status_code == 422
        assert admin.get("/v1/webhooks").json() == []
        accepted = admin.post("/v1/webhooks", json={"url": "https://hooks.cam1.example/x", "secret": SECRET})
        assert accepted.status_code == 201, accepted.text  # does not resolve (yet): every delivery checks again
    wrong = {
        url: got
        for (url, kind), got in zip(ATTACKS, refused.values(), strict=True)
        if not (got.startswith("422 ") and f"{kind} address" in got and "SAFEWATCH_WEBHOOK_ALLOW_HOSTS" in got)
    }
    assert wrong == {}


class _AnsweringReceiver:
    """A loopback receiver that answers `status` with a body an attacker would like to read."""

    def __init__(self) -> None:
        self.status = 500
        self.posts = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.posts += 1
                body = f'{{"aws_secret": "{BODY_MARKER}"}}'.encode()
                self.send_response(receiver.status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def answering() -> Iterator[_AnsweringReceiver]:
    receiver = _AnsweringReceiver()
    yield receiver
    receiver.stop()


def _deliveries(svc: LiveService, hook: str) -> list[dict[str, Any]]:
    with svc.client(svc.admin_key) as admin:
        r = admin.get(f"/v1/webhooks/{hook}/deliveries")
    assert r.status_code == 200, r.text
    assert BODY_MARKER not in r.text
    return list(r.json())


def test_allow_listed_receiver_gets_deliveries_and_its_answers_stay_private(
    start_service: StartService, answering: _AnsweringReceiver
) -> None:
    env = {
        "SAFEWATCH_WEBHOOK_ALLOW_HOSTS": "127.0.0.1",
        "SAFEWATCH_WEBHOOK_BACKOFF_BASE_S": "0.2",
        "SAFEWATCH_WEBHOOK_BACKOFF_MAX_S": "1",
    }
    svc = start_service([camera_yaml("yard-1", "north")], env)
    with svc.client(svc.admin_key) as admin:
        r = admin.post("/v1/webhooks", json={"url": answering.url, "secret": SECRET})
        assert r.status_code == 201, r.text
        hook = r.json()["id"]
        r = admin.post("/v1/webhooks", json={"url": "http://hooks.cam1.example/x", "secret": SECRET})
        assert r.status_code == 201, r.text
        unresolved = r.json()["id"]
        refused = admin.post("/v1/webhooks", json={"url": "http://10.0.0.1/hook", "secret": SECRET})
        assert refused.status_code == 422 and "private address" in refused.text  # only 127.0.0.1 is listed
    wait_for(lambda: any(d["response_code"] == 500 for d in _deliveries(svc, hook)), timeout=150, interval=0.5)
    failed = [d for d in _deliveries(svc, hook) if d["response_code"] == 500]
    assert {d["last_error"] for d in failed} == {"http_500"} and answering.posts >= 1
    answering.status = 200
    wait_for(lambda: any(d["status"] == "delivered" for d in _deliveries(svc, hook)), timeout=30, interval=0.5)
    wait_for(lambda: any(d["last_error"] == "dns_error" for d in _deliveries(svc, unresolved)), timeout=30)
    svc.stop()
    assert BODY_MARKER not in svc.log()
