"""`safewatch evidence verify` against the store, over real evidence: the vtest replay's snapshots, clips and manifests
(tests/pipelines/e2e/harness.py, cached per session), its events applied to a real store by the consumer's
`apply_event`, then the evidence tampered with on a copy.

The gap this closes: without a signing key, an edited clip plus a manifest rewritten with the clip's new sha256
verifies on disk; the store's recorded manifest sha256 catches it.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from api.store.db import Store
from api.store.handling import Action, Actor, handle
from api.store.incidents import apply_event
from cli.main import main
from pipelines.events import EventType, IncidentEvent
from tests.api.conftest import pg_schema
from tests.pipelines.e2e import harness
from tests.pipelines.e2e.harness import ReplayResult
from vision.digest import sha256_file
from vision.media.manifest import MANIFEST_NAME
from vision.redact import redact_url

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def vtest(tmp_path_factory: pytest.TempPathFactory) -> ReplayResult:
    return harness.vtest_replay(tmp_path_factory.mktemp("vtest"))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{(tmp_path / 'store.db').as_posix()}"
        return
    with pg_schema("t_evid") as url:
        yield url


@pytest.fixture(autouse=True)
def _no_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SAFEWATCH_EVIDENCE_KEY", raising=False)  # the unsigned case is the one the store must cover


def _store(url: str, events: list[IncidentEvent]) -> None:
    store = Store(url)
    try:
        for event in events:
            assert apply_event(store, event).applied
    finally:
        store.dispose()


def _media(vtest: ReplayResult, tmp_path: Path) -> Path:
    assert vtest.media_root is not None
    return Path(shutil.copytree(vtest.media_root, tmp_path / "media"))


def _closed(vtest: ReplayResult) -> list[IncidentEvent]:
    closed = [e for e in vtest.events if e.type is EventType.closed and e.evidence_sha256 is not None]
    assert len(closed) >= 3, "the vtest replay should close several incidents with evidence"
    return sorted(closed, key=lambda e: (e.ended_at or e.updated_at, e.id))


def _folder(media: Path, incident_id: str) -> Path:
    (manifest,) = media.rglob(f"{incident_id}/{MANIFEST_NAME}")
    return manifest.parent


def _verify(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str], str]:
    code = main(["evidence", "verify", *argv])
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    return code, out.out.splitlines(), out.err


def test_clean_evidence_matches_the_store(
    vtest: ReplayResult, tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    media = _media(vtest, tmp_path)
    _store(db_url, vtest.events)
    code, out, err = _verify(capsys, str(media), "--database", db_url)
    assert code == 0, [*out, err]
    n = len(list(media.rglob(MANIFEST_NAME)))
    assert out == [
        f"{n} manifests OK (signatures not checked: no public key (--public-key) and $SAFEWATCH_EVIDENCE_KEY is not "
        "set; "
        f"each matches the store {redact_url(db_url)})"  # postgresql+psycopg://***@127.0.0.1:5432/test?...
    ]


def test_edited_clip_with_rewritten_manifest_fails_against_the_store(
    vtest: ReplayResult, tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    media = _media(vtest, tmp_path)
    _store(db_url, vtest.events)
    incident = _closed(vtest)[0]
    folder = _folder(media, incident.id)
    clip = folder / "clip-000.mp4"
    data = bytearray(clip.read_bytes())
    data[len(data) // 2] ^= 0x01
    clip.write_bytes(bytes(data))
    manifest = json.loads((folder / MANIFEST_NAME).read_text(encoding="utf-8"))
    manifest["files"]["clip-000.mp4"]["sha256"] = sha256_file(clip)  # what a forger without the key does
    text = json.dumps(manifest, sort_keys=True, indent=2, ensure_ascii=False) + "\n"
    (folder / MANIFEST_NAME).write_text(text, encoding="utf-8")

    code, out, _ = _verify(capsys, str(media), "--no-database")
    assert code == 0, out  # on disk alone, the forgery holds up: that is the gap
    code, out, err = _verify(capsys, str(media), "--database", db_url)
    assert code == 1
    assert len(out) == 1 and out[0].startswith(f"{folder / MANIFEST_NAME}: not the manifest the store recorded")
    assert f"incident {incident.id}" in out[0] and f"recorded {incident.evidence_sha256})" in out[0]
    assert "1 of " in err and "manifests have problems" in err


def test_extra_file_in_an_incident_folder_is_reported(
    vtest: ReplayResult, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    media = _media(vtest, tmp_path)
    url = f"sqlite:///{(tmp_path / 'store.db').as_posix()}"
    _store(url, vtest.events)
    folder = _folder(media, _closed(vtest)[1].id)
    (folder / "notes.txt").write_text("added later\n", encoding="utf-8")
    (folder / "more").mkdir()
    (folder / "more" / "clip-009.mp4").write_bytes(b"\0" * 64)
    expected = [
        f"{folder / MANIFEST_NAME} [more/clip-009.mp4]: extra file, not listed in the manifest",
        f"{folder / MANIFEST_NAME} [notes.txt]: extra file, not listed in the manifest",
    ]
    for store_args in (["--database", url], ["--no-database"]):
        code, out, _ = _verify(capsys, str(media), *store_args)
        assert (code, out) == (1, expected)


def test_incident_unknown_to_the_store(vtest: ReplayResult, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    media = _media(vtest, tmp_path)
    url = f"sqlite:///{(tmp_path / 'store.db').as_posix()}"
    gone = _closed(vtest)[0].id
    _store(url, [e for e in vtest.events if e.id != gone])
    code, out, _ = _verify(capsys, str(media), "--database", url)
    assert code == 1
    assert out == [f"{_folder(media, gone) / MANIFEST_NAME}: incident {gone} is unknown to the store"]

    twice = _closed(vtest)[1].id  # a verbatim copy of an incident's folder: its manifest matches, but twice
    original = _folder(media, twice)
    shutil.copytree(original, original.with_name("copy"))
    code, out, _ = _verify(capsys, str(media), "--database", url)
    assert code == 1 and len(out) == 2  # which of the two is "second" depends on how the folder names sort
    assert sum(f"a second manifest for incident {twice} (first: " in line for line in out) == 1


def test_recorded_evidence_gone_is_a_problem_unless_retention_removed_it(
    vtest: ReplayResult, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Retention deletes whole folders of unkept incidents, oldest first, and leaves the row: such a gap is a note.
    A kept incident, a folder without its manifest, or an incident newer than evidence still present is a problem."""
    media = _media(vtest, tmp_path)
    url = f"sqlite:///{(tmp_path / 'store.db').as_posix()}"
    closed = _closed(vtest)
    oldest, kept, later = closed[0], closed[1], closed[-1]
    shift = timedelta(hours=2)  # `later` ended two hours after the others (the replay's incidents span 80 s)
    events = [_shifted(e, shift) if e.id == later.id else e for e in vtest.events]
    _store(url, events)

    shutil.rmtree(_folder(media, oldest.id))  # as retention does: the oldest unkept incident
    code, out, _ = _verify(capsys, str(media), "--database", url)
    assert code == 0, out
    assert out[0].endswith("; 1 older incidents' evidence is gone, as retention removes it)")

    store = Store(url, run_migrations=False)
    with store.session() as session:  # a false positive is kept for retraining: retention never deletes it
        handle(session, kept.id, Action.false_positive, actor=Actor("test", None, None), note=None)
    store.dispose()
    shutil.rmtree(_folder(media, kept.id))
    later_folder = _folder(media, later.id)
    (later_folder / MANIFEST_NAME).unlink()
    code, out, err = _verify(capsys, str(media), "--database", url)
    assert code == 1
    assert len(out) == 2, out
    assert out[0].startswith(f"{media}: the store recorded evidence for incident {kept.id} (camera e2e-vtest")
    assert out[0].endswith("but none is here; it is kept, and retention never deletes that")
    assert out[1].startswith(f"{later_folder / MANIFEST_NAME}: manifest missing: the store recorded evidence")
    assert "2 incidents' recorded evidence is missing" in err

    shutil.rmtree(later_folder)  # the whole folder, while evidence two hours older is still here
    code, out, _ = _verify(capsys, str(media), "--database", url)
    assert code == 1 and len(out) == 2
    assert out[1].startswith(f"{media}: the store recorded evidence for incident {later.id}")
    assert "retention deletes the oldest first, and evidence of an incident ended" in out[1]

    camera_dir = next(p for p in media.glob("*/e2e-vtest") if p.is_dir())  # not a media root: not looked for
    code, out, _ = _verify(capsys, str(camera_dir), "--database", url)
    assert code == 0 and "not looked for: DIR is not a media root" in out[0]


