"""Prometheus metrics on a per-app `CollectorRegistry` (never the global one, so every app/test is isolated).

The API side fills incident and webhook metrics; the worker side (camera pipelines) fills the camera metrics through
the `camera_*` / `observe_inference` methods of the same object (`app.state.ctx.metrics`).

Distributed mode (`safewatch api`): the cameras run in other processes, so `watch_workers(provider)` adds gauges read
from the workers' heartbeats at scrape time (the provider of `GET /v1/workers`). A heartbeat carries per-worker
totals, not per-camera numbers: `safewatch_worker_fps` / `safewatch_worker_lag_seconds` per worker, and
`safewatch_camera_worker{camera, worker} 1` maps each camera to the worker running it (join on `worker` for a
per-camera view).

Event spools (`watch_spools(provider)`): `safewatch_spool_bytes{worker}` is the size of a worker's on-disk spool
(events waiting for Redis) and `safewatch_spool_dropped_total{worker, type}` the events its byte cap
(`SAFEWATCH_SPOOL_MAX_BYTES`) dropped since the worker started; read from this process's bus in embedded mode,
from the heartbeats in distributed mode.

Fencing: `safewatch_fenced_events_total{camera}` counts the events the store refused because their lease fencing
token was older than the newest it had seen for the camera (a paused or partitioned former owner; api/consumer.py).

MQTT (`SAFEWATCH_MQTT_URL`, api/mqtt/): `safewatch_mqtt_connected`, `safewatch_mqtt_backlog` (stored events the broker
has not acknowledged yet), `safewatch_mqtt_events_published_total` / `_resent_total` (again after a reconnect) /
`_dropped_total` (skipped at `SAFEWATCH_MQTT_BACKLOG_MAX`) and `safewatch_mqtt_status_published_total`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from api.store.db import Store
from api.store.models import Incident, WebhookDelivery
from api.workers import WorkersProvider
from pipelines.camera.state import CameraState

log = logging.getLogger(__name__)


class _StoreCollector(Collector):
    """Gauges read from the store at scrape time (correct across restarts and processes)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def collect(self) -> Iterable[Metric]:
        incidents = GaugeMetricFamily("safewatch_incidents", "Incidents in the store", labels=["rule", "status"])
        outbox = GaugeMetricFamily("safewatch_webhook_outbox", "Webhook deliveries by status", labels=["status"])
        try:
            with self._store.read() as s:
                for rule, state, count in s.execute(
                    select(Incident.rule, Incident.status, func.count())
                    .where(Incident.shadow.is_(False))  # shadow runs' incidents are compared, not alarms
                    .group_by(Incident.rule, Incident.status)
                ):
                    incidents.add_metric([rule, state], count)
                for state, count in s.execute(
                    select(WebhookDelivery.status, func.count()).group_by(WebhookDelivery.status)
                ):
                    outbox.add_metric([state], count)
        except Exception:  # a scrape must not fail because the DB hiccups
            log.exception("metrics: store query failed")
        yield incidents
        yield outbox


class _WorkersCollector(Collector):
    """Gauges from the live workers' heartbeats, read at scrape time (see the module docs)."""

    def __init__(self, workers: WorkersProvider) -> None:
        self._workers = workers

    def collect(self) -> Iterable[Metric]:
        labels = ["worker", "host"]
        live = GaugeMetricFamily("safewatch_workers", "Live workers (heartbeat not expired)")
        fps = GaugeMetricFamily(
            "safewatch_worker_fps", "Analysed frames per second, all cameras of a worker", labels=labels
        )
        lag = GaugeMetricFamily(
            "safewatch_worker_lag_seconds",
            "Worst camera lag of a worker (seconds since a frame was analysed)",
            labels=labels,
        )
        cameras = GaugeMetricFamily("safewatch_worker_cameras", "Cameras a worker runs", labels=labels)
        seen = GaugeMetricFamily(
            "safewatch_worker_last_seen_timestamp_seconds", "Unix time of a worker's last heartbeat", labels=labels
        )
        running = GaugeMetricFamily(
            "safewatch_camera_worker", "1 for the worker that runs the camera", labels=["camera", "worker"]
        )
        try:
            workers = self._workers()
        except Exception as exc:  # a scrape must not fail because Redis is down: the worker gauges are left out
            log.warning("metrics: worker heartbeats unavailable: %s", exc)
            return
        live.add_metric([], len(workers))
        for w in workers:
            fps.add_metric([w.id, w.host], w.fps)
            lag.add_metric([w.id, w.host], w.lag_s)
            cameras.add_metric([w.id, w.host], len(w.cameras))
            seen.add_metric([w.id, w.host], w.last_seen.timestamp())
            for camera in w.cameras:
                running.add_metric([camera, w.id], 1.0)
        yield from (live, fps, lag, cameras, seen, running)


