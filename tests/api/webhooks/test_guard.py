"""The webhook address guard: which addresses are forbidden, the allow list, re-checks at delivery (DNS rebinding)."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Iterator
from pathlib import Path

import pytest

from api.metrics import Metrics
from api.store.db import Store
from api.store.incidents import apply_event
from api.store.outbox import create_webhook, list_deliveries
from api.webhooks.dispatcher import Dispatcher
from api.webhooks.guard import (
    AllowList,
    ForbiddenAddress,
    InvalidUrl,
    UnresolvedHost,
    WebhookGuard,
    forbidden_kind,
)
from tests.api.conftest import make_event, make_settings
from tests.api.webhook_receiver import Receiver

PUBLIC = "93.184.216.34"


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("127.255.255.254", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("100.64.0.1", "reserved"),  # shared address space (carrier-grade NAT)
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fe80::1", "link-local"),
        ("fc00::1", "private"),
        ("fd12:3456::1", "private"),
        ("ff02::1", "multicast"),
        ("fec0::1", "reserved"),  # deprecated site-local
        ("::ffff:127.0.0.1", "loopback"),  # IPv4-mapped IPv6 is judged by its IPv4 address
        ("::ffff:10.0.0.1", "private"),
        ("::ffff:169.254.169.254", "link-local"),
        ("64:ff9b::7f00:1", "loopback"),  # NAT64 of 127.0.0.1
        ("2002:7f00:1::", "loopback"),  # 6to4 of 127.0.0.1
        ("8.8.8.8", None),
        ("1.1.1.1", None),
        (PUBLIC, None),
        ("2606:4700:4700::1111", None),
        ("::ffff:8.8.8.8", None),
        ("64:ff9b::808:808", None),
    ],
)
def test_address_classification(address: str, kind: str | None) -> None:
    assert forbidden_kind(ipaddress.ip_address(address)) == kind


@pytest.mark.parametrize(
    "address", ["0.1.2.3", "192.0.2.1", "198.18.0.1", "240.0.0.1", "255.255.255.255", "2001:db8::1", "::127.0.0.1"]
)
def test_documentation_benchmark_and_reserved_ranges_are_forbidden(address: str) -> None:
    assert forbidden_kind(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:8080/hook",
        "http://2130706433/",  # decimal 127.0.0.1
        "http://0x7f000001/",  # hex
        "http://017700000001/",  # octal
        "http://127.1/",  # shorthand
        "http://0/",  # 0.0.0.0
        "http://[::1]:6379/",
        "http://[::ffff:127.0.0.1]/",
        "http://127.0.0.1:6379/",
    ],
)
def test_the_system_resolver_decides_on_every_notation(url: str) -> None:
    with pytest.raises(ForbiddenAddress, match="SAFEWATCH_WEBHOOK_ALLOW_HOSTS"):
        WebhookGuard(AllowList()).check(url)


def test_every_resolved_address_is_checked() -> None:
    guard = WebhookGuard(AllowList(), resolver=lambda _h, _p: [PUBLIC, "10.1.2.3"])
    with pytest.raises(ForbiddenAddress, match=r"'mixed\.test' resolves to a private address"):
        guard.check("https://mixed.test/hook")


def test_unresolvable_hosts_and_other_schemes() -> None:
    guard = WebhookGuard(AllowList())
    with pytest.raises(UnresolvedHost):
        guard.check("https://cam1.example/hook")
    with pytest.raises(InvalidUrl, match="http or https"):
        guard.check("ftp://93.184.216.34/")


def test_allow_list_by_name_address_and_network() -> None:
    allow = AllowList.parse(" Hooks.Site.lan. , 10.20.0.0/16, [::1], 127.0.0.1")
    assert allow.names == frozenset({"hooks.site.lan"})
    guard = WebhookGuard(allow, resolver=lambda host, _p: {"hooks.site.lan": ["10.9.9.9"]}.get(host, ["10.20.3.4"]))
    assert guard.check("http://hooks.site.lan/") == [ipaddress.ip_address("10.9.9.9")]  # the name is vouched for
    assert guard.check("http://plc.site.lan/") == [ipaddress.ip_address("10.20.3.4")]  # inside 10.20.0.0/16
    assert guard.check("http://127.0.0.1:9/") and guard.check("http://[::1]:9/")
    assert guard.check("http://[::ffff:127.0.0.1]:9/")
    with pytest.raises(ForbiddenAddress):
        guard.check("http://127.0.0.2/")
    for bad in ("127.0.0.1:80", "10.0.0.0/33", "http://x", "bad host"):
        with pytest.raises(ValueError, match="not a host name"):
            AllowList.parse(bad)


def test_pins_keep_the_name_for_host_header_and_tls() -> None:
    guard = WebhookGuard(AllowList(), resolver=lambda _h, _p: [PUBLIC, "2606:2800:220:1::1"])
    first, second = guard.pin("https://hooks.example:8443/robot/send?access_token=t")
    assert first.url == f"https://{PUBLIC}:8443/robot/send?access_token=t"
    assert second.url == "https://[2606:2800:220:1::1]:8443/robot/send?access_token=t"
    assert (first.host, first.extensions) == ("hooks.example:8443", {"sni_hostname": "hooks.example"})
    (plain,) = WebhookGuard(AllowList(), resolver=lambda _h, _p: [PUBLIC]).pin("http://hooks.example/x")
    assert (plain.url, plain.host, plain.extensions) == (f"http://{PUBLIC}/x", "hooks.example", {})


class FlippingResolver:
    """DNS rebinding: `answer` is what the name resolves to right now."""

    def __init__(self, answer: str) -> None:
        self.answer = answer
        self.asked: list[str] = []

    def __call__(self, host: str, _port: int) -> list[str]:
        self.asked.append(host)
        return [self.answer]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    r.start()
    yield r
    r.stop()


def _deliver_once(tmp_path: Path, url: str, guard: WebhookGuard) -> tuple[str, str | None, int | None]:
    """One dispatcher round for one event to `url`; the delivery's (status, last_error, response_code)."""
    settings = make_settings(tmp_path, f"sqlite:///{(tmp_path / 'store.db').as_posix()}", webhook_max_attempts=1)
    store = Store(settings.database_url)
    with store.session() as s:
        hook = create_webhook(s, url=url, secret="x" * 8, fmt="json", filters={}).id
    apply_event(store, make_event("rebind", 0))
    dispatcher = Dispatcher(store, settings, Metrics(store), guard=guard)

    async def round_() -> int:
        async with dispatcher.http_client() as client:
            return await dispatcher.run_once(client)

    assert asyncio.run(round_()) == 1
    with store.read() as s:
        (row,) = list_deliveries(s, hook, status=None, limit=10)
        result = (row.status, row.last_error, row.response_code)
    store.dispose()
    return result


