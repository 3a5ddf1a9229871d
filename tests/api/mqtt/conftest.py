"""MQTT test fixtures: a PRIVATE Mosquitto broker per test (stoppable, restartable) and a recording subscriber.

    def test_x(mosquitto, subscriber):
        broker = mosquitto()                          # mosquitto on a free loopback port, own config and data dir
        sub = subscriber(broker, "pfx/#")             # records every message (paho-mqtt in its own thread)
        broker.stop(); broker.start()                 # SIGTERM (persists sessions), then the same port again
        broker.kill()                                 # SIGKILL

Tests never touch the machine's shared broker on 127.0.0.1:1883. `mosquitto` is a Debian package
(scripts/system-deps.sh installs it); the tests skip with the reason when it is missing.
"""

from __future__ import annotations

import getpass
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from tests.fixtures.redis import free_port

READY_TIMEOUT_S = 10.0
WAIT_S = 30.0  # upper bound of any wait for a message (a condition, never a timed assertion)


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


_TLS_FILES = [("ca", "ca.crt"), ("cert", "server.crt"), ("key", "server.key")]


def _certificates(workdir: Path) -> None:
    """A throw-away CA (`ca.crt`) and a server certificate it signed for IP 127.0.0.1 (openssl)."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=workdir, check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt", "-days", "2",
            "-subj", "/CN=safewatch-test-ca")  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr", "-subj",
            "/CN=127.0.0.1")  # fmt: skip
    (workdir / "san.ext").write_text("subjectAltName=IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-out",
            "server.crt", "-days", "2", "-extfile", "san.ext")  # fmt: skip


class Mosquitto:
    """One mosquitto process on 127.0.0.1:`port`; with `users`, a password file and no anonymous access."""

    def __init__(self, workdir: Path, users: dict[str, str] | None = None, *, tls: bool = False) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.tls_port = free_port() if tls else None
        self.users = users
        self.proc: subprocess.Popen[bytes] | None = None
        workdir.mkdir(parents=True, exist_ok=True)
        lines = [
            f"listener {self.port} 127.0.0.1",
            f"user {getpass.getuser()}",  # as root, mosquitto would switch to `mosquitto` and lose its data dir
            "persistence true",
            f"persistence_location {workdir}/",
            f"log_dest file {workdir / 'mosquitto.log'}",
            "log_type all",
        ]
        if users:
            passwd = workdir / "passwd"
            passwd.write_text("".join(f"{u}:{p}\n" for u, p in users.items()))
            subprocess.run(["mosquitto_passwd", "-U", str(passwd)], check=True)
            lines += ["allow_anonymous false", f"password_file {passwd}"]
        else:
            lines.append("allow_anonymous true")
        if self.tls_port is not None:  # a second listener with TLS (a server certificate for 127.0.0.1)
            _certificates(workdir)
            lines += [f"listener {self.tls_port} 127.0.0.1", *(f"{k}file {workdir / n}" for k, n in _TLS_FILES)]
        (workdir / "mosquitto.conf").write_text("\n".join(lines) + "\n")

    def url(self, userinfo: str = "") -> str:
        return f"mqtt://{userinfo + '@' if userinfo else ''}127.0.0.1:{self.port}"

    def start(self) -> Mosquitto:
        self.proc = subprocess.Popen(
            ["mosquitto", "-c", str(self.workdir / "mosquitto.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not _accepts(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                log = (self.workdir / "mosquitto.log").read_text(errors="replace")[-2000:]
                self.kill()
                raise RuntimeError(f"mosquitto on port {self.port} did not start: {log}")
            time.sleep(0.02)
        return self

    def _signal(self, sig: signal.Signals) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        self.proc.wait(timeout=10)
        self.proc = None

    def stop(self) -> None:
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)


@dataclass
class Received:
    topic: str
    payload: str
    retain: bool
    dup: bool = False  # the broker's redelivery of a message it sent before (MQTT DUP flag)


@dataclass
class Subscriber:
    """A persistent-session QoS 1 subscriber (messages published while it reconnects are queued by the broker)."""

    client: mqtt.Client
    messages: list[Received] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)

    def on(self, topic: str) -> list[Received]:
        with self.cond:
            return [m for m in self.messages if m.topic == topic]

    def wait(self, predicate: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + WAIT_S
        with self.cond:
            while not predicate():
                left = deadline - time.monotonic()
                assert left > 0, f"never happened: {what}; got {[(m.topic, m.payload) for m in self.messages]}"
                self.cond.wait(min(left, 0.2))

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def mosquitto(tmp_path: Path) -> Iterator[Callable[..., Mosquitto]]:
    if shutil.which("mosquitto") is None:
        pytest.skip("mosquitto is not installed (Debian package `mosquitto`; `make system-deps` installs it)")
    started: list[Mosquitto] = []

    def make(users: dict[str, str] | None = None, *, tls: bool = False) -> Mosquitto:
        broker = Mosquitto(tmp_path / f"mosquitto-{len(started)}", users, tls=tls).start()
        started.append(broker)
        return broker

    yield make
    for broker in started:
        broker.kill()


@pytest.fixture
def subscriber() -> Iterator[Callable[..., Subscriber]]:
    made: list[Subscriber] = []

    def make(broker: Mosquitto, topic: str, *, auth: tuple[str, str] | None = None) -> Subscriber:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"test-sub-{secrets.token_hex(4)}", clean_session=False
        )
        sub = Subscriber(client)
        if auth is not None:
            client.username_pw_set(*auth)
        connected = threading.Event()

        def on_connect(c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
            c.subscribe(topic, qos=1)

        def on_subscribe(*_args: Any) -> None:
            connected.set()

        def on_message(_c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
            with sub.cond:
                sub.messages.append(Received(msg.topic, msg.payload.decode(), bool(msg.retain), bool(msg.dup)))
                sub.cond.notify_all()

        client.on_connect, client.on_subscribe, client.on_message = on_connect, on_subscribe, on_message
        client.reconnect_delay_set(min_delay=1, max_delay=1)
        client.connect("127.0.0.1", broker.port, keepalive=10)
        client.loop_start()
        assert connected.wait(WAIT_S), "subscriber did not connect"
        made.append(sub)
        return sub

    yield make
    for sub in made:
        sub.close()
