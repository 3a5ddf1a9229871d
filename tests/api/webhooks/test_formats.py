"""Chat message texts: zh-CN by default, English on request, the camera's time zone; the generic JSON unchanged."""

from __future__ import annotations

import json
from zoneinfo import ZoneInfo

import pytest
from pydantic import JsonValue

from api.jsontypes import EventJSON
from api.links import public_event
from api.webhooks.formats import Kind, chat_body, render
from api.webhooks.i18n import HANDLING, RULES, Language, handling_name, local_time, rule_name
from api.webhooks.messages import Camera, Line, Message
from pipelines.events import IncidentEvent
from tests.api.conftest import make_event

BASE = "https://sw.example"
SHANGHAI = Camera(name="1号门", zone=ZoneInfo("Asia/Shanghai"))


def _payload(incident: str = "f1", **fields: object) -> EventJSON:
    return make_event(incident, 0, snapshot_url=f"{incident}/s.jpg", rule="intrusion", **fields).model_dump(mode="json")


def _text(fmt: str, body: bytes) -> str:
    data = json.loads(body)
    if fmt == "dingtalk":
        return str(data["markdown"]["title"]) + "\n" + str(data["markdown"]["text"])
    if fmt == "wecom":
        return str(data["markdown"]["content"])
    post = data["content"]["post"]["zh_cn"]
    return str(post["title"]) + "\n" + json.dumps(post["content"], ensure_ascii=False)


@pytest.mark.parametrize("fmt", ["dingtalk", "wecom", "feishu"])
def test_chat_formats_are_chinese_by_default_with_local_times(fmt: str) -> None:
    text = _text(fmt, render(fmt, _payload(), BASE, camera=SHANGHAI))
    for word in ("区域入侵", "严重", "新告警", "站点", "摄像头", "1号门 (gate-3)", "查看快照"):
        assert word in text, (fmt, word)
    assert "2025-03-01 16:00:00 +08:00" in text  # T0 is 08:00 UTC
    assert "intrusion" not in text.replace("/intrusion", "") and "Snapshot" not in text


@pytest.mark.parametrize("fmt", ["dingtalk", "wecom", "feishu"])
def test_english_on_request(fmt: str) -> None:
    text = _text(fmt, render(fmt, _payload(), BASE, language="en", camera=Camera(zone=ZoneInfo("UTC"))))
    for word in ("Intrusion", "Critical", "New alert", "Site", "Camera", "Snapshot", "2025-03-01 08:00:00 +00:00"):
        assert word in text, (fmt, word)
    assert "区域入侵" not in text


def test_generic_json_is_the_event_contract_in_any_language() -> None:
    payload = _payload()
    for language in ("zh-CN", "en"):
        body = json.loads(render("json", payload, BASE, language=language, camera=SHANGHAI))
        assert body == public_event(payload, BASE)
        assert IncidentEvent.model_validate(body).rule == "intrusion"


def test_vocabulary_is_complete_in_both_languages() -> None:
    assert set(RULES[Language.zh_cn]) == set(RULES[Language.en])
    assert [rule_name(r) for r in ("no_helmet", "exit_blocked", "ebike_indoor", "smoke_fire")] == [
        "未戴安全帽",
        "消防通道占用",
        "电动车入室",
        "烟雾火焰",
    ]
    assert [rule_name(r) for r in ("intrusion", "loitering", "line_crossing", "camera_offline", "camera_tamper")] == [
        "区域入侵",
        "徘徊",
        "越线",
        "摄像头离线",
        "摄像头遮挡/移位",
    ]
    assert [handling_name(s) for s in HANDLING[Language.zh_cn]] == ["新事件", "已确认", "已处置", "误报"]
    assert rule_name("a_future_rule", Language.en) == "a_future_rule"  # unknown names as stored
    assert local_time(None, None) == "-"


def test_digest_and_checkpoint_bodies() -> None:
    events: list[JsonValue] = [_payload(f"d{i}", camera_id="gate-1", zone="door") for i in range(25)]
    digest: EventJSON = {
        "kind": "incident.digest",
        "id": "digest:7",
        "camera_id": "gate-1",
        "site": "north",
        "rule": "intrusion",
        "since": "2025-03-01T08:00:00+00:00",
        "until": "2025-03-01T08:05:00+00:00",
        "count": 25,
        "events": events,
    }
    generic = json.loads(render("json", digest, BASE, kind=Kind.digest))
    assert generic["kind"] == "incident.digest" and len(generic["events"]) == 25
    assert generic["events"][0]["snapshot_url"] == f"{BASE}/v1/incidents/d0/snapshot.jpg"
    text = _text("dingtalk", render("dingtalk", digest, BASE, kind=Kind.digest, camera=SHANGHAI))
    assert "25 起区域入侵（1号门 (gate-1)，最近 5 分钟）" in text and "另有 5 起" in text
    english = _text("wecom", render("wecom", digest, BASE, kind=Kind.digest, language="en"))
    assert "25 more Intrusion at gate-1 in the last 5 min" in english
    checkpoint: EventJSON = {"kind": "evidence.checkpoint", "id": "checkpoint:main:4", "chain": "main", "seq": 4,
                  "entry_sha256": "ab" * 32, "entry": {"signature": {"key_id": "k1"}},
                  "recorded_at": "2025-03-01T08:00:00+00:00"}  # fmt: skip
    assert json.loads(render("json", checkpoint, BASE, kind=Kind.checkpoint)) == checkpoint
    text = _text("feishu", render("feishu", checkpoint, BASE, kind=Kind.checkpoint, camera=SHANGHAI))
    assert "证据链检查点 main #4" in text and "k1" in text and "16:00:00 +08:00" in text


def test_any_message_in_a_platform_envelope() -> None:
    """What the daily report uses: its own `Message` in DingTalk's, WeCom's or Feishu's envelope."""
    message = Message("日报", (Line("**事件**: 3", (("报告", "https://sw.example/r"),)),))
    assert chat_body("dingtalk", message)["msgtype"] == "markdown"
    assert "[报告](https://sw.example/r)" in str(chat_body("wecom", message))
    assert chat_body("feishu", message)["msg_type"] == "post"
