"""A process that only runs an MQTT publisher (for the last-will test, which kills it with SIGKILL).

python -m tests.api.mqtt.publisher_proc MQTT_URL PREFIX DATABASE_URL
"""

from __future__ import annotations

import sys
import threading

from api.metrics import Metrics
from api.mqtt.broker import BrokerUrl
from api.mqtt.publisher import MqttOptions, MqttPublisher
from api.mqtt.topics import Topics
from api.store.db import Store


def main(url: str, prefix: str, database_url: str) -> None:
    store = Store(database_url)
    options = MqttOptions(BrokerUrl.parse(url), Topics(prefix), client_id="test-victim", cursor_path=None)
    MqttPublisher(options, store, Metrics(store), "http://safewatch.test").start()
    print("started", flush=True)
    threading.Event().wait()  # until killed


if __name__ == "__main__":
    main(*sys.argv[1:4])
