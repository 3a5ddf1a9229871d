"""Fencing tokens of camera leases: what keeps a paused or partitioned former owner from changing incidents.

A lease (pipelines/distributed/leases.py) stops a worker from *saving* a camera's incident state once it lost the
camera, but events it already has in hand would still be published when it wakes up. So every grant of a camera's
lease carries a token, `<prefix>:fence:<camera>`, that grows with every grant: `max(previous + 1, Redis TIME in
ms)`, so it keeps growing even after a Redis restart that lost its data (as long as the Redis host's clock does not
go back by more than the time since the last grant). The same Lua script that sets the lease bumps the token and
appends a `FenceGrant` entry (`fence <camera> token <n>`) to the event stream, atomically: any event the former
owner appends after that entry is behind it in the stream. The worker stamps its token on every event of the camera
(`FencedSink`), and the store refuses events whose token is older than the newest grant or event it has seen for
the camera (api/store/incidents.py).

Re-taking a lease that lapsed while Redis was unreachable keeps the token only if nobody was granted the camera in
between (the token is still the worker's own): the worker's spooled events of the outage stay valid. Otherwise the
lease counts as lost and the camera starts afresh under a new grant. A hand-over waits (briefly) for the bus to send
what it spooled before it releases the lease, so its own last events are not behind the next owner's grant.

Rolling upgrades: upgrade the API before the workers. An API older than fencing rejects events that carry `fence`
(`extra="forbid"`: logged and acked as malformed, so lost) and logs grant entries as malformed; the other way round
is fine (events without a token are never fenced, and an older worker writes no grants).
"""

from __future__ import annotations

import logging

import redis

from pipelines.camera.pipeline import EventSink
from pipelines.events import IncidentEvent

log = logging.getLogger(__name__)

# KEYS: lease, fence token, event stream. ARGV: worker id, ttl ms, camera id. Returns the new token, or 0.
# The grant entry's fields are the ones pipelines/bus/entries.py reads (GRANT_CAMERA, GRANT_TOKEN).
_CLAIM = """
if not redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 0 end
local current = tonumber(redis.call('get', KEYS[2]) or '0')
local now = redis.call('time')
local token = math.max(current + 1, tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000))
local text = string.format('%d', token)
redis.call('set', KEYS[2], text)
redis.call('xadd', KEYS[3], '*', 'fence', ARGV[3], 'token', text)
return token
"""
# KEYS: lease, fence token. ARGV: worker id, ttl ms, the worker's token. 1 when re-taken under the same token.
_RETAKE = """
if redis.call('get', KEYS[2]) ~= ARGV[3] then return 0 end
if not redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then return 0 end
return 1
"""


class FenceScripts:
    """The lease grants that carry fencing tokens (`client` decodes responses)."""

    def __init__(self, client: redis.Redis, prefix: str, stream: str | None = None) -> None:
        self.prefix = prefix
        self.stream = stream or f"{prefix}:events"
        self._claim = client.register_script(_CLAIM)
        self._retake = client.register_script(_RETAKE)

    def fence_key(self, camera_id: str) -> str:
        return f"{self.prefix}:fence:{camera_id}"

    def claim(self, lease_key: str, camera_id: str, worker_id: str, ttl_ms: int) -> int | None:
        """Take a free lease under a new token (recorded in the stream); None when someone holds it."""
        keys = [lease_key, self.fence_key(camera_id), self.stream]
        token = int(self._claim(keys=keys, args=[worker_id, ttl_ms, camera_id]))
        return token or None

    def retake(self, lease_key: str, camera_id: str, worker_id: str, ttl_ms: int, token: int) -> bool:
        """Take a lapsed lease back under `token`, only if no grant happened since (the token is still `token`)."""
        keys = [lease_key, self.fence_key(camera_id)]
        return bool(self._retake(keys=keys, args=[worker_id, ttl_ms, str(token)]))


class FencedSink:
    """Stamps the camera's lease token on every event before passing it on (one per sink, so they stay isolated)."""

    def __init__(self, sink: EventSink, token: int) -> None:
        self.sink = sink
        self.token = token

    def handle(self, event: IncidentEvent) -> None:
        self.sink.handle(event.model_copy(update={"fence": self.token}))
