"""Pure ASGI middleware (no per-request task or body copies, SSE streams pass through untouched).

:class:`GuardMiddleware`, in this order:

1. API keys. When keys are configured, every path but ``/health`` and the web app's static files
   (``/``, ``/static/...``: public assets with no data in them) needs ``X-API-Key: K`` or
   ``Authorization: Bearer K`` -> else 401 JSON. Only sha256 hashes of keys are kept; the caller's
   hash becomes ``scope["packshot.owner"]``, the owner of everything it creates.
2. Rate limit: a token bucket per key (per client address without keys, and for failed keys), of
   ``rate_limit_per_minute`` tokens refilled continuously -> 429 JSON with ``Retry-After``.
3. Body size: a declared ``Content-Length`` over the limit -> 413 JSON at once; a streamed body
   that grows past it -> 413 when the app reads it.

:class:`MetricsMiddleware` counts requests and their latency by route template for /metrics.
"""
from __future__ import annotations

import hashlib
import json
import math
import threading
import time

from starlette.exceptions import HTTPException

PUBLIC_PATHS = ("/health", "/", "/favicon.ico")
PUBLIC_PREFIXES = ("/static/",)


def hash_key(key: str) -> str:
    """sha256 hex of an API key (what is stored and compared)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_hashes(keys: list[str]) -> frozenset[str]:
    """Keys from settings; an entry ``sha256:<hex>`` is already hashed (config files need not hold
    the plain key)."""
    out = set()
    for k in keys:
        k = k.strip()
        if not k:
            continue
        if k.startswith("sha256:") and len(k) == 71:
            out.add(k[7:].lower())
        else:
            out.add(hash_key(k))
    return frozenset(out)


async def send_json(send, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    hdrs = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    for k, v in (headers or {}).items():
        hdrs.append((k.lower().encode(), v.encode()))
    await send({"type": "http.response.start", "status": status, "headers": hdrs})
    await send({"type": "http.response.body", "body": body})


class TokenBuckets:
    """One bucket per key: ``capacity`` tokens, refilled at ``capacity`` per minute."""

    def __init__(self, per_minute: int, max_keys: int = 100_000):
        self.capacity = float(per_minute)
        self.rate = per_minute / 60.0
        self.max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str) -> float:
        """0.0 when a token was taken, else the seconds until one is available."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.capacity, now))
            tokens = min(self.capacity, tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            if len(self._buckets) > self.max_keys:  # forget the fullest buckets first
                for k in [k for k, (t, _) in self._buckets.items() if t >= self.capacity - 1][:1000]:
                    del self._buckets[k]
            return (1.0 - tokens) / self.rate


class GuardMiddleware:
    def __init__(self, app, *, key_hashes: frozenset[str], per_minute: int, max_body: int):
        self.app = app
        self.key_hashes = key_hashes
        self.buckets = TokenBuckets(per_minute)
        self.per_minute = per_minute
        self.max_body = max_body

    @staticmethod
    def _public(path: str) -> bool:
        return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        if self._public(path):
            scope["packshot.owner"] = ""
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        client = scope.get("client")
        address = f"ip:{client[0]}" if client else "ip:?"
        owner = ""
        if self.key_hashes:
            key = headers.get(b"x-api-key", b"").decode("latin-1").strip()
            if not key:
                auth = headers.get(b"authorization", b"").decode("latin-1").strip()
                if auth[:7].lower() == "bearer ":
                    key = auth[7:].strip()
            if not key:
                return await self._deny(send, address, 401, "missing API key: send it in the X-API-Key header "
                                                            "(or Authorization: Bearer KEY)")
            owner = hash_key(key)
            if owner not in self.key_hashes:
                return await self._deny(send, address, 401, "invalid API key")
        wait = self.buckets.take(owner or address)
        if wait > 0:
            return await send_json(send, 429, f"rate limit of {self.per_minute} requests per minute exceeded; "
                                              f"retry in {math.ceil(wait)} s",
                                   {"retry-after": str(math.ceil(wait))})
        scope["packshot.owner"] = owner
        length = headers.get(b"content-length")
        if length is not None:
            try:
                n = int(length)
            except ValueError:
                return await send_json(send, 400, f"Content-Length {length.decode('latin-1')!r} is not a number")
            if n > self.max_body:
                return await send_json(send, 413, f"request body of {n} bytes is over the upload limit of "
                                                  f"{self.max_body} bytes")
        if scope.get("method") in ("GET", "HEAD", "DELETE", "OPTIONS"):
            return await self.app(scope, receive, send)
        return await self.app(scope, self._limited(receive), send)

    async def _deny(self, send, address: str, status: int, detail: str):
        wait = self.buckets.take(address)  # failed attempts count against the caller's address
        if wait > 0:
            return await send_json(send, 429, f"too many failed attempts; retry in {math.ceil(wait)} s",
                                   {"retry-after": str(math.ceil(wait))})
        return await send_json(send, status, detail, {"www-authenticate": "Bearer"})

    def _limited(self, receive):
        total = 0
        limit = self.max_body

        async def wrapped():
            nonlocal total
            message = await receive()
            if message["type"] == "http.request":
                total += len(message.get("body", b""))
                if total > limit:
                    raise HTTPException(413, f"request body is over the upload limit of {limit} bytes")
            return message

        return wrapped


class MetricsMiddleware:
    """HTTP request count and latency by (method, route template, status)."""

    def __init__(self, app, *, metrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        t0 = time.perf_counter()
        status = {"code": 500}

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            # the matched route's template ("/api/v1/jobs/{job_id}"): FastAPI keeps the prefixed path
            # of routes from included routers in its effective route context
            ctx = (scope.get("fastapi") or {}).get("effective_route_context")
            template = getattr(ctx, "path", None) or getattr(scope.get("route"), "path", None) or (
                "/static" if scope.get("path", "").startswith("/static/") else "<unmatched>")
            self.metrics.observe_request(scope.get("method", "?"), template, status["code"],
                                         time.perf_counter() - t0)
