"""`LinkCutter`: a TCP relay on 127.0.0.1 between one process and Redis whose link the test can cut and restore.

A network partition of one worker from Redis, as the worker sees it: `cut()` closes every relayed connection, and
connections made while cut are accepted but never relayed (the worker's commands time out, as over a dead link);
`restore()` relays new connections again (the held ones are closed, so the client reconnects). Loopback only and no
privileges, so it runs wherever the tests run (a network namespace with a veth pair would need CAP_NET_ADMIN).
"""

from __future__ import annotations

import contextlib
import socket
import threading


class LinkCutter:
    def __init__(self, upstream_port: int, upstream_host: str = "127.0.0.1") -> None:
        self.upstream = (upstream_host, upstream_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        self._lock = threading.Lock()
        self._cut = False
        self._closed = False
        self._live: set[socket.socket] = set()
        self._held: list[socket.socket] = []
        threading.Thread(target=self._accept, name="link-cutter", daemon=True).start()

    def cut(self) -> None:
        with self._lock:
            self._cut = True
            doomed = list(self._live)
            self._live.clear()
        for sock in doomed:
            _close(sock)

    def restore(self) -> None:
        with self._lock:
            self._cut = False
            held, self._held = self._held, []
        for sock in held:
            _close(sock)

    def close(self) -> None:
        with self._lock:
            self._closed = True
        self.cut()
        self.restore()
        _close(self._listener)

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                if self._closed:
                    _close(client)
                    return
                if self._cut:
                    self._held.append(client)
                    continue
            try:
                upstream = socket.create_connection(self.upstream, timeout=2)
                upstream.settimeout(None)
            except OSError:
                _close(client)
                continue
            with self._lock:
                relay = not self._cut  # cut while connecting upstream: drop both
                if relay:
                    self._live.update((client, upstream))
            if not relay:
                _close(client)
                _close(upstream)
                continue
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            with self._lock:
                self._live.discard(src)
                self._live.discard(dst)
            _close(src)
            _close(dst)


def _close(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
