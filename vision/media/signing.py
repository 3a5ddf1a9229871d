"""Ed25519 keys of evidence: the private key a deployment signs manifests and chain entries with, and the public keys
anyone verifies them with (offline, with this code or `openssl pkeyutl -verify -rawin`).

Files (`safewatch evidence keygen --out DIR`): `evidence-<key id>.key` (PKCS#8 PEM, unencrypted, mode 0600) and
`evidence-<key id>.pub.pem` (SubjectPublicKeyInfo PEM). The key id is the first 16 hex digits of the sha256 of the
raw 32-byte public key, so anyone holding the public key can recompute it.

Rotation: generate a new pair into the same folder and point `SAFEWATCH_EVIDENCE_SIGNING_KEY` at the new private
key. Every `*.pub.pem` beside it stays listed (`public_keys_beside`), so evidence signed with an older key still
verifies; manifests and chain entries name the key id that signed them.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

ALG = "Ed25519"
PRIVATE_SUFFIX = ".key"
PUBLIC_SUFFIX = ".pub.pem"

Verdict = Literal["ok", "bad", "unknown_key"]


class KeyFileError(ValueError):
    """A key file cannot be read or is not an Ed25519 key; the message names the file."""


def key_id(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_pem(public: Ed25519PublicKey) -> str:
    pem = public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem.decode("ascii")


class Signer:
    """The private key of a deployment: signs bytes, names itself by key id."""

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self.public = private.public_key()
        self.key_id = key_id(self.public)

    def sign(self, data: bytes) -> bytes:
        return self._private.sign(data)

    @property
    def public_pem(self) -> str:
        return public_pem(self.public)


def load_signer(path: Path) -> Signer:
    """The Ed25519 private key in the PEM file `path`; `KeyFileError` when it cannot be used."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"evidence signing key {path}: {exc.strerror or exc}") from None
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"evidence signing key {path}: not an unencrypted PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(f"evidence signing key {path}: not an Ed25519 key (generate one: safewatch evidence keygen)")
    return Signer(key)


@dataclass(frozen=True, slots=True)
class KeyPair:
    private: Path
    public: Path
    key_id: str


def generate(out_dir: Path) -> KeyPair:
    """A new key pair in `out_dir` (created 0700 if missing): the private key 0600, the public key 0644."""
    out_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    signer = Signer(Ed25519PrivateKey.generate())
    private = out_dir / f"evidence-{signer.key_id}{PRIVATE_SUFFIX}"
    public = out_dir / f"evidence-{signer.key_id}{PUBLIC_SUFFIX}"
    pem = signer._private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # never readable by others, not even briefly
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    public.write_text(signer.public_pem, encoding="ascii")
    public.chmod(0o644)
    return KeyPair(private, public, signer.key_id)


def load_public_key(path: Path) -> Ed25519PublicKey:
    """The Ed25519 public key in `path` (a public key PEM; a private key file gives its public half)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"public key {path}: {exc.strerror or exc}") from None
    try:
        key: object = serialization.load_pem_public_key(data)
    except ValueError:
        try:
            key = serialization.load_pem_private_key(data, password=None).public_key()
        except (ValueError, TypeError):
            raise KeyFileError(f"public key {path}: not a PEM public key") from None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError(f"public key {path}: not an Ed25519 key")
    return key


class PublicKeys:
    """Trusted public keys by key id: what signatures are checked against."""

    def __init__(self, keys: Iterable[Ed25519PublicKey] = ()) -> None:
        self.keys: dict[str, Ed25519PublicKey] = {key_id(k): k for k in keys}

    @classmethod
    def load(cls, paths: Iterable[Path]) -> PublicKeys:
        """Keys from files, or from every `*.pem` of a folder."""
        keys = []
        for path in paths:
            files = sorted(path.glob("*.pem")) if path.is_dir() else [path]
            keys += [load_public_key(f) for f in files]
        return cls(keys)

    def __bool__(self) -> bool:
        return bool(self.keys)

    @property
    def ids(self) -> list[str]:
        return sorted(self.keys)

    def verify(self, kid: str, data: bytes, signature: bytes) -> Verdict:
        key = self.keys.get(kid)
        if key is None:
            return "unknown_key"
        try:
            key.verify(signature, data)
        except InvalidSignature:
            return "bad"
        return "ok"

    def pems(self) -> Mapping[str, str]:
        return {kid: public_pem(k) for kid, k in sorted(self.keys.items())}


def public_keys_beside(signer_path: Path, signer: Signer) -> PublicKeys:
    """The signer's public key and every `*.pub.pem` in its folder (older keys kept for rotation)."""
    keys = [signer.public]
    for path in sorted(signer_path.parent.glob(f"*{PUBLIC_SUFFIX}")):
        try:
            keys.append(load_public_key(path))
        except KeyFileError:
            continue
    return PublicKeys(keys)
