"""`safewatch dataset export`: flags → one call of `api.datasets.export.export_dataset`, a summary on stdout; bad
input → a message naming the flag, exit 2, no traceback.

The happy path runs on real incidents: the vtest replay through the whole pipeline, its events in a real store
(tests/api/datasets/field_store.py); the export itself is tested in tests/api/datasets/test_export.py.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from cli.main import main
from tests.api.datasets.field_store import SECOND_CAMERA, FieldStore, fill_store
from tests.pipelines.e2e import harness
from tests.pipelines.e2e.harness import MODELS_DIR, ReplayResult

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def field(tmp_path_factory: pytest.TempPathFactory) -> FieldStore:
    vtest: ReplayResult = harness.vtest_replay(tmp_path_factory.mktemp("vtest"))
    assert vtest.media_root is not None
    url = f"sqlite:///{(tmp_path_factory.mktemp('store') / 'store.db').as_posix()}"
    return fill_store(url, vtest, vtest.media_root)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(["dataset", "export", *argv])
    except SystemExit as exc:  # argparse's own errors (bad choice, bad type)
        code = int(exc.code or 0)
    out = capsys.readouterr()
    assert "Traceback" not in out.err
    return code, out.out, out.err


def _store_flags(field: FieldStore) -> list[str]:
    return ["--database", field.url, "--media-root", str(field.media_root), "--models-dir", str(MODELS_DIR)]


def test_export_prints_a_summary(field: FieldStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out_dir = tmp_path / "ds"
    argv = ["--out", str(out_dir), "--camera", SECOND_CAMERA, "--format", "coco", "--val-fraction", "0.5"]
    code, out, err = _run(capsys, *argv, *_store_flags(field))
    assert code == 0, err
    n = len(field.ids(camera_id=SECOND_CAMERA))
    lines = out.splitlines()
    assert lines[0].startswith(f"exported {n} images to {out_dir} (coco): ") and "0 hard negatives" in lines[0]
    assert lines[1].startswith("classes: ") and "person" in lines[1]
    index = json.loads((out_dir / "export.json").read_text(encoding="utf-8"))
    assert index["format"] == "coco" and index["split"]["val_fraction"] == 0.5
    assert {e["camera_id"] for e in index["images"]} == {SECOND_CAMERA}


def test_export_from_the_data_dir_and_settings(
    field: FieldStore, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --database/--media-root: SAFEWATCH_DATABASE_URL and SAFEWATCH_MEDIA_ROOT, as the service reads them."""
    monkeypatch.setenv("SAFEWATCH_DATABASE_URL", field.url)
    monkeypatch.setenv("SAFEWATCH_MEDIA_ROOT", str(field.media_root))
    monkeypatch.setenv("SAFEWATCH_MODELS_DIR", str(MODELS_DIR))
    code, out, err = _run(capsys, "--out", str(tmp_path / "ds"), "--status", "false_positive")
    assert code == 0, err
    assert out.startswith("exported 2 images") and "2 hard negatives" in out
    data = yaml.safe_load((tmp_path / "ds" / "data.yaml").read_text(encoding="utf-8"))
    assert "person" in data["names"].values()


def test_skipped_incidents_are_counted_in_the_summary(
    field: FieldStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    media = tmp_path / "media"
    shutil.copytree(field.media_root, media)
    for sidecar in media.rglob("snapshot_detections.json"):
        sidecar.unlink()  # evidence recorded before detections were stored
    flags = ["--database", field.url, "--media-root", str(media), "--models-dir", str(MODELS_DIR)]
    code, out, err = _run(capsys, "--out", str(tmp_path / "ds"), *flags)
    assert code == 0, err
    assert out.splitlines() == [
        f"exported 0 images to {tmp_path / 'ds'} (yolo): 0 train, 0 val; 0 boxes; 0 hard negatives (false "
        "positives, boxes in hard_negatives.json)",
        "classes: none",
        f"skipped {len(field.incidents)} incidents: recorded before detections were stored with the evidence "
        "(listed in export.json)",
    ]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--format", "voc"], "argument --format: invalid choice: 'voc'"),
        (["--status", "closed-ish"], "argument --status: invalid choice"),
        (["--since", "yesterday"], "argument --since: not an ISO 8601 date-time: 'yesterday'"),
        (["--until", "1714550400"], "argument --until: not an ISO 8601 date-time"),
        (["--val-fraction", "1.5"], "argument --val-fraction: must be a number from 0 to 1, got '1.5'"),
        (["--val-fraction", "a fifth"], "argument --val-fraction: must be a number from 0 to 1"),
        (["--since", "2025-03-02", "--until", "2025-03-01"], "--since must not be after --until"),
    ],
)
def test_bad_flags_exit_2_naming_the_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, _, err = _run(capsys, "--out", str(tmp_path / "ds"), *argv)
    assert code == 2 and message in err, err
    assert not (tmp_path / "ds").exists()


def test_out_must_be_empty_unless_force_replaces_a_previous_export(
    field: FieldStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "ds"
    out_dir.mkdir()
    (out_dir / "notes.txt").write_text("mine\n", encoding="utf-8")
    code, _, err = _run(capsys, "--out", str(out_dir), *_store_flags(field))
    assert code == 2 and f"--out {out_dir}: not empty (pass --force" in err
    code, _, err = _run(capsys, "--out", str(out_dir), "--force", *_store_flags(field))
    assert code == 2 and "--force replaces only a previous export, and this folder is not one (notes.txt)" in err
    assert (out_dir / "notes.txt").read_text(encoding="utf-8") == "mine\n"  # nothing touched

    file = tmp_path / "a-file"
    file.write_text("x", encoding="utf-8")
    code, _, err = _run(capsys, "--out", str(file), *_store_flags(field))
    assert code == 2 and f"--out {file}: not a directory" in err

    fresh = tmp_path / "fresh"
    assert _run(capsys, "--out", str(fresh), *_store_flags(field))[0] == 0
    code, _, err = _run(capsys, "--out", str(fresh), *_store_flags(field))
    assert code == 2 and "not empty" in err
    assert _run(capsys, "--out", str(fresh), "--force", "--rule", "exit_blocked", *_store_flags(field))[0] == 0
    assert len(list((fresh / "images").rglob("*.jpg"))) == len(field.ids(rule="exit_blocked"))


def test_unreadable_store_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nowhere" / "store.db"
    code, _, err = _run(capsys, "--out", str(tmp_path / "ds"), "--database", f"sqlite:///{missing}")
    assert code == 2
    assert err.strip() == (
        f"safewatch dataset export: cannot read the store sqlite:///{missing}: no such database file "
        "(pass --database URL)"
    )
    assert not missing.exists() and not (tmp_path / "ds").exists()  # opened read-only: nothing created
    code, _, err = _run(
        capsys, "--out", str(tmp_path / "ds"), "--database", "postgresql+psycopg://u:secret@127.0.0.1:1/x"
    )
    assert code == 2 and "secret" not in err and "cannot read the store" in err
