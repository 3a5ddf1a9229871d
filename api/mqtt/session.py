"""One connection to the broker (a fresh paho-mqtt client per connection), driven by the publisher's thread.

The publisher calls `loop()` from its own thread (no paho thread), so every callback runs there. A connection that
drops is not reconnected by paho: the publisher opens a new `Session` after a back-off and re-sends from its own
acknowledged position, so nothing depends on paho's in-memory queue surviving a disconnect.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode, MQTTProtocolVersion
from paho.mqtt.reasoncodes import ReasonCode

from api.mqtt.broker import BrokerUrl
from api.mqtt.topics import Topics

log = logging.getLogger(__name__)

ONLINE = "online"
OFFLINE = "offline"


class SessionClosed(Exception):
    """The connection is gone (or the broker refused a message); the message says why."""


class Session:
    """`open()` connects (blocking TCP connect, bounded by the client's connect timeout); `ready` once the broker
    accepted the connection; `closed` (with `reason`) when it is gone."""

    def __init__(self, broker: BrokerUrl, topics: Topics, *, client_id: str, keepalive_s: int, ca_file: str | None):
        self.broker = broker
        self.keepalive_s = keepalive_s
        self.ready = False
        self.closed = False
        self.reason = ""
        self._acked: list[int] = []
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=True,
            protocol=MQTTProtocolVersion.MQTTv311,
            reconnect_on_failure=False,
        )
        if broker.username is not None:
            client.username_pw_set(broker.username, broker.password)
        if broker.tls:
            client.tls_set(ca_certs=ca_file)
        client.will_set(topics.available, OFFLINE, qos=1, retain=True)
        client.max_inflight_messages_set(1000)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        self._client = client

    def open(self) -> None:
        """Connect (TCP, TLS, CONNECT sent); `OSError` when the broker cannot be reached."""
        self._client.connect(self.broker.host, self.broker.port, keepalive=self.keepalive_s)

    def loop(self, timeout_s: float) -> None:
        """Network I/O and callbacks for up to `timeout_s`."""
        if self.closed:
            return
        rc = self._client.loop(timeout=timeout_s)
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            self._close(mqtt.error_string(rc))

    def publish(self, topic: str, payload: str, *, retain: bool = False) -> int:
        """Hand one QoS 1 message to the connection; its message id (acknowledged ids come from `take_acked`)."""
        info = self._client.publish(topic, payload, qos=1, retain=retain)
        if info.rc != MQTTErrorCode.MQTT_ERR_SUCCESS:
            self._close(mqtt.error_string(info.rc))
            raise SessionClosed(self.reason)
        return int(info.mid)

    def take_acked(self) -> list[int]:
        """The message ids the broker acknowledged since the last call."""
        acked, self._acked = self._acked, []
        return acked

    def close(self, *, goodbye_topic: str | None = None, timeout_s: float = 2.0) -> None:
        """Disconnect; with `goodbye_topic`, first publish `offline` there (a clean exit sends no last will)."""
        if self.ready and not self.closed and goodbye_topic is not None:
            try:
                mid = self.publish(goodbye_topic, OFFLINE, retain=True)
                for _ in range(max(1, int(timeout_s / 0.05))):
                    self.loop(0.05)
                    if mid in self._acked or self.closed:
                        break
            except SessionClosed:
                pass
        with contextlib.suppress(OSError):  # sends DISCONNECT and closes the socket (no paho thread: written at once)
            self._client.disconnect()
        self._close("closed")

    def _close(self, reason: str) -> None:
        if not self.closed:
            self.closed, self.reason, self.ready = True, reason, False

    def _on_connect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
        if reason.is_failure:
            self._close(f"connection refused: {reason}")
        else:
            self.ready = True

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
        self._close(f"disconnected: {reason}")

    def _on_publish(self, _c: mqtt.Client, _u: Any, mid: int, _r: ReasonCode, _p: Any) -> None:
        self._acked.append(mid)
