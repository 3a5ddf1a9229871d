"""Service settings: environment variables prefixed `SAFEWATCH_` (pydantic-settings), overridable from CLI flags.

`Settings` extends the camera side's `RuntimeSettings` (data, models, media, Redis, evidence key, batching) with what
the HTTP service needs; a composition root reads it once and passes it down.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator, model_validator

from api.webhooks.guard import AllowList
from pipelines.worker.settings import RuntimeSettings


class Settings(RuntimeSettings):
    """`RuntimeSettings` plus the store, the HTTP server, retention, uploads, webhooks and SSE (same env prefix)."""

    database_url: str = Field(
        default="",
        description="SQLAlchemy URL; empty = SQLite file `<data_dir>/safewatch.db`. PostgreSQL: postgresql+psycopg://…",
    )
    config_dir: Path = Field(default=Path("camera_configs"), description="Camera configuration YAML directory")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    public_base_url: str | None = Field(
        default=None, description="Base URL for links in webhooks (snapshot/clip); default http://<host>:<port>"
    )
    api_threads: int = Field(
        default=4,
        ge=1,
        le=256,
        description="Threads that run blocking endpoint work (database I/O); more only fight over the GIL — 4 "
        "measured +41% list throughput vs Starlette's default 40 on SQLite",
    )
    retention_max_age_days: float | None = Field(
        default=30.0, gt=0, description="Evidence older than this is deleted (open and kept incidents never are)"
    )
    retention_max_bytes: int | None = Field(
        default=None, gt=0, description="Total media size cap; oldest evidence goes first (open/kept never)"
    )
    retention_db_days: float = Field(
        default=365,
        gt=0,
        le=36500,
        description="Closed incidents that ended more than this many days ago are deleted from the store with their "
        "events, handling actions, webhook deliveries and evidence (incidents marked keep never are)",
    )
    retention_outbox_days: int = Field(
        default=30, ge=1, description="Delivered and dead webhook deliveries older than this many days are deleted"
    )
    retention_interval_s: float = Field(
        default=600.0, gt=0, description="How often retention runs (evidence, incidents, webhook deliveries)"
    )
    max_upload_bytes: int = Field(
        default=20 * 1024 * 1024, gt=0, description="Largest accepted upload (POST /v1/detect)"
    )
    detect_concurrency: int = Field(
        default=2, ge=1, le=64, description="POST /v1/detect requests decoded and analysed at once (own thread pool)"
    )
    detect_queue: int = Field(
        default=4, ge=0, le=1024, description="POST /v1/detect requests waiting for a slot; more get 429"
    )
    detect_retry_after_s: int = Field(default=2, ge=1, description="Retry-After of a 429 from POST /v1/detect")
    detect_upload_timeout_s: float = Field(
        default=60.0, gt=0, description="A POST /v1/detect body not received within this time is refused (408)"
    )
    detect_max_side: int = Field(
        default=1280,
        ge=64,
        description="POST /v1/detect decodes larger images reduced to 1-2x this many pixels on the longer side "
        "(large JPEGs at 1/2-1/8 scale by the decoder); boxes are still in the uploaded image's pixels",
    )
    detect_max_pixels: int = Field(
        default=10_000_000,
        gt=0,
        description="Most pixels POST /v1/detect decodes per image; a larger image that cannot be decoded reduced "
        "(not a baseline JPEG) is refused with 422. 10 MP keeps one request under ~150 MB (WebP, the costliest)",
    )

    webhook_max_attempts: int = Field(default=8, ge=1, description="Attempts before a delivery becomes a dead letter")
    webhook_backoff_base_s: float = Field(default=2.0, gt=0, description="First retry delay; doubles per attempt")
    webhook_backoff_max_s: float = Field(default=600.0, gt=0, description="Cap of the retry delay")
    webhook_timeout_s: float = Field(default=10.0, gt=0, description="HTTP timeout of one delivery attempt")
    webhook_poll_interval_s: float = Field(default=1.0, gt=0, description="Dispatcher poll interval when idle")
    webhook_lease_s: float = Field(default=60.0, gt=0, description="Claim lease, so two dispatchers never double-send")
    webhook_batch: int = Field(default=20, ge=1, description="Deliveries claimed per dispatcher round")
    webhook_dispatcher: bool = Field(default=True, description="Run the webhook dispatcher inside the API process")
    webhook_allow_hosts: str = Field(
        default="",
        description="Comma list of host names, IP addresses and CIDR networks webhooks may reach although they are "
        "loopback, private, link-local or reserved (an on-site receiver); empty = public addresses only",
    )

    sse_poll_interval_s: float = Field(
        default=1.0, gt=0, description="How often the shared SSE feed looks for new store events (commits wake it)"
    )
    sse_max_per_key: int = Field(default=4, ge=1, description="Open event streams per API key; more get 429")
    sse_max_total: int = Field(default=64, ge=1, description="Open event streams in all; more get 429")
    sse_ping_s: float = Field(default=15.0, gt=0, description="SSE keep-alive comment interval")

    @field_validator("webhook_allow_hosts")
    @classmethod
    def _valid_allow_hosts(cls, value: str) -> str:
        AllowList.parse(value)  # a typo fails at startup, not as refused deliveries later
        return value

    @model_validator(mode="after")
    def _derive_paths(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{(self.data_dir / 'safewatch.db').as_posix()}"
        if self.public_base_url is None:
            self.public_base_url = f"http://{self.host}:{self.port}"
        self.public_base_url = self.public_base_url.rstrip("/")
        return self

    @property
    def webhook_allow(self) -> AllowList:
        """`webhook_allow_hosts`, parsed."""
        return AllowList.parse(self.webhook_allow_hosts)

    @property
    def base_url(self) -> str:
        assert self.public_base_url is not None
        return self.public_base_url
