"""Public-key signatures, the evidence chain, tombstones and export bundles (issue 17), over real evidence: the vtest
replay written by `safewatch replay`'s function into a chain signed with a real Ed25519 key, then tampered with on a
copy. Each tampering must be reported with its exact problem, and a bundle must verify alone, offline, with only the
public key, by `safewatch evidence verify` and by the openssl/sha256sum recipe of its README.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.app import create_app
from api.auth import Role
from api.store.checkpoints import record_checkpoints
from api.store.db import Store
from api.store.incidents import apply_event
from api.store.keys import create_key
from api.store.models import HandlingAction
from cli.main import main
from pipelines.events import EventType, IncidentEvent
from pipelines.worker.replay import replay
from tests.api.conftest import auth, make_settings
from tests.pipelines.e2e import harness
from vision.media.bundle_readme import RECIPE_END, RECIPE_START
from vision.media.chain import CHAINS_DIR, EvidenceChain
from vision.media.manifest import MANIFEST_NAME, SIGNATURE_NAME
from vision.media.retention import remove_incidents
from vision.media.signing import KeyPair, Signer, generate, load_signer
from vision.media.store import IncidentDir, MediaStore

pytestmark = pytest.mark.timeout(600)


@dataclass
class Signed:
    out: Path  # the replay's output: media/, evidence-chain/, incidents.jsonl
    pair: KeyPair
    events: list[IncidentEvent]

    @property
    def media(self) -> Path:
        return self.out / "media"


@pytest.fixture(scope="module")
def signed(tmp_path_factory: pytest.TempPathFactory) -> Signed:
    work = tmp_path_factory.mktemp("signed")
    pair = generate(work / "keys")
    out = work / "out"
    chain = EvidenceChain(out / "media", out / "evidence-chain", "replay", signer=load_signer(pair.private))
    camera = harness.merged_camera(harness.VTEST_CAMERAS)
    report = replay(camera, harness.registry(), camera.detect_source, out, chain=chain)
    events = [IncidentEvent.model_validate_json(line) for line in report.jsonl.read_text().splitlines()]
    assert sum(1 for e in events if e.type is EventType.closed) >= 3
    return Signed(out, pair, events)


def _copy(signed: Signed, tmp_path: Path) -> Path:
    return Path(shutil.copytree(signed.media, tmp_path / "media"))


def _verify(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[str], str]:
    code = main(["evidence", "verify", *argv])
    out = capsys.readouterr()
    return code, out.out.splitlines(), out.err


def _log(media: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (media / CHAINS_DIR / "replay.jsonl").read_text().splitlines()]


def _folders(media: Path) -> list[Path]:
    """Incident folders with a manifest, in chain order."""
    entries = [e for e in _log(media) if e["kind"] == "manifest"]
    return [(media / str(e["path"])).parent for e in entries]


def _check(signed: Signed, media: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str], str]:
    return _verify(capsys, str(media), "--public-key", str(signed.pair.public), "--no-database")


def test_a_replay_writes_a_signed_chain_that_verifies(
    signed: Signed, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    entries = _log(signed.media)
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
    assert all(e["signature"]["key_id"] == signed.pair.key_id for e in entries)  # type: ignore[index]
    manifest = json.loads((_folders(signed.media)[0] / MANIFEST_NAME).read_text())
    assert manifest["chain"] == {"id": "replay", "seq": 1, "prev": "0" * 64}
    assert manifest["signing"]["key_id"] == signed.pair.key_id
    code, lines, _err = _check(signed, _copy(signed, tmp_path), capsys)
    assert code == 0, lines
    assert f"{len(entries)} manifests OK" in lines[-1] and f"replay ({len(entries)} entries) intact" in lines[-1]


def test_a_flipped_byte_names_the_file(signed: Signed, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    media = _copy(signed, tmp_path)
    clip = sorted(_folders(media)[1].glob("clip-*.mp4"))[0]
    data = bytearray(clip.read_bytes())
    data[len(data) // 2] ^= 0x01
    clip.write_bytes(bytes(data))
    code, lines, _err = _check(signed, media, capsys)
    assert code == 1
    assert lines == [f"{clip.parent / MANIFEST_NAME} [{clip.name}]: sha256 mismatch (file changed)"]


def test_a_deleted_incident_folder_is_missing_between_its_neighbours(
    signed: Signed, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    media = _copy(signed, tmp_path)
    folders = _folders(media)
    entries = [e for e in _log(media) if e["kind"] == "manifest"]
    shutil.rmtree(folders[1])
    code, lines, _err = _check(signed, media, capsys)
    assert code == 1
    before, gone, after = entries[0], entries[1], entries[2]
    assert lines == [
        f"{folders[1] / MANIFEST_NAME}: incident {gone['incident_id']} is missing: chain replay seq 2 (between seq 1 "
        f"(incident {before['incident_id']}) and seq 3 (incident {after['incident_id']})) recorded this manifest, "
        "and no tombstone records its deletion"
    ]


def test_swapped_manifests_are_reported_as_swapped(
    signed: Signed, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    media = _copy(signed, tmp_path)
    a, b = _folders(media)[:2]
    for name in (MANIFEST_NAME, SIGNATURE_NAME):
        data_a, data_b = (a / name).read_bytes(), (b / name).read_bytes()
        (a / name).write_bytes(data_b)
        (b / name).write_bytes(data_a)
    code, lines, _err = _check(signed, media, capsys)
    assert code == 1
    entries = [e for e in _log(media) if e["kind"] == "manifest"]
    assert f"{a / MANIFEST_NAME}: not the manifest chain replay recorded at seq 1 for incident " in "\n".join(lines)
    assert (
        f"{a / MANIFEST_NAME}: claims chain replay seq 2, which the log records for incident "
        f"{entries[1]['incident_id']} at {entries[1]['path']} (manifests swapped or moved)"
    ) in lines


def test_a_manifest_re_signed_with_another_key(
    signed: Signed, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    media = _copy(signed, tmp_path)
    folder = _folders(media)[0]
    manifest = json.loads((folder / MANIFEST_NAME).read_text())
    manifest["rule"] = "edited"
    data = json.dumps(manifest, sort_keys=True, indent=2).encode() + b"\n"
    (folder / MANIFEST_NAME).write_bytes(data)
    forger = Signer(Ed25519PrivateKey.generate())
    (folder / SIGNATURE_NAME).write_bytes(forger.sign(data))  # still naming the deployment's key id
    code, lines, _err = _check(signed, media, capsys)
    assert code == 1
    kid = signed.pair.key_id
    assert (
        f"{folder / MANIFEST_NAME}: signature does not match key {kid}: manifest.json changed or another key signed it"
    ) in lines
    manifest["signing"]["key_id"] = forger.key_id  # naming the forger's own key instead
    data = json.dumps(manifest, sort_keys=True, indent=2).encode() + b"\n"
    (folder / MANIFEST_NAME).write_bytes(data)
    (folder / SIGNATURE_NAME).write_bytes(forger.sign(data))
    code, lines, _err = _check(signed, media, capsys)
    assert (
        f"{folder / MANIFEST_NAME}: signed with key {forger.key_id}, which is not one of the trusted public keys "
        f"({kid})"
    ) in lines


def test_a_truncated_chain(signed: Signed, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    media = _copy(signed, tmp_path)
    log = media / CHAINS_DIR / "replay.jsonl"
    lines_before = log.read_text().splitlines(keepends=True)
    log.write_text("".join(lines_before[:-2]))
    last = len(lines_before) - 2
    code, lines, _err = _check(signed, media, capsys)
    assert code == 1
    for folder in _folders(signed.media)[-2:]:
        seq = json.loads((folder / MANIFEST_NAME).read_text())["chain"]["seq"]
        path = media / folder.relative_to(signed.media) / MANIFEST_NAME
        cut = f"beyond the end of the log (seq {last}): the log was cut short"
        assert f"{path}: claims chain replay seq {seq}, {cut}" in lines


def test_retention_deletions_verify_as_tombstones(
    signed: Signed, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    media = _copy(signed, tmp_path)
    chain = EvidenceChain(media, tmp_path / "state", "main", signer=load_signer(signed.pair.private))
    store = MediaStore(media)
    gone = [d for d in store.incidents() if d.path in set(_folders(media)[:2])]

    def tombstone(inc: IncidentDir, reason: str, size: int) -> None:
        chain.tombstone(inc.path, incident_id=inc.incident_id, camera_id=inc.camera_id, reason=reason, size=size)

    assert len(remove_incidents(store, gone, before_delete=tombstone)) == 2
    code, lines, _err = _check(signed, media, capsys)
    assert code == 0, lines
    assert "2 deletions recorded by tombstones" in lines[-1]
    tombstones = [json.loads(line) for line in (media / CHAINS_DIR / "main.jsonl").read_text().splitlines()]
    assert sorted(t["deleted"]["seq"] for t in tombstones) == [1, 2] and {t["reason"] for t in tombstones} == {"record"}


def _stored(signed: Signed, url: str) -> None:
    store = Store(url)
    try:
        for event in signed.events:
            assert apply_event(store, event).applied
    finally:
        store.dispose()


def test_export_bundle_verifies_alone_and_by_the_openssl_recipe(
    signed: Signed, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{(tmp_path / 'store.db').as_posix()}"
    _stored(signed, url)
    monkeypatch.setenv("SAFEWATCH_DATABASE_URL", url)
    monkeypatch.setenv("SAFEWATCH_MEDIA_ROOT", str(signed.media))
    monkeypatch.setenv("SAFEWATCH_EVIDENCE_SIGNING_KEY", str(signed.pair.private))
    incident = json.loads((_folders(signed.media)[1] / MANIFEST_NAME).read_text())["incident_id"]
    bundle = tmp_path / "export" / "bundle.zip"
    bundle.parent.mkdir()
    assert main(["evidence", "export", incident, "--out", str(bundle), "--data-dir", str(tmp_path / "d")]) == 0
    assert "chain replay seq 2" in capsys.readouterr().out
    store = Store(url, run_migrations=False)
    with store.read() as session:
        (action,) = session.scalars(select(HandlingAction).where(HandlingAction.incident_id == incident)).all()
        assert action.action == "export" and action.actor.startswith("cli:") and "sha256" in (action.note or "")
    store.dispose()
    monkeypatch.delenv("SAFEWATCH_EVIDENCE_SIGNING_KEY")

    fresh = tmp_path / "inspector"  # a machine with only the bundle and the published key
    fresh.mkdir()
    shutil.copy(bundle, fresh / "bundle.zip")
    shutil.copy(signed.pair.public, fresh / "published.pem")
    code, lines, _err = _verify(capsys, str(fresh / "bundle.zip"), "--public-key", str(fresh / "published.pem"))
    assert code == 0, lines
    assert _verify(capsys, str(fresh / "bundle.zip"))[0] == 2  # no trusted key: refused, not "OK"

    unpacked = fresh / "unpacked"
    with zipfile.ZipFile(fresh / "bundle.zip") as zf:
        zf.extractall(unpacked)
        names = set(zf.namelist())
    assert {"README.md", "chain.jsonl", "public-key.pem", "SHA256SUMS", "evidence/manifest.sig"} <= names
    assert {"evidence/snapshot.jpg", "evidence/snapshot_raw.jpg", "evidence/clip-000.mp4"} <= names
    readme = (unpacked / "README.md").read_text(encoding="utf-8")
    assert "核验" in readme and "Verify" in readme
    recipe = readme.split(RECIPE_START + "\n", 1)[1].split(RECIPE_END, 1)[0]
    (unpacked / "public-key.pem").write_bytes((fresh / "published.pem").read_bytes())  # the inspector's own copy
    run = subprocess.run(["bash", "-e", "-c", recipe], cwd=unpacked, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Signature Verified Successfully" in run.stdout and ": OK" in run.stdout and "in chain.jsonl" in run.stdout

    clip = unpacked / "evidence" / "clip-000.mp4"  # the same recipe over a changed clip fails
    data = bytearray(clip.read_bytes())
    data[100] ^= 0xFF
    clip.write_bytes(bytes(data))
    run = subprocess.run(["bash", "-e", "-c", recipe], cwd=unpacked, capture_output=True, text=True, check=False)
    assert run.returncode != 0 and "clip-000.mp4: FAILED" in run.stdout

    tampered = fresh / "tampered.zip"
    with zipfile.ZipFile(fresh / "bundle.zip") as src, zipfile.ZipFile(tampered, "w") as dst:
        for item in src.infolist():
            dst.writestr(item, data if item.filename == "evidence/clip-000.mp4" else src.read(item.filename))
    code, lines, _err = _verify(capsys, str(tampered), "--public-key", str(fresh / "published.pem"))
    assert code == 1 and lines == [f"{tampered} [evidence/clip-000.mp4]: sha256 mismatch (file changed)"]


def test_api_export_is_operator_only_site_scoped_and_audited(signed: Signed, tmp_path: Path) -> None:
    url = f"sqlite:///{(tmp_path / 'store.db').as_posix()}"
    _stored(signed, url)
    settings = make_settings(
        tmp_path, url, media_root=signed.media, evidence_signing_key=signed.pair.private, webhook_dispatcher=False
    )
    incident = json.loads((_folders(signed.media)[0] / MANIFEST_NAME).read_text())["incident_id"]
    site = next(e.site for e in signed.events if e.id == incident)
    with TestClient(create_app(settings)) as client:
        store: Store = client.app.state.ctx.store  # type: ignore[attr-defined]
        with store.session() as session:
            operator = create_key(session, role=Role.operator.value, name="inspector-desk")[1]
            viewer = create_key(session, role=Role.viewer.value, name="viewer")[1]
            elsewhere = create_key(session, role=Role.operator.value, name="other", sites=["elsewhere"])[1]
        keys = client.get("/v1/evidence/public-key").json()  # public: no key needed
        assert keys["current"] == signed.pair.key_id
        assert keys["keys"][0]["pem"] == signed.pair.public.read_text()
        assert client.get(f"/v1/incidents/{incident}/evidence.zip", headers=auth(viewer)).status_code == 403
        assert client.get(f"/v1/incidents/{incident}/evidence.zip", headers=auth(elsewhere)).status_code == 404
        r = client.get(f"/v1/incidents/{incident}/evidence.zip", headers=auth(operator))
        assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
        actions = client.get(f"/v1/incidents/{incident}", headers=auth(operator)).json()["actions"]
    assert [(a["action"], a["key_name"]) for a in actions] == [("export", "inspector-desk")]
    assert site != "elsewhere"
    (tmp_path / "api.zip").write_bytes(r.content)
    code = main(["evidence", "verify", str(tmp_path / "api.zip"), "--public-key", str(signed.pair.public)])
    assert code == 0


def test_a_checkpoint_in_the_store_catches_a_chain_cut_short_with_its_evidence(
    signed: Signed, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{(tmp_path / 'store.db').as_posix()}"
    _stored(signed, url)
    media = _copy(signed, tmp_path)
    store = Store(url)
    (checkpoint,) = record_checkpoints(store, media)
    assert record_checkpoints(store, media) == []  # the head did not move: no second checkpoint
    store.dispose()
    log = media / CHAINS_DIR / "replay.jsonl"
    kept = log.read_text().splitlines(keepends=True)[:-1]
    log.write_text("".join(kept))
    newest = _folders(signed.media)[-1].relative_to(signed.media)
    shutil.rmtree(media / newest)  # the newest incident and its entry gone: the log alone looks intact
    code, lines, _err = _verify(capsys, str(media), "--public-key", str(signed.pair.public), "--database", url)
    assert code == 1
    assert any(
        f"vouches for chain replay up to seq {checkpoint.seq}, but the log ends at seq {checkpoint.seq - 1}: the "
        "chain was cut short" in line
        for line in lines
    ), lines
