"""The MQTT topic names under a configurable prefix (default `safewatch`).

- `<prefix>/events` and `<prefix>/<site>/<camera>/<rule>`: every stored IncidentEvent (QoS 1, not retained);
- `<prefix>/<site>/<camera>/status`: the camera's status (retained);
- `<prefix>/available`: `online` / `offline` (retained; `offline` is the last will).

A topic level taken from data (site, camera, rule) never contains `/`, `+`, `#` or NUL: those become `_`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_UNSAFE = re.compile(r"[/+#\x00]")


def level(value: str) -> str:
    """`value` as one topic level: MQTT separators and wildcards replaced by `_`; empty becomes `_`."""
    return _UNSAFE.sub("_", value) or "_"


def check_prefix(prefix: str) -> str:
    """`prefix` when it is a usable topic prefix (levels separated by `/`, no wildcards), else `ValueError`."""
    if not prefix or prefix.startswith("/") or prefix.endswith("/") or "//" in prefix:
        raise ValueError(f"MQTT topic prefix {prefix!r}: non-empty levels separated by '/', no leading or trailing '/'")
    if any(c in prefix for c in "+#\x00"):
        raise ValueError(f"MQTT topic prefix {prefix!r}: no wildcards (+, #)")
    return prefix


@dataclass(frozen=True, slots=True)
class Topics:
    prefix: str = "safewatch"

    @property
    def events(self) -> str:
        return f"{self.prefix}/events"

    @property
    def available(self) -> str:
        return f"{self.prefix}/available"

    def rule(self, site: str, camera: str, rule: str) -> str:
        return f"{self.prefix}/{level(site)}/{level(camera)}/{level(rule)}"

    def status(self, site: str, camera: str) -> str:
        return f"{self.prefix}/{level(site)}/{level(camera)}/status"
