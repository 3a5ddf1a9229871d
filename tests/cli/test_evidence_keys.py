"""`safewatch evidence keygen` and `public-key`, with real key files: modes, key ids, rotation (older public keys
beside the signing key stay listed), and a signing key that is not usable failing at startup with its path."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from cli.main import main
from pipelines.worker.evidence_chain import trusted_keys
from pipelines.worker.settings import RuntimeSettings
from vision.media.signing import load_public_key, load_signer


def _keygen(out: Path, capsys: pytest.CaptureFixture[str]) -> tuple[Path, Path, str]:
    assert main(["evidence", "keygen", "--out", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    kid = lines[0].removeprefix("key id ")
    return out / f"evidence-{kid}.key", out / f"evidence-{kid}.pub.pem", kid


def test_keygen_writes_a_private_key_only_its_owner_reads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    private, public, kid = _keygen(tmp_path / "keys", capsys)
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert load_signer(private).key_id == kid and len(kid) == 16
    assert load_signer(private).public_pem == public.read_text()
    load_public_key(public)


def test_public_key_prints_the_current_key_and_with_all_the_rotated_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _old_private, old_public, old = _keygen(tmp_path / "keys", capsys)
    private, public, new = _keygen(tmp_path / "keys", capsys)  # rotation: a new pair beside the old one
    monkeypatch.setenv("SAFEWATCH_EVIDENCE_SIGNING_KEY", str(private))
    assert main(["evidence", "public-key"]) == 0
    assert capsys.readouterr().out == f"# key id {new} (current)\n{public.read_text()}"
    assert main(["evidence", "public-key", "--all"]) == 0
    out = capsys.readouterr().out
    assert old_public.read_text() in out and public.read_text() in out
    assert set(trusted_keys(RuntimeSettings()).ids) == {old, new}


def test_an_unusable_signing_key_is_a_setting_error_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _private, public, _kid = _keygen(tmp_path / "keys", capsys)
    monkeypatch.setenv("SAFEWATCH_EVIDENCE_SIGNING_KEY", str(public))  # the public half by mistake
    assert main(["evidence", "public-key"]) == 2
    assert f"evidence signing key {public}: not an unencrypted PEM private key" in capsys.readouterr().err
    monkeypatch.delenv("SAFEWATCH_EVIDENCE_SIGNING_KEY")
    assert main(["evidence", "public-key"]) == 2
    assert "SAFEWATCH_EVIDENCE_SIGNING_KEY is not set" in capsys.readouterr().err