def test_dns_rebinding_is_refused_at_delivery(tmp_path: Path, receiver: Receiver) -> None:
    resolver = FlippingResolver(PUBLIC)
    guard = WebhookGuard(AllowList(), resolver=resolver)
    url = f"http://rebind.test:{receiver.port}/hook"
    guard.check(url)  # at creation the name is public: accepted
    resolver.answer = "127.0.0.1"  # then it rebinds to loopback
    assert _deliver_once(tmp_path, url, guard) == ("dead", "forbidden_address", None)
    assert resolver.asked == ["rebind.test", "rebind.test"] and receiver.count() == 0


def test_a_delivery_connects_to_the_checked_address_with_the_original_host(tmp_path: Path, receiver: Receiver) -> None:
    guard = WebhookGuard(AllowList.parse("receiver.test"), resolver=FlippingResolver("127.0.0.1"))
    url = f"http://receiver.test:{receiver.port}/hook"  # not in DNS: only the pinned address can reach it
    assert _deliver_once(tmp_path, url, guard) == ("delivered", None, 200)
    (got,) = receiver.received
    assert {k.lower(): v for k, v in got.headers.items()}["host"] == f"receiver.test:{receiver.port}"


def test_status_codes_not_bodies_are_recorded(tmp_path: Path, receiver: Receiver) -> None:
    receiver.status = 503
    guard = WebhookGuard(AllowList.parse("127.0.0.1"))
    assert _deliver_once(tmp_path, receiver.url, guard) == ("dead", "http_503", 503)
