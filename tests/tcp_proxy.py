"""A small TCP proxy on 127.0.0.1 for fault tests: forwards to a target port, optionally slowly
(``rate`` bytes/s upstream), and optionally cuts one connection in the middle of a request.

``Proxy(target_port, drop_on=b"PATCH /x", drop_at=2)``: the 2nd time a client sends a request
starting with ``drop_on``, the proxy forwards part of it and then closes both sides (what a
dropped Wi-Fi, a NAT timeout or a restarted load balancer does to an upload in flight).
"""
from __future__ import annotations

import socket
import threading
import time


class Proxy:
    def __init__(self, target_port: int, *, rate: float | None = None, drop_on: bytes | None = None,
                 drop_at: int = 1, keep_bytes: int = 2000):
        self.target_port = target_port
        self.rate, self.drop_on, self.drop_at, self.keep_bytes = rate, drop_on, drop_at, keep_bytes
        self.seen = 0          # requests that matched drop_on
        self.dropped = 0       # connections cut
        self.bytes_up = 0
        self._lock = threading.Lock()
        self._sock = socket.socket()
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self.port = self._sock.getsockname()[1]
        self._stop = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._stop = True
        self._sock.close()

    def _accept(self) -> None:
        while not self._stop:
            try:
                client, _ = self._sock.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=10)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            threading.Thread(target=self._pipe, args=(client, upstream, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, False), daemon=True).start()

    def _should_drop(self, data: bytes) -> bool:
        if self.drop_on is None or not data.startswith(self.drop_on):
            return False
        with self._lock:
            self.seen += 1
            return self.seen == self.drop_at

    def _pipe(self, src: socket.socket, dst: socket.socket, up: bool) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if up and self._should_drop(data):
                    dst.sendall(data[:self.keep_bytes])  # part of the request, then the line goes dead
                    with self._lock:
                        self.dropped += 1
                    break
                if up and self.rate:
                    for i in range(0, len(data), 4096):
                        dst.sendall(data[i:i + 4096])
                        time.sleep(len(data[i:i + 4096]) / self.rate)
                else:
                    dst.sendall(data)
                if up:
                    with self._lock:
                        self.bytes_up += len(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()
