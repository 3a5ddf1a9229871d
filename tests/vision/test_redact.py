"""`redact_url`: credentials in the userinfo (up to its last `@`), in password-like query/fragment parameters and in
chat-webhook path tokens are hidden, in a URL alone or inside free text, and everything else stays readable."""

from __future__ import annotations

import logging
import socket
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from vision.media.manifest import build_manifest
from vision.media.results import WriteResult
from vision.redact import RedactingFormatter, is_secret_key, redact_url
from vision.sources import SourceConfig, SourceState, open_source

SECRETS = ("p@ssw0rd", "ssw0rd", "S3cretQ")
CAMERA = "rtsp://admin:p@ssw0rd@cam5.example:554/cam/realmonitor?channel=1&user=admin&password=S3cretQ"

CASES = [
    # userinfo
    ("rtsp://admin:s3cret@cam5.example:554/sub", "rtsp://***@cam5.example:554/sub"),
    ("rtsp://admin:p@ssw0rd@cam5.example/sub", "rtsp://***@cam5.example/sub"),  # up to the LAST '@'
    ("rtsp://admin:a@b@c@cam1.example", "rtsp://***@cam1.example"),
    ("rtsp://admin@cam5.example/sub", "rtsp://***@cam5.example/sub"),
    ("rtsp://admin:pa/ss@cam5.example/sub", "rtsp://***@cam5.example/sub"),  # '/' in the password (not a port)
    ("http://cam1.example:8080/snap@2x.jpg", "http://cam1.example:8080/snap@2x.jpg"),  # '@' in the path only
    ("redis://:hunter2@cam2.example:6379/0", "redis://***@cam2.example:6379/0"),
    ("RTSP://Admin:S3cretQ@CAM1.example/x", "RTSP://***@CAM1.example/x"),
    # IPv6 hosts
    ("rtsp://admin:p@ss@[fe80::1%25eth0]:554/x", "rtsp://***@[fe80::1%25eth0]:554/x"),
    ("rtsp://[2001:db8::7]:554/x?password=S3cretQ", "rtsp://[2001:db8::7]:554/x?password=***"),
    ("rtsp://[::1]/x", "rtsp://[::1]/x"),
    # query keys (Dahua / Hikvision / Foscam style), case-insensitive, `user` stays
    (CAMERA, "rtsp://***@cam5.example:554/cam/realmonitor?channel=1&user=admin&password=***"),
    ("rtsp://cam1.example/h264?user=admin&pwd=S3cretQ", "rtsp://cam1.example/h264?user=admin&pwd=***"),
    (
        "http://cam1.example/cgi?usr=admin&PassWd=S3cretQ&cmd=snap",
        "http://cam1.example/cgi?usr=admin&PassWd=***&cmd=snap",
    ),
    ("http://cam1.example/v?PASS=x&Auth=y&Secret=z", "http://cam1.example/v?PASS=***&Auth=***&Secret=***"),
    ("http://cam1.example/v?loginuse=admin&loginpas=S3cretQ", "http://cam1.example/v?loginuse=admin&loginpas=***"),
    (
        "http://cam1.example/v?auth_token=1&app-secret=2&access_key=3",
        "http://cam1.example/v?auth_token=***&app-secret=***&access_key=***",
    ),
    ("http://cam1.example/v?pass%77ord=S3cretQ", "http://cam1.example/v?pass%77ord=***"),  # percent-encoded name
    ("http://cam1.example/v?password=&x=1", "http://cam1.example/v?password=***&x=1"),
    ("http://cam1.example/v?monkey=1&keyframe=2&sort=key", "http://cam1.example/v?monkey=1&keyframe=2&sort=key"),
    # webhook URLs: DingTalk, WeCom, Feishu / Lark, Slack, Discord
    (
        "https://oapi.dingtalk.com/robot/send?access_token=DingTok123",
        "https://oapi.dingtalk.com/robot/send?access_token=***",
    ),
    (
        "https://oapi.dingtalk.com/robot/send?access_token=a&timestamp=1&sign=b",
        "https://oapi.dingtalk.com/robot/send?access_token=***&timestamp=1&sign=***",
    ),
    (
        "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=W1",
        "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=***",
    ),
    ("https://open.feishu.cn/open-apis/bot/v2/hook/FeishuTok456", "https://open.feishu.cn/open-apis/bot/v2/hook/***"),
    (
        "https://open.larksuite.com/open-apis/bot/v2/hook/abc?x=1",
        "https://open.larksuite.com/open-apis/bot/v2/hook/***?x=1",
    ),
    ("https://hooks.slack.com/services/T0/B0/XyZ", "https://hooks.slack.com/services/T0/B0/***"),
    ("https://discord.com/api/webhooks/123/tok?wait=true", "https://discord.com/api/webhooks/123/***?wait=true"),
    # fragments
    ("http://cam1.example/v#access_token=S3cretQ&state=1", "http://cam1.example/v#access_token=***&state=1"),
    ("http://cam1.example/v?password=S3cretQ#top", "http://cam1.example/v?password=***#top"),
    ("rtsp://u:p@ssw0rd@cam1.example/x#frag", "rtsp://***@cam1.example/x#frag"),
    # inside free text (log lines, exception and FFmpeg messages, reprs)
    ("failed to open rtsp://u:p@h/x: timeout", "failed to open rtsp://***@h/x: timeout"),
    (
        f"Error opening input '{CAMERA}': Connection refused",
        "Error opening input 'rtsp://***@cam5.example:554/cam/realmonitor?channel=1&user=admin&password=***': "
        "Connection refused",
    ),
    (
        'HTTP Request: POST http://127.0.0.1:9/robot/send?access_token=DingTok123 "HTTP/1.1 200 OK"',
        'HTTP Request: POST http://127.0.0.1:9/robot/send?access_token=*** "HTTP/1.1 200 OK"',
    ),
    ("['rtsp://a:b@h1/x', \"rtsp://c:d@e@h2\"]", "['rtsp://***@h1/x', \"rtsp://***@h2\"]"),
    ("<rtsp://a:S3cretQ@h1>,rtsp://h2?token=t", "<rtsp://***@h1>,rtsp://h2?token=***"),
    # nothing to hide
    ("rtsp://cam5.example/sub", "rtsp://cam5.example/sub"),
    ("/data/file.mp4", "/data/file.mp4"),
    ("password=S3cretQ is not a URL", "password=S3cretQ is not a URL"),
    (
        "mail admin@example.com about http://cam1.example:554/x",
        "mail admin@example.com about http://cam1.example:554/x",
    ),
    ("", ""),
]