@dataclass(frozen=True, slots=True)
class WorkerSpool:
    """One worker's event spool as `/metrics` shows it."""

    worker: str
    bytes: int
    dropped: dict[str, int]  # by event type


SpoolsProvider = Callable[[], list[WorkerSpool]]


class _SpoolCollector(Collector):
    """The workers' event spool gauges, read at scrape time (see the module docs)."""

    def __init__(self, spools: SpoolsProvider) -> None:
        self._spools = spools

    def collect(self) -> Iterable[Metric]:
        size = GaugeMetricFamily(
            "safewatch_spool_bytes",
            "Size of a worker's on-disk event spool (events waiting for Redis)",
            labels=["worker"],
        )
        dropped = CounterMetricFamily(
            "safewatch_spool_dropped",
            "Events a worker's spool dropped at its byte cap (oldest updated first), since the worker started",
            labels=["worker", "type"],
        )
        try:
            spools = self._spools()
        except Exception as exc:  # a scrape must not fail because Redis is down: the spool gauges are left out
            log.warning("metrics: spool stats unavailable: %s", exc)
            return
        for spool in spools:
            size.add_metric([spool.worker], spool.bytes)
            for kind, count in sorted(spool.dropped.items()):
                dropped.add_metric([spool.worker, kind], count)
        yield from (size, dropped)


class Metrics:
    def __init__(self, store: Store | None = None) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.incident_events = Counter(
            "safewatch_incident_events", "Incident events applied to the store", ["rule", "type"], registry=r
        )
        self.fenced_events = Counter(
            "safewatch_fenced_events",
            "Events refused by the store: their lease fencing token is older than the camera's newest (a former owner)",
            ["camera"],
            registry=r,
        )
        self.webhook_deliveries = Counter(
            "safewatch_webhook_deliveries", "Successful webhook deliveries", ["format"], registry=r
        )
        self.webhook_failures = Counter(
            "safewatch_webhook_failures", "Failed webhook attempts (retry or dead)", ["format", "final"], registry=r
        )
        self.camera_fps = Gauge("safewatch_camera_fps", "Analysed frames per second", ["camera"], registry=r)
        self.frames_dropped = Counter("safewatch_frames_dropped", "Frames dropped (queue full)", ["camera"], registry=r)
        self.reconnects = Counter("safewatch_stream_reconnects", "Stream reconnects", ["camera"], registry=r)
        self.stream_state = Gauge(
            "safewatch_stream_state", "1 for the camera's current state (CameraState)", ["camera", "state"], registry=r
        )
        self.inference_latency = Histogram(
            "safewatch_inference_latency_seconds",
            "Detector inference latency per batch",
            ["model"],
            buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0),
            registry=r,
        )
        # MQTT (api/mqtt/): events acknowledged by the broker, re-sent after a reconnect, skipped at the backlog bound
        self.mqtt_connected = Gauge("safewatch_mqtt_connected", "1 while connected to the MQTT broker", registry=r)
        self.mqtt_published = Counter(
            "safewatch_mqtt_events_published", "Stored events the MQTT broker acknowledged", registry=r
        )
        self.mqtt_resent = Counter(
            "safewatch_mqtt_events_resent", "Stored events published again after an MQTT reconnect", registry=r
        )
        self.mqtt_dropped = Counter(
            "safewatch_mqtt_events_dropped",
            "Stored events never published: the MQTT backlog exceeded SAFEWATCH_MQTT_BACKLOG_MAX",
            registry=r,
        )
        self.mqtt_backlog = Gauge(
            "safewatch_mqtt_backlog", "Stored events not yet acknowledged by the MQTT broker", registry=r
        )
        self.mqtt_status = Counter("safewatch_mqtt_status_published", "Retained camera status messages", registry=r)
        if store is not None:
            r.register(_StoreCollector(store))

    def watch_workers(self, workers: WorkersProvider) -> None:
        """Distributed mode: export the heartbeats `workers()` returns at every scrape (call once per app)."""
        self.registry.register(_WorkersCollector(workers))

    def watch_spools(self, spools: SpoolsProvider) -> None:
        """Export the event spools `spools()` returns at every scrape (call once per app)."""
        self.registry.register(_SpoolCollector(spools))

    # ---- worker-side seam -------------------------------------------------------------------------------------
    def camera_frame_rate(self, camera: str, fps: float) -> None:
        self.camera_fps.labels(camera).set(fps)

    def camera_dropped(self, camera: str, frames: int = 1) -> None:
        self.frames_dropped.labels(camera).inc(frames)

    def camera_reconnected(self, camera: str) -> None:
        self.reconnects.labels(camera).inc()

    def camera_state(self, camera: str, state: CameraState) -> None:
        """One series per `CameraState` member: 1 for the current state, 0 for the others."""
        for name in CameraState:
            self.stream_state.labels(camera, name.value).set(1.0 if name == state else 0.0)

    def observe_inference(self, model: str, seconds: float) -> None:
        self.inference_latency.labels(model).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
