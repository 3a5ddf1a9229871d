"""`MqttPublisher`: one thread that publishes committed store events and camera status to an MQTT broker.

It never blocks the store or a request: it only reads the store (by event number, after the commit, like the SSE
feed) in its own thread. Events go to `<prefix>/events` and `<prefix>/<site>/<camera>/<rule>` (QoS 1, not retained)
in store order, as webhooks send them (signed, expiring media links); up to `WINDOW` events wait for the broker's
acknowledgement at a time. The acknowledged position is persisted (`cursor.py`); when the connection drops, the
publisher reconnects with exponential back-off (a new client each time, the same last will) and re-sends from that
position, so events stored meanwhile go out in order when the broker returns. The backlog is bounded: beyond
`SAFEWATCH_MQTT_BACKLOG_MAX` events the oldest are skipped and counted (`safewatch_mqtt_events_dropped_total`).
Delivery is at-least-once: subscribers de-duplicate on `(id, seq)`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from api.links import MediaLinks, signed_links
from api.metrics import Metrics
from api.mqtt.broker import BrokerUrl
from api.mqtt.cursor import Cursor, EventReader
from api.mqtt.session import ONLINE, Session, SessionClosed
from api.mqtt.status import CameraReports, CameraStatus, gone, open_incidents
from api.mqtt.topics import Topics
from api.settings import Settings
from api.store.db import Store

log = logging.getLogger(__name__)

WINDOW = 100  # events handed to the broker and not yet acknowledged
LOOP_S = 0.05  # network I/O slice of one round
CONNECT_TIMEOUT_S = 10.0  # CONNECT sent, no CONNACK: give up and back off
BACKOFF_MIN_S = 0.5


@dataclass(frozen=True, slots=True)
class MqttOptions:
    broker: BrokerUrl
    topics: Topics
    client_id: str
    keepalive_s: int = 30
    ca_file: str | None = None
    backlog_max: int = 10_000
    poll_interval_s: float = 0.5
    status_interval_s: float = 2.0
    backoff_max_s: float = 30.0
    cursor_path: Path | None = None

    @classmethod
    def of(cls, settings: Settings) -> MqttOptions:
        """The options of `settings` (only when `settings.mqtt_url` is set)."""
        return cls(
            broker=BrokerUrl.parse(settings.mqtt_url),
            topics=Topics(settings.mqtt_topic_prefix),
            client_id=settings.mqtt_client_id or f"safewatch-{socket.gethostname()}-{os.getpid()}",
            keepalive_s=settings.mqtt_keepalive_s,
            ca_file=str(settings.mqtt_ca_file) if settings.mqtt_ca_file else None,
            backlog_max=settings.mqtt_backlog_max,
            poll_interval_s=settings.mqtt_poll_interval_s,
            status_interval_s=settings.mqtt_status_interval_s,
            backoff_max_s=settings.mqtt_backoff_max_s,
            cursor_path=settings.data_dir / "mqtt-cursor.json",
        )


@dataclass(slots=True)
class _Pending:
    number: int
    left: int  # messages of this event not yet acknowledged


class MqttPublisher:
    """`start()` the thread; `stop(flush_s)` publishes what was committed (up to `flush_s`), says `offline`, ends."""

    def __init__(
        self,
        options: MqttOptions,
        store: Store,
        metrics: Metrics,
        links: MediaLinks | str,
        cameras: CameraReports | None = None,
    ) -> None:
        self.options = options
        self._reader = EventReader(store, links)
        self._store = store
        self._metrics = metrics
        self._cameras = cameras
        self._cursor = Cursor(options.cursor_path) if options.cursor_path is not None else None
        self._thread = threading.Thread(target=self._run, name="mqtt-publisher", daemon=True)
        self._stop = threading.Event()
        self._flush_until = 0.0
        self._session: Session | None = None
        self._acked: int | None = None  # every event up to this store number is acknowledged (or skipped)
        self._sent = 0  # the newest event handed to the session
        self._resend_until = 0  # events up to this number were handed to an earlier session
        self._pending: deque[_Pending] = deque()
        self._mids: dict[int, _Pending] = {}
        self._status: dict[str, CameraStatus] = {}
        self._failures = 0
        self._next_connect = 0.0
        self._next_poll = 0.0
        self._next_status = 0.0
        self._next_save = 0.0
        self._next_read = 0.0
        self._connect_deadline = 0.0
        self.connected = threading.Event()

    def start(self) -> None:
        log.info("MQTT: publishing to %s under %s/", self.options.broker, self.options.topics.prefix)
        self._thread.start()

    def stop(self, flush_s: float = 5.0) -> None:
        """Publish the events committed so far (while connected, up to `flush_s`), then disconnect cleanly."""
        self._flush_until = time.monotonic() + flush_s
        self._stop.set()
        if self._thread.ident is not None:  # started
            self._thread.join(timeout=flush_s + 5.0)

    # ---- the thread -------------------------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            try:
                if self._stop.is_set() and self._flushed():
                    break
                self._round()
            except Exception:  # the store or the broker misbehaved: drop the connection, back off, go on
                log.exception("MQTT publisher round failed")
                self._lost("error")
                self._stop.wait(1.0)
        self._shutdown()

    def _flushed(self) -> bool:
        if time.monotonic() >= self._flush_until or self._session is None or not self._session.ready:
            return True
        return not self._pending and self._acked is not None and self._acked >= self._reader.latest()

    def _round(self) -> None:
        now = time.monotonic()
        if self._acked is None:
            self._acked = self._sent = self._start_position()
        if now >= self._next_poll:
            self._bound_and_count()
        session = self._session
        if session is None:
            if now >= self._next_connect and not self._stop.is_set():
                self._connect()
            else:
                self._stop.wait(min(LOOP_S * 4, max(0.0, self._next_connect - now)))
            return
        session.loop(LOOP_S)
        self._take_acks(session)
        if session.closed:
            self._lost(session.reason)
        elif not session.ready:
            if now >= self._connect_deadline:
                session.close()
                self._lost(f"no CONNACK within {CONNECT_TIMEOUT_S:.0f} s")
        else:
            if not self.connected.is_set():
                self._online(session)
            self._send_events(session, now)
            if self._cameras is not None and now >= self._next_status:
                self._next_status = now + self.options.status_interval_s
                self._send_status(session)
        self._save(now)

    def _start_position(self) -> int:
        saved = self._cursor.load() if self._cursor is not None else None
        if saved is not None:
            log.info("MQTT: resuming after store event %d", saved)
            return saved
        return self._reader.latest()  # no cursor yet: new events only

    def _connect(self) -> None:
        o = self.options
        session = Session(o.broker, o.topics, client_id=o.client_id, keepalive_s=o.keepalive_s, ca_file=o.ca_file)
        try:
            session.open()
        except (OSError, ValueError) as exc:
            self._lost(f"{type(exc).__name__}: {exc}")
            return
        self._session = session
        self._connect_deadline = time.monotonic() + CONNECT_TIMEOUT_S

    def _online(self, session: Session) -> None:
        self.connected.set()
        self._metrics.mqtt_connected.set(1)
        resend = self._resend_until - (self._acked or 0)
        log.info(
            "MQTT connected to %s%s",
            self.options.broker,
            f" after {self._failures} failed attempts" if self._failures else "",
        )
        if resend > 0:
            log.info("MQTT: re-sending from store event %d", (self._acked or 0) + 1)
        self._failures = 0
        self._status.clear()  # a restarted broker may have lost the retained status: publish all again
        self._next_status = self._next_poll = 0.0
        session.publish(self.options.topics.available, ONLINE, retain=True)

    def _lost(self, reason: str) -> None:
        """The connection is gone (or never came): forget what it had in flight, back off."""
        if self._session is not None and not self._session.closed:
            self._session.close()
        self._session = None
        if self.connected.is_set() or self._failures == 0:
            log.warning(
                "MQTT broker %s unavailable (%s); retrying with back-off, events wait in the store",
                self.options.broker,
                reason,
            )
        else:
            log.debug("MQTT broker %s still unavailable (%s)", self.options.broker, reason)
        self.connected.clear()
        self._metrics.mqtt_connected.set(0)
        self._resend_until = max(self._resend_until, self._sent)
        if self._acked is not None:
            self._sent = self._acked
        self._pending.clear()
        self._mids.clear()
        self._failures += 1
        delay = min(self.options.backoff_max_s, BACKOFF_MIN_S * 2 ** min(self._failures - 1, 16))
        self._next_connect = time.monotonic() + delay

    # ---- events -----------------------------------------------------------------------------------------------
    def _bound_and_count(self) -> None:
        """Every poll interval: skip what exceeds the backlog bound (when nothing is in flight), update the gauge."""
        self._next_poll = time.monotonic() + self.options.poll_interval_s
        assert self._acked is not None
        if not self._pending:
            target, skipped = self._reader.skip_to(self._acked, self.options.backlog_max)
            if skipped:
                log.warning(
                    "MQTT backlog over %d events: skipping %d (store events up to %d)",
                    self.options.backlog_max,
                    skipped,
                    target,
                )
                self._metrics.mqtt_dropped.inc(skipped)
                self._acked = self._sent = target
        self._metrics.mqtt_backlog.set(self._reader.count_after(self._acked))

    def _send_events(self, session: Session, now: float) -> None:
        room = WINDOW - len(self._pending)
        if room <= 0 or now < self._next_read:
            return
        events = self._reader.after(self._sent, room)
        # caught up: wait for the next poll; a full page: read on at once
        self._next_read = now + self.options.poll_interval_s if len(events) < room else now
        topics = self.options.topics
        for event in events:
            entry = _Pending(event.number, 2)
            for topic in (topics.events, topics.rule(event.site, event.camera_id, event.rule)):
                try:
                    self._mids[session.publish(topic, event.data)] = entry
                except SessionClosed:
                    return
            self._pending.append(entry)
            self._sent = event.number
            if event.number <= self._resend_until:
                self._metrics.mqtt_resent.inc()

    def _take_acks(self, session: Session) -> None:
        for mid in session.take_acked():
            entry = self._mids.pop(mid, None)
            if entry is not None:
                entry.left -= 1
        while self._pending and self._pending[0].left <= 0:
            self._acked = self._pending.popleft().number
            self._metrics.mqtt_published.inc()

    def _save(self, now: float) -> None:
        if self._cursor is not None and self._acked is not None and now >= self._next_save:
            self._next_save = now + 1.0
            self._cursor.save(self._acked)

    # ---- camera status ----------------------------------------------------------------------------------------
    def _send_status(self, session: Session) -> None:
        assert self._cameras is not None
        try:
            reports = self._cameras()
        except Exception as exc:  # e.g. Redis down (heartbeats): keep the last status, try again next interval
            log.warning("MQTT: camera status unavailable: %s: %s", type(exc).__name__, exc)
            return
        counts = open_incidents(self._store)
        seen = {r.camera_id for r in reports}
        reports += [gone(before) for camera, before in self._status.items() if camera not in seen]
        for report in reports:
            status = CameraStatus.of(report, counts.get(report.camera_id, 0))
            if status.changed(self._status.get(report.camera_id)):
                session.publish(self.options.topics.status(status.site, status.camera_id), status.json(), retain=True)
                self._status[report.camera_id] = status
                self._metrics.mqtt_status.inc()

    def _shutdown(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            session.close(goodbye_topic=self.options.topics.available)
        if self._acked is not None:
            if self._cursor is not None:
                self._cursor.save(self._acked)
            with contextlib.suppress(Exception):  # the store may be gone already
                self._metrics.mqtt_backlog.set(self._reader.count_after(self._acked))
        self.connected.clear()
        self._metrics.mqtt_connected.set(0)
        log.info("MQTT publisher stopped at store event %s", self._acked)


def from_settings(
    settings: Settings, store: Store, metrics: Metrics, cameras: CameraReports | None = None
) -> MqttPublisher | None:
    """The publisher `settings` ask for (`SAFEWATCH_MQTT_URL`), or None when it is unset."""
    if not settings.mqtt_url:
        return None
    return MqttPublisher(MqttOptions.of(settings), store, metrics, signed_links(settings), cameras)