@pytest.mark.parametrize(("text", "expected"), CASES)
def test_redact_url(text: str, expected: str) -> None:
    assert redact_url(text) == expected
    assert redact_url(expected) == expected  # stable: PUT /v1/cameras recognises a URL sent back as GET showed it


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("password", True),
        ("PWD", True),
        ("access_token", True),
        ("apiKey", True),
        ("x-api-key", True),
        ("adminPassword", True),
        ("user", False),
        ("channel", False),
        ("subtype", False),
        ("timestamp", False),
    ],
)
def test_is_secret_key(name: str, secret: bool) -> None:
    assert is_secret_key(name) is secret


def test_formatter_redacts_messages_and_tracebacks() -> None:
    formatter = RedactingFormatter("%(levelname)s %(message)s")
    try:
        raise ValueError(f"cannot open {CAMERA}")
    except ValueError:
        record = logging.LogRecord("t", logging.ERROR, __file__, 1, "camera %s failed", (CAMERA,), sys.exc_info())
    text = formatter.format(record)
    assert "ValueError: cannot open rtsp://***@cam5.example" in text and "user=admin&password=***" in text
    assert not any(secret in text for secret in SECRETS)


def test_manifest_missing_reason_is_redacted(tmp_path: Path) -> None:
    failed = WriteResult.failed(tmp_path / "clip-0.mp4", f"clip job failed: {CAMERA} refused")
    manifest = build_manifest(
        incident_id="i",
        camera_id="c",
        rule="intrusion",
        started_at=datetime.now(UTC),
        ended_at=None,
        evidence_dir=tmp_path,
        files=[failed],
        models={},
        camera_config_sha256="0" * 64,
    )
    reason = manifest["missing"][0]["reason"]
    assert reason.startswith("clip job failed: rtsp://***@cam5.example") and "S3cretQ" not in reason


def test_source_state_machine_logs_no_credentials(caplog: pytest.LogCaptureFixture) -> None:
    """A live source reconnecting to a closed port: its name, state reasons and every log line are redacted."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    caplog.set_level(logging.DEBUG, logger="vision.sources")
    url = f"rtsp://admin:p@ssw0rd@127.0.0.1:{port}/stream?user=admin&password=S3cretQ"
    cfg = SourceConfig(open_timeout_s=1, read_timeout_s=1, backoff_initial_s=0.1, backoff_max_s=0.2)
    source = open_source(url, cfg)
    try:
        assert source.read(timeout=1.0) is None
        assert source.state == SourceState.RECONNECTING
        reasons = " ".join(change.reason for change in source.states)
    finally:
        source.close()
    assert source.name == f"rtsp://***@127.0.0.1:{port}/stream?user=admin&password=***"
    assert "retrying in" in caplog.text and f"rtsp://***@127.0.0.1:{port}/stream?user=admin" in caplog.text
    for text in (caplog.text, reasons):
        assert not any(secret in text for secret in SECRETS), text


@pytest.mark.parametrize("chunk", ["a://", "a://b:c/", "x://u:p@", "http://h/?password=x&", "rtsp://a:b"])
def test_linear_time_on_hostile_text(chunk: str) -> None:
    """A stream URL or log line is attacker-influenced: 200 kB of repeated URL fragments must not blow up."""
    text = chunk * (200_000 // len(chunk))
    started = time.perf_counter()
    redact_url(text)
    assert time.perf_counter() - started < 1.0
