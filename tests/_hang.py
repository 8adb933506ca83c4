"""Endpoints that stop answering, for the bench's stop tests.

:class:`FreezingProxy` forwards TCP between the bench and a real DynamoDB Local until it has
seen a number of requests, then freezes: connections stay open, nothing more is read or
forwarded, and new connections are accepted and never answered -- a socket that accepts and
never answers, reached in the middle of a run.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Any
from urllib.parse import urlparse


class FreezingProxy:
    """A loopback TCP proxy to ``upstream`` that freezes after ``requests`` HTTP requests
    (``None``: never by itself; call :meth:`freeze`); with ``die``, it closes every connection
    and its port instead (an endpoint killed mid-run)."""

    def __init__(self, upstream: str, *, requests: int | None = None, die: bool = False) -> None:
        parsed = urlparse(upstream)
        self._upstream = (parsed.hostname or "127.0.0.1", parsed.port or 80)
        self._limit = requests
        self._die = die
        self.requests = 0
        self.frozen = threading.Event()
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._sockets: list[socket.socket] = []
        self._server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._server.bind(("127.0.0.1", 0))
        self._server.listen(64)
        self.port = int(self._server.getsockname()[1])
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def freeze(self) -> None:
        self.frozen.set()

    def close(self) -> None:
        self._closing.set()
        with self._lock:
            sockets, self._sockets = [self._server, *self._sockets], []
        for sock in sockets:
            # shutdown() first: close() alone neither wakes a thread blocked in accept() or
            # recv() on the socket nor, while one is, really closes it.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()

    def __enter__(self) -> FreezingProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _keep(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.append(sock)

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            self._keep(client)
            if self.frozen.is_set():
                continue  # accepted, never answered
            try:
                upstream = socket.create_connection(self._upstream, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            self._keep(upstream)
            threading.Thread(target=self._pump, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, requests: bool) -> None:
        while not self._closing.is_set():
            try:
                data = source.recv(65536)
            except OSError:
                return
            if not data:
                with contextlib.suppress(OSError):
                    sink.shutdown(socket.SHUT_WR)
                return
            if requests:
                with self._lock:
                    self.requests += data.count(b"X-Amz-Target")
                    if self._limit is not None and self.requests >= self._limit:
                        self.frozen.set()
            if self.frozen.is_set() and self._die:
                self.close()
                return
            if self.frozen.is_set():
                self._closing.wait()  # hold the bytes: no answer, ever
                return
            try:
                sink.sendall(data)
            except OSError:
                return


def wait_for(predicate: Any, timeout: float) -> bool:
    """Poll ``predicate`` until true or ``timeout`` seconds pass."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return bool(predicate())
