"""Which addresses a webhook may reach: the server-side request forgery guard of subscriptions and deliveries.

Only admins create webhooks, but a webhook makes the server POST wherever its URL points, from inside the site
network: to the cloud metadata service (169.254.169.254), Redis on loopback, a PLC on 10.x. So a webhook host must
resolve to public addresses only, unless the operator listed it in `SAFEWATCH_WEBHOOK_ALLOW_HOSTS` (an on-site
receiver). The resolver and `ipaddress` decide, on every address the host resolves to, so decimal/octal/hex IPv4
forms, IPv4-mapped IPv6 and names that resolve to loopback are judged by what they really are.

The check runs twice: when the subscription is created (a clear 422) and before every delivery, because DNS answers
change (DNS rebinding: public at creation, 127.0.0.1 at delivery). A delivery connects to an address it has just
checked (`WebhookGuard.pin`): the URL's host is replaced by that address and the server still sees the original
name in the Host header and the TLS SNI (certificates are verified against the name).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
#: `resolver(host, port)` → every address the host resolves to (as strings); raises `socket.gaierror` when none.
Resolver = Callable[[str, int], list[str]]

ALLOW_HOSTS_VARIABLE = "SAFEWATCH_WEBHOOK_ALLOW_HOSTS"
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # a NAT64 gateway connects to the embedded IPv4 address
_HOST_NAME = re.compile(r"(?=.{1,253}$)[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*")


class RefusedUrl(Exception):
    """A webhook URL the service will not send to; the message says why."""


class ForbiddenAddress(RefusedUrl):
    """The webhook host resolves to an address webhooks may not reach; the message says which kind and why."""


class InvalidUrl(RefusedUrl):
    """Not an http(s) URL an HTTP client can send to."""


class UnresolvedHost(Exception):
    """The webhook host does not resolve (now)."""


def forbidden_kind(address: IPAddress) -> str | None:
    """What kind of non-public address this is (`loopback`, `private`, …), or None for a public address.

    IPv4 embedded in IPv6 (IPv4-mapped `::ffff:a.b.c.d`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`) is judged by the
    IPv4 address it reaches. What is not globally routable and has no more specific name (shared 100.64/10,
    site-local fec0::/10) is `reserved`; `ipaddress` counts documentation, benchmarking and 240/4 as private.
    """
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return forbidden_kind(embedded)
    kinds = (
        ("unspecified", address.is_unspecified),
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved or not address.is_global),
        ("reserved", isinstance(address, ipaddress.IPv6Address) and address.is_site_local),
    )
    return next((kind for kind, hit in kinds if hit), None)


@dataclass(frozen=True)
class AllowList:
    """`SAFEWATCH_WEBHOOK_ALLOW_HOSTS`: host names, IP addresses and CIDR networks webhooks may reach anyway."""

    names: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, text: str) -> AllowList:
        """A comma list (`hooks.site.lan, 10.20.0.0/16, 127.0.0.1, ::1`); ValueError names a bad entry."""
        names: set[str] = set()
        networks: list[IPNetwork] = []
        for raw in text.split(","):
            entry = raw.strip().strip("[]").lower()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            except ValueError:
                pass
            name = entry.rstrip(".")
            if not _HOST_NAME.fullmatch(name):
                raise ValueError(f"{raw.strip()!r} is not a host name, an IP address or a CIDR network (no ports)")
            names.add(name)
        return cls(frozenset(names), tuple(networks))

    def allows(self, host: str, address: IPAddress) -> bool:
        if _normal_name(host) in self.names:
            return True
        candidates: list[IPAddress] = [address]
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            candidates.append(address.ipv4_mapped)  # `127.0.0.1` also allows `::ffff:127.0.0.1`
        return any(a in net for net in self.networks for a in candidates if a.version == net.version)


def system_resolver(host: str, port: int) -> list[str]:
    """Every address `getaddrinfo` returns for the host, in its order (the order a client would try them)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class Pin:
    """One checked address to connect to: `url` has the address as host; `host` and `sni` are what the server sees."""

    url: str
    host: str
    sni: str | None

    @property
    def extensions(self) -> dict[str, str]:
        return {"sni_hostname": self.sni} if self.sni else {}


class WebhookGuard:
    """Resolves a webhook URL's host and refuses it when any address is not public and not allow-listed."""

    def __init__(self, allow: AllowList, resolver: Resolver = system_resolver) -> None:
        self.allow = allow
        self.resolver = resolver

    def check(self, url: str) -> list[IPAddress]:
        """The checked addresses of the URL's host; `RefusedUrl` or `UnresolvedHost` otherwise."""
        try:
            parsed = httpx.URL(url)
        except httpx.InvalidURL as exc:
            raise InvalidUrl(f"webhook URL cannot be used: {exc}") from None
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise InvalidUrl("webhook URLs must be http or https URLs with a host")
        host = parsed.host
        literal = _ip_literal(host)
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        try:
            found = [literal] if literal else self.resolver(host, port)
            addresses = [ipaddress.ip_address(a.split("%", 1)[0]) for a in found]  # drop an IPv6 zone (`%eth0`)
        except (OSError, UnicodeError, ValueError) as exc:
            raise UnresolvedHost(f"webhook host {host!r} does not resolve") from exc
        if not addresses:
            raise UnresolvedHost(f"webhook host {host!r} does not resolve")
        for address in addresses:
            kind = forbidden_kind(address)
            if kind is not None and not self.allow.allows(host, address):
                what = "is" if literal else "resolves to"
                article = "an" if kind[0] in "aeiou" else "a"
                raise ForbiddenAddress(
                    f"webhook host {host!r} {what} {article} {kind} address; webhooks may reach only public "
                    f"addresses unless the host is listed in {ALLOW_HOSTS_VARIABLE}"
                )
        return addresses

    def pin(self, url: str) -> list[Pin]:
        """Where to connect: one `Pin` per checked address, in resolver order (an IP literal URL is its own pin)."""
        addresses = self.check(url)
        parsed = httpx.URL(url)
        if _ip_literal(parsed.host):
            return [Pin(url, parsed.netloc.decode("ascii"), None)]
        host_header = parsed.netloc.decode("ascii")
        sni = parsed.raw_host.decode("ascii") if parsed.scheme == "https" else None
        return [Pin(str(parsed.copy_with(host=str(a))), host_header, sni) for a in addresses]


def _ip_literal(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


def _normal_name(host: str) -> str:
    return host.lower().rstrip(".")
