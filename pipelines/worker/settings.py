"""What the camera side of a deployment is configured with: `SAFEWATCH_*` environment variables, read once.

`RuntimeSettings` is read by a composition root (the `safewatch` commands) and passed down; nothing below reads the
environment. The API's `Settings` (api/settings.py) extends it, so the embedded service (workers and API in one
process) and a distributed `safewatch worker` read the same variables the same way, and the API's model registry
and the workers' are the same directory.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_REDIS_PREFIX = "safewatch"


class RuntimeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SAFEWATCH_", extra="forbid", validate_assignment=False)

    data_dir: Path = Field(default=Path("data"), description="Store, media and event spools live here")
    models_dir: Path = Field(
        default=Path("models"), description="Model cards (*.yaml) and built ONNX files, for the cameras and the API"
    )
    media_root: Path | None = Field(default=None, description="Snapshots and clips; default `<data_dir>/media`")
    redis_url: str | None = Field(
        default=None,
        repr=False,  # it may hold a password
        description="Redis URL: the distributed bus, leases and camera configs; unset = in-process bus (embedded)",
    )
    redis_prefix: str = Field(
        default=DEFAULT_REDIS_PREFIX, description="Key prefix shared by the API and the workers of one deployment"
    )
    evidence_key: SecretStr | None = Field(
        default=None, description="HMAC key that signs evidence manifests; unset or empty = manifests unsigned"
    )
    batching: bool = Field(
        default=False,
        description="Cross-camera batched inference (one session.run for several cameras' frames). Worth it on a "
        "GPU; on CPU ONNX Runtime already spreads one frame over all cores and batching measured slower",
    )

    @field_validator("redis_prefix")
    @classmethod
    def _prefix_or_default(cls, value: str) -> str:
        return value or DEFAULT_REDIS_PREFIX  # an empty variable means "not set", as for the other settings

    @model_validator(mode="after")
    def _derive_media_root(self) -> RuntimeSettings:
        if self.media_root is None:
            self.media_root = self.data_dir / "media"
        return self

    @property
    def media_dir(self) -> Path:
        """`media_root`, resolved (never None after validation)."""
        assert self.media_root is not None
        return self.media_root

    @property
    def signing_key(self) -> bytes | None:
        """The evidence key as bytes (UTF-8 of its value); None when unset or empty."""
        value = self.evidence_key.get_secret_value() if self.evidence_key is not None else ""
        return value.encode("utf-8") if value else None