def _shifted(event: IncidentEvent, by: timedelta) -> IncidentEvent:
    times = {"started_at": event.started_at + by, "updated_at": event.updated_at + by}
    if event.ended_at is not None:
        times["ended_at"] = event.ended_at + by
    return event.model_copy(update=times)


def test_default_store_is_the_configured_one(
    vtest: ReplayResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    media = _media(vtest, tmp_path)
    data = tmp_path / "data"
    monkeypatch.delenv("SAFEWATCH_DATABASE_URL", raising=False)
    monkeypatch.setenv("SAFEWATCH_DATA_DIR", str(data))
    code, _, err = _verify(capsys, str(media))
    db = data / "safewatch.db"
    assert code == 2 and not db.exists()  # never creates an empty store
    assert err.strip() == (
        f"safewatch evidence verify: cannot read the store sqlite:///{db.as_posix()}: no such database file "
        "(pass --database URL, or --no-database for a bare copy of the evidence)"
    )
    _store(f"sqlite:///{db.as_posix()}", vtest.events)
    code, out, _ = _verify(capsys, str(media))
    assert code == 0 and f"each matches the store sqlite:///{db.as_posix()}" in out[0]


@pytest.mark.parametrize(
    ("url", "shown", "reason"),
    [
        (
            "postgresql+psycopg://watch:s3cret@127.0.0.1:1/safewatch",
            "postgresql+psycopg://***@127.0.0.1:1/safewatch",
            "connect",
        ),
        ("not a url", "not a url", "not a database URL"),
        ("nosuchdb://host/x", "nosuchdb://host/x", "unsupported database driver"),
    ],
    ids=["unreachable", "garbage", "unknown-driver"],
)
def test_unusable_database_url_exits_2_with_one_redacted_line(
    url: str, shown: str, reason: str, vtest: ReplayResult, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    media = _media(vtest, tmp_path)
    code, out, err = _verify(capsys, str(media), "--database", url)
    assert code == 2 and out == []
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith(f"safewatch evidence verify: cannot read the store {shown}: ") and reason in err
    assert "s3cret" not in err


def test_usage_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _verify(capsys, str(tmp_path / "nope"), "--no-database")
    assert code == 2 and "not a directory" in err
    (tmp_path / "empty").mkdir()
    code, _, err = _verify(capsys, str(tmp_path / "empty"), "--database", "sqlite:///nowhere.db")
    assert code == 2 and "no manifest.json found" in err  # the store is not read when there is nothing to check
