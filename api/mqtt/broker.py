"""`SAFEWATCH_MQTT_URL`: `mqtt://[user[:password]@]host[:1883]` or `mqtts://…[:8883]` (TLS), parsed once."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from vision.redact import redact_url

SCHEMES = {"mqtt": (False, 1883), "mqtts": (True, 8883)}


@dataclass(frozen=True, slots=True)
class BrokerUrl:
    """Where the broker is and how to log in; `str()` and `repr()` never show the password."""

    host: str
    port: int
    tls: bool
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    redacted: str = ""

    @classmethod
    def parse(cls, url: str) -> BrokerUrl:
        """The broker of `url`; `ValueError` (without the password in the message) when it is not one."""
        shown = redact_url(url)
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise ValueError(f"MQTT URL {shown}: not a URL with a valid port") from None
        if parts.scheme not in SCHEMES:
            raise ValueError(f"MQTT URL {shown}: the scheme must be mqtt:// or mqtts://")
        if not parts.hostname:
            raise ValueError(f"MQTT URL {shown}: no host")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError(f"MQTT URL {shown}: a path, query or fragment is not allowed")
        tls, default_port = SCHEMES[parts.scheme]
        return cls(
            host=parts.hostname,
            port=port or default_port,
            tls=tls,
            username=unquote(parts.username) if parts.username is not None else None,
            password=unquote(parts.password) if parts.password is not None else None,
            redacted=shown,
        )

    def __str__(self) -> str:
        return self.redacted
