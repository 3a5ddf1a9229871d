"""`safewatch eval --shadow CAMERA --since T`: flags → api/shadow_compare.py over a store → a report (text or JSON);
bad input exits 2 naming the flag, a camera without shadow incidents in the window exits 1.

The store here holds crafted events (production and shadow, stored by the real `apply_event`, handled through the
real handling workflow); the real replay → store → eval path is tests/api/test_shadow_e2e.py.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from api.store.db import Store
from api.store.handling import Action, Actor, handle
from api.store.incidents import apply_event
from cli.main import main
from pipelines.events import EventType, IncidentEvent

T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def _incident(store: Store, iid: str, start: float, *, shadow: bool = False, zone: str = "path") -> None:
    base = {
        "id": iid,
        "camera_id": "gate",
        "site": "s",
        "rule": "intrusion",
        "zone": zone,
        "started_at": T0 + timedelta(seconds=start),
        "offset_s": start,
        "snapshot_url": f"2026-12-01/gate/{iid}/snapshot.jpg",
        **({"shadow": True, "candidate": "cand"} if shadow else {}),
    }
    opened = IncidentEvent(type=EventType.opened, updated_at=base["started_at"], seq=0, **base)  # type: ignore[arg-type]
    end = T0 + timedelta(seconds=start + 5)
    closed = opened.model_copy(update={"type": EventType.closed, "seq": 1, "updated_at": end, "ended_at": end})
    assert apply_event(store, opened).applied and apply_event(store, closed).applied


@pytest.fixture
def url(tmp_path: Path) -> str:
    url = f"sqlite:///{(tmp_path / 'store.db').as_posix()}"
    store = Store(url)
    _incident(store, "p-both", 10)
    _incident(store, "s-both", 11, shadow=True)
    _incident(store, "p-fp", 100)  # marked false positive, the candidate stayed quiet: a win
    _incident(store, "p-real", 200)  # confirmed, the candidate missed it: a loss
    _incident(store, "s-only", 300, shadow=True)
    actor = Actor(name="ann", key_id=None, key_name=None, sites=None)
    with store.session() as session:
        handle(session, "p-fp", Action.false_positive, actor=actor, note=None)
        handle(session, "p-real", Action.resolve, actor=actor, note=None)
    store.dispose()
    return url


def test_json_report(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["eval", "--shadow", "gate", "--since", "2026-12-01T07:00", "--database", url, "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    (report,) = json.loads(out)
    assert report["candidate"] == "cand" and report["camera"] == "gate"
    assert report["totals"] == {
        "production": 3,
        "shadow": 2,
        "both": 1,
        "production_only": 2,
        "shadow_only": 1,
        "wins": 1,
        "losses": 1,
        "shared_false_positives": 0,
    }
    assert [w["id"] for w in report["wins"]] == ["p-fp"] and [x["id"] for x in report["losses"]] == ["p-real"]
    assert report["shadow_only"][0]["snapshot"] == "2026-12-01/gate/s-only/snapshot.jpg"
    assert report["both"][0]["shadow"]["id"] == "s-both"


def test_text_report_and_the_window(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "--shadow", "gate", "--since", "2026-12-01T08:01:00Z", "--database", url]) == 0
    text = capsys.readouterr().out
    assert "production vs shadow cand" in text and "p-both" not in text  # it started before --since
    assert "candidate wins (production false positives it did not raise): 1" in text
    assert "2026-12-01/gate/s-only/snapshot.jpg" in text


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--shadow", "gate"], 2, "--since T is required"),
        (["--shadow", "gate", "--since", "2026-12-01", "--until", "2026-11-30"], 2, "--until must be after --since"),
        (["--shadow", "yard", "--since", "2026-12-01"], 1, "camera yard has no shadow incident in the window"),
        (["--shadow", "gate", "--since", "2026-12-02"], 1, "no shadow incident"),
    ],
)
def test_bad_input(url: str, capsys: pytest.CaptureFixture[str], args: list[str], code: int, message: str) -> None:
    assert main(["eval", *args, "--database", url]) == code
    assert message in capsys.readouterr().err


def test_an_unreadable_store_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = f"sqlite:///{(tmp_path / 'nope.db').as_posix()}"
    assert main(["eval", "--shadow", "gate", "--since", "2026-12-01", "--database", missing]) == 2
    assert "cannot read the store" in capsys.readouterr().err and not (tmp_path / "nope.db").exists()
