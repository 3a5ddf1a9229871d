"""`GET /v1/stats` for the dashboard: groupings (per day per rule, in a time zone), backlog by age, handling times
per site, false-positive rates, CSV, site scopes and bad parameters, on SQLite and (when reachable) PostgreSQL."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import update

from api.app import create_app
from api.auth import Role
from api.store.handling import Action, Actor, handle
from api.store.incidents import apply_event
from api.store.keys import create_key
from api.store.models import HandlingAction
from tests.api.conftest import add_keys, auth, make_event, make_settings, store_of

NOW = datetime.now(UTC).replace(microsecond=0)
OPERATOR = Actor(name="op", key_id=None, key_name=None)
# (id, site, camera, rule, zone, started before now, [(action, seconds after the start)])
INCIDENTS = [
    ("a1", "north", "n-1", "intrusion", "yard", timedelta(minutes=10), []),
    ("a2", "north", "n-1", "intrusion", "yard", timedelta(hours=2), [("ack", 60)]),
    ("a3", "north", "n-2", "no_helmet", None, timedelta(hours=30), [("ack", 120), ("resolve", 600)]),
    ("a4", "north", "n-2", "intrusion", "gate", timedelta(days=5), [("false-positive", 300)]),
    ("a5", "south", "s-1", "intrusion", "yard", timedelta(days=9), [("ack", 30), ("false-positive", 90)]),
    ("a6", "south", "s-1", "exit_blocked", "lane", timedelta(days=9, hours=1), [("resolve", 1200)]),
]


@pytest.fixture
def client(tmp_path: Path, db_url: str) -> Iterator[tuple[TestClient, dict[Role, str]]]:
    app = create_app(make_settings(tmp_path, db_url, webhook_dispatcher=False))
    store = store_of(app)
    keys = add_keys(store)
    for incident, site, camera, rule, zone, ago, actions in INCIDENTS:
        started = NOW - ago
        event = make_event(incident, 0, site=site, camera_id=camera, rule=rule, zone=zone, started_at=started)
        apply_event(store, event)
        with store.session() as session:
            for action, after in actions:
                row = handle(session, incident, Action(action), actor=OPERATOR, note=None)
                at = started + timedelta(seconds=after)
                session.execute(update(HandlingAction).where(HandlingAction.id == row.id).values(at=at))
    with store.session() as session:
        _row, north = create_key(session, role="viewer", name="north-viewer", sites=["north"])
    keys_with_north = {**keys, Role.platform: north}  # the platform slot carries the north-scoped viewer here
    with TestClient(app) as c:
        yield c, keys_with_north


def test_groups_per_day_per_rule_in_a_time_zone(client: tuple[TestClient, dict[Role, str]]) -> None:
    c, keys = client
    r = c.get(
        "/v1/stats",
        params=[("group_by", "day,rule"), ("group_by", "camera,zone"), ("tz", "Asia/Shanghai")],
        headers=auth(keys[Role.viewer]),
    )
    assert r.status_code == 200, r.text
    s = r.json()
    assert s["timezone"] == "Asia/Shanghai" and s["total"] == 6
    day_rule = next(g for g in s["groups"] if g["by"] == ["day", "rule"])
    zone = ZoneInfo("Asia/Shanghai")
    expected: dict[tuple[str, str], int] = {}
    for _id, _site, _camera, rule, _zone, ago, _actions in INCIDENTS:
        key = ((NOW - ago).astimezone(zone).date().isoformat(), rule)
        expected[key] = expected.get(key, 0) + 1
    assert {tuple(row["key"]): row["count"] for row in day_rule["rows"]} == expected
    days = {day for day, _rule in expected}
    assert sum(s["by_day"].values()) == 6 and set(s["by_day"]) == days
    camera_zone = {tuple(row["key"]): row["count"] for row in s["groups"][1]["rows"]}
    assert camera_zone == {
        ("n-1", "yard"): 2,
        ("n-2", ""): 1,
        ("n-2", "gate"): 1,
        ("s-1", "yard"): 1,
        ("s-1", "lane"): 1,
    }
    assert s["by_zone"] == {"": 1, "gate": 1, "lane": 1, "yard": 3}


def test_backlog_handling_times_and_false_positive_rates(client: tuple[TestClient, dict[Role, str]]) -> None:
    c, keys = client
    s = c.get("/v1/stats", headers=auth(keys[Role.viewer])).json()
    backlog = {b["age"]: (b["new"], b["acknowledged"]) for b in s["backlog"]}
    assert backlog == {
        "lt_1h": (1, 0),
        "1h_4h": (0, 1),
        "4h_24h": (0, 0),
        "1d_3d": (0, 0),
        "3d_7d": (0, 0),
        "gt_7d": (0, 0),
    }
    times = {t["site"]: t for t in s["handling_times"]}
    assert set(times) == {"*", "north", "south"}
    # north: first actions after 60, 120, 300 s; finished after 600 (resolve) and 300 (false positive)
    assert times["north"]["acknowledge"] == {"count": 3, "median_s": 120.0, "p90_s": pytest.approx(264.0)}
    assert times["north"]["resolve"] == {"count": 2, "median_s": 450.0, "p90_s": pytest.approx(570.0)}
    assert times["south"]["acknowledge"]["median_s"] == pytest.approx(615.0)  # 30 and 1200
    assert times["*"]["acknowledge"]["count"] == 5 and times["*"]["resolve"]["count"] == 4
    by_rule = {r["key"]: r for r in s["false_positives_by_rule"]}
    assert by_rule["intrusion"] == {"key": "intrusion", "incidents": 4, "judged": 2, "false_positive": 2, "rate": 1.0}
    assert by_rule["no_helmet"]["rate"] == 0.0 and by_rule["exit_blocked"]["rate"] == 0.0
    by_camera = {r["key"]: r["rate"] for r in s["false_positives_by_camera"]}
    assert by_camera == {"n-1": None, "n-2": 0.5, "s-1": 0.5}


def test_filters_and_csv(client: tuple[TestClient, dict[Role, str]]) -> None:
    c, keys = client
    h = auth(keys[Role.viewer])
    s = c.get("/v1/stats", params={"site": "north", "rule": "intrusion"}, headers=h).json()
    assert s["total"] == 3 and s["by_camera"] == {"n-1": 2, "n-2": 1}
    text = c.get("/v1/stats", params={"format": "csv", "group_by": "day,rule", "camera": "s-1"}, headers=h).text
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["dimension", "key", "count"] and ["total", "all", "2"] in rows
    assert any(r[0] == "day,rule" and r[1].endswith(",intrusion") and r[2] == "1" for r in rows)
    assert ["backlog.new", "lt_1h", "0"] in rows
    assert ["fp_rate.rule", "intrusion", "1.0"] in rows
    assert ["resolve.median_s", "south", "645.0"] in rows


def test_a_scoped_key_sees_only_its_sites(client: tuple[TestClient, dict[Role, str]]) -> None:
    c, keys = client
    north = auth(keys[Role.platform])
    s = c.get("/v1/stats", params={"group_by": "site,rule"}, headers=north).json()
    assert s["total"] == 4 and set(s["by_site"]) == {"north"}
    assert {r["key"][0] for r in s["groups"][0]["rows"]} == {"north"}
    assert {t["site"] for t in s["handling_times"]} == {"*", "north"}
    assert {r["key"] for r in s["false_positives_by_camera"]} == {"n-1", "n-2"}
    assert c.get("/v1/stats", params={"site": "south"}, headers=north).json()["total"] == 0
    assert "south" not in c.get("/v1/stats", params={"format": "csv"}, headers=north).text


@pytest.mark.parametrize(
    "params",
    [
        {"group_by": "day,weather"},
        {"group_by": "day,day"},
        {"group_by": "site,camera,rule,zone"},
        {"tz": "Mars/Olympus"},
        [("group_by", "day")] * 5,
    ],
)
def test_bad_parameters_are_400(client: tuple[TestClient, dict[Role, str]], params: object) -> None:
    c, keys = client
    r = c.get("/v1/stats", params=params, headers=auth(keys[Role.viewer]))
    assert r.status_code == 400 and r.json()["detail"]
