"""What the camera side of a deployment is configured with: `SAFEWATCH_*` environment variables, read once.

`RuntimeSettings` is read by a composition root (the `safewatch` commands) and passed down; nothing below reads the
environment. The API's `Settings` (api/settings.py) extends it, so the embedded service (workers and API in one
process) and a distributed `safewatch worker` read the same variables the same way, and the API's model registry
and the workers' are the same directory.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from pathlib import Path
from typing import Annotated

import cv2
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from vision.detect.precision import Precision
from vision.detect.session import SessionConfig
from vision.media.signing import Signer, load_signer

DEFAULT_REDIS_PREFIX = "safewatch"
#: The project's sample clips, found from this file like `safewatch models` finds the sample clip (a checkout).
DEFAULT_MEDIA_ROOT = Path(__file__).resolve().parents[2] / "sample_media"
MIN_EVIDENCE_KEY_BYTES = 32
_HEX = re.compile(r"[0-9A-Fa-f]+")


class RuntimeSettings(BaseSettings):
    # hide_input_in_errors: several settings hold secrets (Redis URL, evidence key), and errors must not echo them
    model_config = SettingsConfigDict(
        env_prefix="SAFEWATCH_", extra="forbid", validate_assignment=False, hide_input_in_errors=True
    )

    data_dir: Path = Field(default=Path("data"), description="Store, media and event spools live here")
    models_dir: Path = Field(
        default=Path("models"), description="Model cards (*.yaml) and built ONNX files, for the cameras and the API"
    )
    opencv_threads: int = Field(
        default=1,
        ge=0,
        le=64,
        description="OpenCV's threads for one image operation (resize, colour conversion) in the processes that run "
        "cameras: 1 = in the calling thread (the cameras already run in parallel; OpenCV's own pool only adds "
        "hand-off CPU on these small images, ~4-8% of a camera's CPU per analysed frame); 0 = OpenCV's default",
    )
    inference_threads: int = Field(
        default=1,
        ge=0,
        le=64,
        description="ONNX Runtime threads inside one inference (intra-op) in the processes that run cameras: 1 = each "
        "inference on one core, the cameras running in parallel (the least CPU per analysed frame: ~7% less than "
        "spreading one frame over two cores, bench/results/regions.md); 0 = ONNX Runtime's default (every physical "
        "core on one frame: lower latency for a single camera on an otherwise idle machine)",
    )
    precision: Precision = Field(
        default="auto",
        description="Which file of a model with an int8 variant runs: `auto` = the int8 variant on CPU-only sessions "
        "(where it is built and passed its agreement gate), the fp32 model on GPUs; `fp32` = always the fp32 model; "
        "`int8` = the int8 variant wherever it is built",
    )
    media_root: Path | None = Field(
        default=None,
        description="Snapshots, clips and manifests; default `<data_dir>/media`. Distributed: one volume shared by "
        "the API (which serves it and runs retention on it) and every worker",
    )
    media_roots: Annotated[tuple[Path, ...], NoDecode] = Field(
        default=(DEFAULT_MEDIA_ROOT,),
        description="Input video: directories whose files a camera set through the HTTP API may play "
        f"(`{os.pathsep}`-separated list; default: the project's sample_media/). Camera YAML written on disk may "
        "name any file. Not the evidence directory (`media_root`)",
    )
    redis_url: str | None = Field(
        default=None,
        repr=False,  # it may hold a password
        description="Redis URL: the distributed bus, leases and camera configs; unset = in-process bus (embedded)",
    )
    redis_prefix: str = Field(
        default=DEFAULT_REDIS_PREFIX, description="Key prefix shared by the API and the workers of one deployment"
    )
    spool_max_bytes: int = Field(
        default=1 << 30,
        ge=1 << 16,
        description="Cap of the on-disk event spool (events wait there while Redis is down); when full the oldest "
        "`updated` events are dropped, never `opened`/`closed` (those are kept even past the cap)",
    )
    evidence_key: SecretStr | None = Field(
        default=None,
        description=f"HMAC key that signs evidence manifests, at least {MIN_EVIDENCE_KEY_BYTES} bytes (hex, base64 or "
        "text); unset or empty = no HMAC. Only a holder of the key can check (and forge) it: kept so evidence signed "
        "before public-key signatures still verifies; prefer `evidence_signing_key`",
    )
    evidence_signing_key: Path | None = Field(
        default=None,
        description="Ed25519 private key (PEM, `safewatch evidence keygen`) that signs every evidence manifest and "
        "chain entry; the `*.pub.pem` files beside it are the public keys served and trusted (rotation). Unset = "
        "manifests without a public-key signature",
    )
    evidence_chain: str = Field(
        default="",
        pattern=r"^([A-Za-z0-9][A-Za-z0-9._-]{0,63})?$",
        description="Name of this process's evidence chain (its log is `<media_root>/chains/<name>.jsonl`, its head "
        "`<data_dir>/evidence-chain/`); empty = the worker id (`safewatch worker`), `main` (`safewatch run`, "
        "`safewatch api`) or `replay`. Processes writing to one media root need distinct names unless they share "
        "the data dir",
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

    @field_validator("media_roots", mode="before")
    @classmethod
    def _split_roots(cls, value: object) -> object:
        if isinstance(value, str | Path):
            parts = [p for p in str(value).split(os.pathsep) if p.strip()]
            return tuple(parts) or (DEFAULT_MEDIA_ROOT,)  # empty means "not set"
        return value

    @field_validator("media_roots")
    @classmethod
    def _absolute_roots(cls, roots: tuple[Path, ...]) -> tuple[Path, ...]:
        return tuple(Path(os.path.abspath(root.expanduser())) for root in roots)

    @field_validator("evidence_key")
    @classmethod
    def _strong_key(cls, value: SecretStr | None) -> SecretStr | None:
        text = value.get_secret_value() if value is not None else ""
        if text:
            size, read_as = key_bytes(text)
            if size < MIN_EVIDENCE_KEY_BYTES:
                raise PydanticCustomError(
                    "evidence_key_too_short",
                    "the evidence key is too short: it needs at least {need} bytes (64+ hex digits, base64 of 32+ "
                    "bytes, or 32+ bytes of other text), got {size} ({read_as}); generate one with "
                    "`python -c 'import secrets; print(secrets.token_hex(32))'`",
                    {"need": MIN_EVIDENCE_KEY_BYTES, "size": size, "read_as": read_as},
                )
        return value

    @field_validator("evidence_signing_key")
    @classmethod
    def _usable_signing_key(cls, value: Path | None) -> Path | None:
        if value is not None and str(value):
            load_signer(value)  # KeyFileError (a ValueError) names the file and what is wrong, never the key
            return value
        return None

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
    def model_store_dir(self) -> Path:
        """Pushed models (`POST /v1/models`), content-addressed: `<media_root>/models`, on the volume the API and the
        workers share in distributed mode (evidence retention never looks there)."""
        return self.media_dir / "models"

    @property
    def model_cache_dir(self) -> Path:
        """This process's verified copies of the pushed versions it runs (`vision.detect.model_store.ModelCache`)."""
        return self.data_dir / "model-cache"

    def evidence_signer(self) -> Signer | None:
        """The Ed25519 signer of `evidence_signing_key` (read from its file), or None."""
        return load_signer(self.evidence_signing_key) if self.evidence_signing_key is not None else None

    def chain_name(self, default: str) -> str:
        """`evidence_chain`, else `default` (the process's role: a worker's id, `main`, `replay`)."""
        return self.evidence_chain or default

    @property
    def camera_session(self) -> SessionConfig:
        """How the camera processes run their models (`inference_threads`)."""
        return SessionConfig(intra_op_threads=self.inference_threads)

    @property
    def signing_key(self) -> bytes | None:
        """The evidence key as bytes (UTF-8 of its value, whatever its encoding: the bytes manifests were always
        signed with, and what `safewatch evidence verify` reads); None when unset or empty."""
        value = self.evidence_key.get_secret_value() if self.evidence_key is not None else ""
        return value.encode("utf-8") if value else None


def key_bytes(text: str) -> tuple[int, str]:
    """How many bytes of key `text` holds, and how it was read: hex digits, else base64, else the UTF-8 text."""
    if _HEX.fullmatch(text) and len(text) % 2 == 0:
        return len(text) // 2, "hex digits"
    for altchars in (None, b"-_"):
        try:
            return len(base64.b64decode(text, altchars=altchars, validate=True)), "base64"
        except (binascii.Error, ValueError):
            continue
    return len(text.encode("utf-8")), "text"


def configure_camera_process(settings: RuntimeSettings) -> None:
    """Process-wide settings of a process that runs cameras (the embedded service, `safewatch worker`)."""
    if settings.opencv_threads:
        cv2.setNumThreads(settings.opencv_threads)
