"""The daily digest against a real HTTP receiver on 127.0.0.1 (allow-listed as the webhook tests do), with an
injected clock: nothing before the subscription's local time, one digest after it (also after a restart: a new
scheduler on the same store), a failed POST retried, missed days announced once in the next digest, and the
signed report link in the digest opens the report without a key."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import Role
from api.reports.scheduler import RETRY_S, DigestScheduler, due_date
from api.settings import Settings
from api.store.incidents import apply_event
from api.store.keys import create_key
from api.webhooks.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify
from tests.api.conftest import add_keys, auth, make_event, make_settings, store_of
from tests.api.webhook_receiver import Receiver

ZONE = "Asia/Shanghai"
SITE = "sip-plot-12"
SECRET = "digest-secret"
# The first digest's local date: the next 08:00 in Shanghai after now (a subscription created now starts there).
FIRST = due_date(time.time(), "08:00", ZONE) + timedelta(days=1)
RULES = ["intrusion", "intrusion", "no_helmet"]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def at(self, day: date, hh: int, mm: int, ss: int = 0) -> Clock:
        self.now = datetime(day.year, day.month, day.day, hh, mm, ss, tzinfo=ZoneInfo(ZONE)).timestamp()
        return self

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.start()
    yield r
    r.stop()


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    """On SQLite and PostgreSQL (`db_url`): the claim of a digest is a compare-and-set on both."""
    return make_settings(tmp_path, db_url, webhook_allow_hosts="127.0.0.1", webhook_dispatcher=False)


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    app = create_app(settings)
    report_day = FIRST - timedelta(days=1)  # what the first digest covers
    noon = datetime(report_day.year, report_day.month, report_day.day, 12, tzinfo=ZoneInfo(ZONE)).astimezone(UTC)
    for n, rule in enumerate(RULES):
        apply_event(store_of(app), make_event(f"d-{n}", site=SITE, rule=rule, started_at=noon + timedelta(hours=n)))
    apply_event(store_of(app), make_event("other-day", site=SITE, started_at=noon - timedelta(days=2)))
    return app


def _subscribe(client: TestClient, admin: str, receiver: Receiver, **fields: str) -> dict[str, str]:
    body = {"site": SITE, "url": receiver.url, "secret": SECRET, "format": "dingtalk", "local_time": "08:00"}
    r = client.post("/v1/reports/subscriptions", json={**body, "timezone": ZONE, **fields}, headers=auth(admin))
    assert r.status_code == 201, r.text
    out: dict[str, str] = r.json()
    return out


def test_due_date_follows_the_local_time() -> None:
    day = date(2026, 3, 10)
    shanghai = datetime(2026, 3, 10, 7, 59, tzinfo=ZoneInfo(ZONE)).timestamp()
    assert due_date(shanghai, "08:00", ZONE) == day - timedelta(days=1)
    assert due_date(shanghai + 60, "08:00", ZONE) == day
    assert due_date(shanghai, "08:00", "UTC") == day - timedelta(days=1)  # 23:59 UTC the day before


def test_one_digest_after_the_local_time_also_across_a_restart(
    app: FastAPI, settings: Settings, receiver: Receiver
) -> None:
    with TestClient(app) as client:
        keys = add_keys(store_of(app))
        sub = _subscribe(client, keys[Role.admin], receiver)
        assert sub["last_sent_date"] < FIRST.isoformat() and sub["timezone"] == ZONE
        clock = Clock().at(FIRST, 7, 59, 30)
        scheduler = DigestScheduler(settings, store_of(app), clock=clock)
        assert scheduler.run_once() == 0 and receiver.count() == 0  # before 08:00 local
        clock.at(FIRST, 8, 0, 30)
        assert scheduler.run_once() == 1
        assert scheduler.run_once() == 0
        restarted = DigestScheduler(settings, store_of(app), clock=clock.at(FIRST, 23, 0))
        assert restarted.run_once() == 0
        assert receiver.count() == 1

        got = receiver.received[0]
        assert verify(SECRET, got.headers[TIMESTAMP_HEADER], got.body, got.headers[SIGNATURE_HEADER])
        assert got.headers["X-Safewatch-Event-Id"] == f"digest:{sub['id']}:{FIRST.isoformat()}"
        assert got.headers["X-Safewatch-Event-Type"] == "report.digest"
        body = json.loads(got.body)
        assert body["msgtype"] == "markdown"
        text = body["markdown"]["text"]
        report_day = (FIRST - timedelta(days=1)).isoformat()
        assert report_day in body["markdown"]["title"]
        assert "**事件总数**: 3" in text and "- 区域入侵: 2" in text and "- 未戴安全帽: 1" in text
        assert "**站点待处理事件（全部日期）**: 4" in text  # the other day's incident is not handled either
        link = text.split("[查看日报](", 1)[1].split(")", 1)[0]
        assert link.startswith("http://safewatch.test/v1/reports/daily?")
        parts = urlsplit(link)
        page = client.get(f"{parts.path}?{parts.query}")  # no key: the signature opens it
        assert page.status_code == 200 and page.text.count('<tr data-incident="d-') == 3
        listed = client.get("/v1/reports/subscriptions", headers=auth(keys[Role.admin])).json()
        assert listed[0]["last_sent_date"] == FIRST.isoformat() and listed[0]["last_error"] is None


def test_a_failed_post_is_retried_and_missed_days_are_announced_once(
    app: FastAPI, settings: Settings, receiver: Receiver
) -> None:
    with TestClient(app) as client:
        keys = add_keys(store_of(app))
        _subscribe(client, keys[Role.admin], receiver, format="wecom", language="en")
        clock = Clock().at(FIRST, 9, 0)
        scheduler = DigestScheduler(settings, store_of(app), clock=clock)
        receiver.status = 500
        assert scheduler.run_once() == 0 and receiver.count() == 1
        assert client.get("/v1/reports/subscriptions", headers=auth(keys[Role.admin])).json()[0]["last_error"] == (
            "http_500"
        )
        receiver.status = 200
        assert scheduler.run_once() == 0 and receiver.count() == 1  # not before the retry time
        clock.now += RETRY_S + 1
        assert scheduler.run_once() == 1 and receiver.count() == 2
        # down for three days: the next round sends one digest, for the latest day, linking the two missed days
        clock.at(FIRST + timedelta(days=3), 8, 30)
        assert scheduler.run_once() == 1 and scheduler.run_once() == 0 and receiver.count() == 3
        content = json.loads(receiver.received[2].body)["markdown"]["content"]
        assert f"daily report {(FIRST + timedelta(days=2)).isoformat()}" in content
        missed = content.split("**Missed reports**: ", 1)[1]
        assert [d.isoformat() in missed for d in (FIRST, FIRST + timedelta(days=1))] == [True, True]
        assert missed.count("](http://safewatch.test/v1/reports/daily?") == 2


def test_subscriptions_are_checked_and_scoped(app: FastAPI, settings: Settings, receiver: Receiver) -> None:
    with TestClient(app) as client:
        keys = add_keys(store_of(app))
        admin = auth(keys[Role.admin])
        bad = {"site": SITE, "url": receiver.url, "secret": SECRET}
        for change, reason in [
            ({"local_time": "25:00"}, "local_time must be HH:MM"),
            ({"timezone": "Mars/Olympus"}, "unknown IANA time zone"),
            ({"site": "nowhere"}, "unknown site"),
            ({"url": "http://10.1.2.3/hook"}, "private address"),
        ]:
            r = client.post("/v1/reports/subscriptions", json={**bad, **change}, headers=admin)
            assert r.status_code == 422 and reason in r.text, (change, r.text)
        assert client.post("/v1/reports/subscriptions", json=bad, headers=auth(keys[Role.operator])).status_code == 403
        sub = _subscribe(client, keys[Role.admin], receiver)
        assert sub["url"] == receiver.url.replace("wecom-token", "***")
        with store_of(app).session() as session:
            _row, scoped = create_key(session, role="admin", name="north admin", sites=["north"])
        north = auth(scoped)
        assert client.get("/v1/reports/subscriptions", headers=north).json() == []
        assert client.delete(f"/v1/reports/subscriptions/{sub['id']}", headers=north).status_code == 404
        r = client.post("/v1/reports/subscriptions", json={**bad, "site": SITE}, headers=north)
        assert r.status_code == 403
        assert client.delete(f"/v1/reports/subscriptions/{sub['id']}", headers=admin).status_code == 204
        assert client.get("/v1/reports/subscriptions", headers=admin).json() == []
