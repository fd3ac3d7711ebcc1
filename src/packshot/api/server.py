"""Running the app under uvicorn: the listening socket bound first, and slow clients dropped.

uvicorn (0.54, h11) has a keep-alive timeout for idle connections but none for a client that
sends its request headers slowly (slow loris), and ``limit_concurrency`` answers 503 to everyone
once it is reached. :func:`protocol_class` makes an ``H11Protocol`` subclass that

* closes a connection whose request headers are not complete ``header_timeout_s`` after its
  first byte (or after it opened);
* keeps at most ``max_pending`` connections waiting for headers: past that, the OLDEST waiting
  one is closed (a real client sends its headers in one packet, so it is never the oldest);

request bodies that stall are cut by :class:`packshot.api.middleware.WebSafetyMiddleware`
(``body_timeout_s``, 408). Behind a reverse proxy, the proxy's own timeouts do the same job.
"""
from __future__ import annotations

import errno
import socket
from collections import OrderedDict


def protocol_class(header_timeout_s: float = 10.0, max_pending: int = 256):
    from uvicorn.protocols.http.h11_impl import H11Protocol

    pending: OrderedDict[int, "GuardedH11"] = OrderedDict()  # connections still sending headers

    class GuardedH11(H11Protocol):
        _header_timer = None

        def _waiting_for_headers(self) -> bool:
            return self.cycle is None or self.cycle.response_complete

        def _arm(self) -> None:
            if self._header_timer is None and not self.transport.is_closing():
                self._header_timer = self.loop.call_later(header_timeout_s, self._headers_too_slow)
                pending[id(self)] = self
                while len(pending) > max_pending:
                    _, oldest = pending.popitem(last=False)
                    oldest._drop()

        def _disarm(self) -> None:
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None
            pending.pop(id(self), None)

        def _drop(self) -> None:
            self._disarm()
            if not self.transport.is_closing():
                self.transport.close()

        def _headers_too_slow(self) -> None:
            self._header_timer = None
            if self._waiting_for_headers():
                self._drop()
            else:
                pending.pop(id(self), None)

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            if self._waiting_for_headers():
                self._arm()  # the first byte of a request on a kept-alive connection
            super().data_received(data)
            if not self._waiting_for_headers():
                self._disarm()

        def connection_lost(self, exc) -> None:
            self._disarm()
            super().connection_lost(exc)

    return GuardedH11


class PortInUseError(OSError):
    pass


def bind(host: str, port: int, backlog: int = 2048) -> socket.socket:
    """The listening socket, bound now (before the app starts any job consumer). Raises
    :class:`PortInUseError` when another process has the port."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: no TIME_WAIT trouble
    try:
        sock.bind((host, port))
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            raise PortInUseError(e.errno, f"port {port} on {host} is already in use") from None
        raise
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock
