"""The evidence chain of a process, built from its settings by a composition root (`safewatch run`, `api`, `worker`,
`replay`): its name, its signing key, where its log and its head live (`vision/media/chain.py`)."""

from __future__ import annotations

from pathlib import Path

from pipelines.worker.settings import RuntimeSettings
from vision.media.chain import EvidenceChain
from vision.media.signing import PublicKeys, public_keys_beside

STATE_DIR = "evidence-chain"


def open_chain(
    settings: RuntimeSettings, default_name: str, *, media_root: Path | None = None, data_dir: Path | None = None
) -> EvidenceChain:
    """The chain `settings.evidence_chain` (else `default_name`) over `media_root` (default the settings' media
    root), its head kept under `data_dir` (default the settings' data dir), signed with the configured keys."""
    return EvidenceChain(
        media_root if media_root is not None else settings.media_dir,
        (data_dir if data_dir is not None else settings.data_dir) / STATE_DIR,
        settings.chain_name(default_name),
        signer=settings.evidence_signer(),
        hmac_key=settings.signing_key,
    )


def trusted_keys(settings: RuntimeSettings) -> PublicKeys:
    """The public keys of the configured signing key's folder (the current one and those kept from rotations); none
    without a signing key."""
    signer = settings.evidence_signer()
    if signer is None or settings.evidence_signing_key is None:
        return PublicKeys()
    return public_keys_beside(settings.evidence_signing_key, signer)
