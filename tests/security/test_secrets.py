"""Issue 11, findings 2 and 3: credentials in stream URLs and webhook tokens never reach a log line or a response.

The real `safewatch run` gets a camera whose RTSP URL carries a password both ways (userinfo with an `@` in it, and
a Dahua-style `?password=`), reconnecting to a closed loopback port, a camera on the sample clip that raises
incidents, and DingTalk (`?access_token=`), Feishu (token in the path) and WeCom (`?key=`, refused connection)
webhooks. After events were delivered and the source retried a few times, no secret may appear in the service's
log, the API's answers (cameras, config problems, webhooks, deliveries, workers, metrics, incidents, SSE), the
evidence files or `safewatch probe` output.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

import httpx
import pytest
import yaml

from tests.api.webhook_receiver import Receiver, wait_for
from tests.security.conftest import ROOT, LiveService, StartService, camera_yaml, free_port

pytestmark = pytest.mark.timeout(240)

SECRETS = ("p@ssw0rd", "ssw0rd", "S3cretQ", "DingTok123", "FeishuTok456", "WecomKey789")


def _stream(port: int) -> str:
    return f"rtsp://admin:p@ssw0rd@127.0.0.1:{port}/stream?user=admin&password=S3cretQ"


def _assert_clean(where: str, text: str) -> None:
    leaked = [s for s in SECRETS if s in text]
    assert not leaked, f"{where} shows {leaked}:\n{text[:4000]}"


def _sse_head(svc: LiveService, key: str, seconds: float = 3.0, limit: int = 32768) -> str:
    """The first events of the stream (from the start of the store), read for at most `seconds`."""
    text = ""
    deadline = time.monotonic() + seconds
    timeout = httpx.Timeout(10.0, read=seconds)
    with (
        httpx.Client(base_url=svc.base, headers={"X-API-Key": key}, timeout=timeout, trust_env=False) as http,
        http.stream("GET", "/v1/events", params={"after": 0}) as r,
    ):
        assert r.status_code == 200
        try:
            for chunk in r.iter_text():
                text += chunk
                if time.monotonic() > deadline or len(text) > limit:
                    break
        except httpx.ReadTimeout:
            pass
    return text


def _subscribe(svc: LiveService, receiver: Receiver, dead: int) -> dict[str, str]:
    """Three webhooks (format → id); the POST answers must not show the tokens either."""
    urls = {
        "dingtalk": f"http://127.0.0.1:{receiver.port}/robot/send?access_token=DingTok123",
        "feishu": f"http://127.0.0.1:{receiver.port}/open-apis/bot/v2/hook/FeishuTok456",
        "wecom": f"http://127.0.0.1:{dead}/cgi-bin/webhook/send?key=WecomKey789",  # refused: the failure path
    }
    ids = {}
    with svc.client(svc.admin_key) as admin:
        for fmt, url in urls.items():
            r = admin.post("/v1/webhooks", json={"url": url, "secret": "hmac-secret-1", "format": fmt})
            assert r.status_code == 201, r.text
            _assert_clean(f"POST /v1/webhooks ({fmt})", r.text)
            ids[fmt] = r.json()["id"]
    return ids


def _wait_for_traffic(svc: LiveService, receiver: Receiver, wecom: str) -> None:
    """Deliveries reached both live receivers (with the real tokens), the refused one failed at least once, and the
    RTSP source retried."""

    def paths() -> set[str]:
        return {r.path for r in list(receiver.received)}

    wait_for(lambda: "/robot/send?access_token=DingTok123" in paths(), timeout=120, interval=0.5)
    wait_for(lambda: "/open-apis/bot/v2/hook/FeishuTok456" in paths(), timeout=30, interval=0.5)
    with svc.client(svc.admin_key) as admin:
        wait_for(
            lambda: any(d["attempts"] for d in admin.get(f"/v1/webhooks/{wecom}/deliveries").json()),
            timeout=30,
            interval=0.5,
        )
    wait_for(lambda: svc.log().count("retrying in") >= 2, timeout=30, interval=0.5)


def _responses(svc: LiveService, ids: dict[str, str]) -> dict[str, str]:
    """Every answer that could show a stream URL or a webhook URL, by route."""
    out: dict[str, str] = {}
    viewer, operator, admin = svc.key("viewer"), svc.key("operator"), svc.admin_key
    with svc.client(viewer) as http:
        for path in ("/v1/cameras", "/v1/cameras/vault-1", "/v1/cameras/bad-1", "/v1/workers", "/metrics"):
            out[path] = http.get(path).text
        out["/v1/incidents"] = http.get("/v1/incidents").text
    with svc.client(admin) as http:
        out["/v1/webhooks"] = http.get("/v1/webhooks").text
        for fmt, webhook_id in ids.items():
            out[f"deliveries ({fmt})"] = http.get(f"/v1/webhooks/{webhook_id}/deliveries").text
    with svc.client(operator) as http:
        body = camera_yaml("vault-2", "north", detect=_stream(1), analysis_fps=-1)
        r = http.put("/v1/cameras/vault-2", json={k: v for k, v in body.items() if k != "id"})
        assert r.status_code == 422, r.text
        out["PUT /v1/cameras (invalid)"] = r.text
    out["SSE /v1/events"] = _sse_head(svc, svc.key("platform"))
    return out


def test_no_secret_in_logs_responses_or_evidence(start_service: StartService) -> None:
    receiver = Receiver()
    receiver.start()
    dead = free_port()  # nothing listens: the RTSP source and the WeCom webhook get refused connections
    try:
        svc = start_service(
            [camera_yaml("vault-1", "north", detect=_stream(dead)), camera_yaml("yard-1", "north")],
            {"SAFEWATCH_WEBHOOK_ALLOW_HOSTS": "127.0.0.1"},
        )
        ids = _subscribe(svc, receiver, dead)
        # a hand-edited, invalid camera file: its problems are listed by GET /v1/cameras and logged by the worker
        bad = camera_yaml("bad-1", "north", detect=_stream(dead), analysis_fps=-1)
        (svc.config_dir / "bad-1.yaml").write_text(yaml.safe_dump(bad), encoding="utf-8")
        _wait_for_traffic(svc, receiver, ids["wecom"])
        answers = _responses(svc, ids)
    finally:
        receiver.stop()
    cameras = json.loads(answers["/v1/cameras"])
    vault = next(c for c in cameras["items"] if c["id"] == "vault-1")
    assert vault["streams"]["detect"] == f"rtsp://***@127.0.0.1:{dead}/stream?user=admin&password=***"
    assert any(p["file"] == "bad-1.yaml" for p in cameras["problems"])
    hooks = {h["format"]: h["url"] for h in json.loads(answers["/v1/webhooks"])}
    assert hooks["dingtalk"] == f"http://127.0.0.1:{receiver.port}/robot/send?access_token=***"
    assert hooks["feishu"] == f"http://127.0.0.1:{receiver.port}/open-apis/bot/v2/hook/***"
    assert hooks["wecom"] == f"http://127.0.0.1:{dead}/cgi-bin/webhook/send?key=***"
    assert '"type":"opened"' in answers["SSE /v1/events"].replace(" ", "")
    for where, text in answers.items():
        _assert_clean(where, text)
    svc.stop()  # shutdown closes incidents and writes their manifests: those log lines and files count too
    log = svc.log()
    assert f"rtsp://***@127.0.0.1:{dead}/stream?user=admin&password=***" in log  # the source did log its URL
    _assert_clean("the service log", log)
    for path in svc.data_dir.rglob("*"):
        if path.suffix in {".json", ".jsonl", ".yaml", ".log", ".txt"}:
            _assert_clean(str(path), path.read_text(encoding="utf-8", errors="replace"))


@pytest.mark.parametrize("flags", [["--json"], ["-vv"]])
def test_probe_output_has_no_credentials(flags: list[str]) -> None:
    """`safewatch probe` (JSON, and text with debug logging) on a refused RTSP URL with credentials both ways."""
    url = _stream(free_port())
    cmd = [sys.executable, "-m", "cli.main", *[f for f in flags if f.startswith("-v")], "probe", url]
    cmd += ["--seconds", "2", "--open-timeout", "1", "--read-timeout", "1"]
    cmd += [f for f in flags if not f.startswith("-v")]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 1, done.stderr  # no frames
    _assert_clean("probe stdout", done.stdout)
    _assert_clean("probe stderr", done.stderr)
    redacted = url.split("@127.0.0.1")[1].replace("S3cretQ", "***")
    shown: Any = json.loads(done.stdout)["source"] if "--json" in flags else done.stdout + done.stderr
    assert f"rtsp://***@127.0.0.1{redacted}" in shown
