"""MQTT publishing of the stored incident events and of the cameras' status (`SAFEWATCH_MQTT_URL`).

The process that owns the store runs one `MqttPublisher` (`publisher.py`): it reads committed events from the store
by event number (like the SSE feed), so MQTT carries exactly the stored events in store order, and publishes them
with QoS 1; camera status is retained per camera; `<prefix>/available` is `online`, with `offline` as the last will.
`broker.py` parses the URL, `topics.py` names the topics, `status.py` builds the status payloads, `cameras.py` says
where each composition root's camera status comes from, `cursor.py` reads events and keeps the position across
restarts, and `session.py` is one connection to the broker (paho-mqtt 2).
"""
