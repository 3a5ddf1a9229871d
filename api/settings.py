"""Service settings: environment variables prefixed `SAFEWATCH_` (pydantic-settings), overridable from CLI flags.

`Settings` extends the camera side's `RuntimeSettings` (data, models, media, Redis, evidence key, batching) with what
the HTTP service needs; a composition root reads it once and passes it down.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_core import PydanticCustomError

from api.mqtt.broker import BrokerUrl
from api.mqtt.topics import check_prefix
from api.webhooks.guard import AllowList
from pipelines.worker.settings import MIN_EVIDENCE_KEY_BYTES, RuntimeSettings, key_bytes


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
    link_key: SecretStr | None = Field(
        default=None,
        description=f"HMAC key of signed media links (`?exp=…&sig=…`), at least {MIN_EVIDENCE_KEY_BYTES} bytes (hex, "
        "base64 or text); unset = a random key kept in `<data_dir>/link.key` (0600). Several API processes on "
        "different data dirs need the same key set here",
    )
    link_ttl_s: int = Field(
        default=7 * 86400,
        ge=60,
        le=90 * 86400,
        description="Lifetime of a signed media link in seconds (default 7 days, at most 90)",
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
    max_model_bytes: int = Field(
        default=512 * 1024 * 1024, gt=0, description="Largest accepted ONNX file (POST /v1/models, streamed to disk)"
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
    webhook_rate_window_s: float = Field(
        default=60.0, gt=0, description="The window a subscription's `rate_limit_per_min` counts in (tests shorten it)"
    )
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

    mqtt_url: str = Field(
        default="",
        repr=False,  # it may hold a password
        description="MQTT broker to publish stored events and camera status to: mqtt://user:pass@host:1883, "
        "mqtts://… for TLS (default port 8883); empty = no MQTT",
    )
    mqtt_topic_prefix: str = Field(default="safewatch", description="First topic level(s) of every MQTT topic")
    mqtt_client_id: str = Field(default="", description="MQTT client id; empty = safewatch-<host>-<pid>")
    mqtt_ca_file: Path | None = Field(
        default=None, description="CA bundle that verifies an mqtts:// broker; unset = the system's CAs"
    )
    mqtt_keepalive_s: int = Field(default=30, ge=5, le=3600, description="MQTT keep-alive interval")
    mqtt_backlog_max: int = Field(
        default=10_000,
        ge=1,
        description="Stored events at most waiting for the broker (while it is down); older ones are skipped and "
        "counted in safewatch_mqtt_events_dropped_total",
    )
    mqtt_poll_interval_s: float = Field(default=0.5, gt=0, description="How often the publisher reads new events")
    mqtt_status_interval_s: float = Field(
        default=2.0, gt=0, description="How often camera status is checked for changes (published on change)"
    )
    mqtt_backoff_max_s: float = Field(default=30.0, gt=0, description="Cap of the reconnect back-off")

    @field_validator("mqtt_url")
    @classmethod
    def _valid_mqtt_url(cls, value: str) -> str:
        if value:
            BrokerUrl.parse(value)  # the error message shows the URL redacted
        return value

    @field_validator("mqtt_topic_prefix")
    @classmethod
    def _valid_mqtt_prefix(cls, value: str) -> str:
        return check_prefix(value)

    @field_validator("webhook_allow_hosts")
    @classmethod
    def _valid_allow_hosts(cls, value: str) -> str:
        AllowList.parse(value)  # a typo fails at startup, not as refused deliveries later
        return value

    @field_validator("link_key")
    @classmethod
    def _strong_link_key(cls, value: SecretStr | None) -> SecretStr | None:
        text = value.get_secret_value() if value is not None else ""
        size, read_as = key_bytes(text) if text else (MIN_EVIDENCE_KEY_BYTES, "")
        if size < MIN_EVIDENCE_KEY_BYTES:
            raise PydanticCustomError(
                "link_key_too_short",
                "the link key is too short: it needs at least {need} bytes, got {size} ({read_as})",
                {"need": MIN_EVIDENCE_KEY_BYTES, "size": size, "read_as": read_as},
            )
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
