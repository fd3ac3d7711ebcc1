"""Pure ASGI middleware (no per-request task or body copies, SSE streams pass through untouched).

:class:`GuardMiddleware` (inside :class:`WebSafetyMiddleware`), in this order:

1. API keys. When keys are configured, every path but ``/health`` and the web app's static files
   (``/``, ``/static/...``: public assets with no data in them) needs ``X-API-Key: K`` or
   ``Authorization: Bearer K`` -> else 401 JSON. Only sha256 hashes of keys are kept; the caller's
   hash becomes ``scope["packshot.owner"]``, the owner of everything it creates.
2. Rate limit: a token bucket per key (per client address without keys, and for failed keys), of
   ``rate_limit_per_minute`` tokens refilled continuously -> 429 JSON with ``Retry-After``.
3. Body size: a declared ``Content-Length`` over the limit -> 413 JSON at once; a streamed body
   that grows past it -> 413 when the app reads it. A JSON body over ``MAX_JSON_BODY`` -> 422
   (it can only be a request with too many points or boxes, or far too long texts).

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
# JSON bodies are small (a job's request, clicks, ratings); a bigger one is refused before it is
# parsed, which happens on the event loop (12 MB of JSON took 2.4 s here, stalling every request)
MAX_JSON_BODY = 1024 * 1024


def _json_too_big(n: int) -> str:
    return (f"JSON body of {n} bytes is over the limit of {MAX_JSON_BODY} bytes (a request takes at most "
            "200 points, 200 negative points and 20 boxes)")
PUBLIC_PREFIXES = ("/static/",)
# remote workers' routes: a worker key (checked by the route), never an API key; no rate limit
WORKER_PREFIX = "/api/v1/worker/"


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
        if self._public(path) or scope.get("packshot.operator"):  # operator: see WebSafetyMiddleware
            scope["packshot.owner"] = ""
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        if path.startswith(WORKER_PREFIX):  # worker routes check their own credential (routes/workers.py)
            scope["packshot.owner"] = ""
            return await self.app(scope, receive, send)
        if b"x-worker-key" in headers:
            return await send_json(send, 403, f"a worker key is valid only on {WORKER_PREFIX}... routes")
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
        is_json = headers.get(b"content-type", b"").split(b";")[0].strip().lower() == b"application/json"
        if length is not None:
            try:
                n = int(length)
            except ValueError:
                return await send_json(send, 400, f"Content-Length {length.decode('latin-1')!r} is not a number")
            if n > self.max_body:
                return await send_json(send, 413, f"request body of {n} bytes is over the upload limit of "
                                                  f"{self.max_body} bytes")
            if is_json and n > MAX_JSON_BODY:
                return await send_json(send, 422, _json_too_big(n))
        if scope.get("method") in ("GET", "HEAD", "DELETE", "OPTIONS"):
            return await self.app(scope, receive, send)
        return await self.app(scope, self._limited(receive, is_json), send)

    async def _deny(self, send, address: str, status: int, detail: str):
        wait = self.buckets.take(address)  # failed attempts count against the caller's address
        if wait > 0:
            return await send_json(send, 429, f"too many failed attempts; retry in {math.ceil(wait)} s",
                                   {"retry-after": str(math.ceil(wait))})
        return await send_json(send, status, detail, {"www-authenticate": "Bearer"})

    def _limited(self, receive, is_json: bool = False):
        total = 0
        limit = self.max_body

        async def wrapped():
            nonlocal total
            message = await receive()
            if message["type"] == "http.request":
                total += len(message.get("body", b""))
                if total > limit:
                    raise HTTPException(413, f"request body is over the upload limit of {limit} bytes")
                if is_json and total > MAX_JSON_BODY:
                    raise HTTPException(422, _json_too_big(total))
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


# -- web safety ---------------------------------------------------------------------------------
# The web app is static files and ES modules from /static: no inline script or style, images from
# the API (or blob: URLs made from its answers). /docs and /redoc are FastAPI's pages, which load
# Swagger UI / ReDoc from a CDN with one inline script: they get a policy of their own.
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")
DOCS_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
            "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "
            "img-src 'self' data: https://fastapi.tiangolo.com https://cdn.redoc.ly; "
            "font-src 'self' https://fonts.gstatic.com; worker-src 'self' blob:; object-src 'none'; "
            "base-uri 'none'; frame-ancestors 'none'")
SECURITY_HEADERS = [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
                    (b"referrer-policy", b"no-referrer"), (b"cross-origin-opener-policy", b"same-origin")]
UNSAFE_METHODS = ("POST", "PUT", "PATCH", "DELETE")
LOOPBACK = ("127.0.0.1", "::1", "localhost")


def bad_text(raw: bytes, *, form: bool = False) -> str | None:
    """Why a raw (percent-encoded) path or query string is refused: a NUL, or bytes that are not
    UTF-8 once decoded. None when it is fine."""
    from urllib.parse import unquote_to_bytes

    data = unquote_to_bytes(raw.replace(b"+", b" ") if form else raw)
    if b"\x00" in data:
        return "contains a NUL character"
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return "is not valid UTF-8"
    return None


def _host_of(value: str) -> str:
    value = value.strip().lower()
    if value.startswith("["):  # [::1]:8000
        return value[1:].split("]", 1)[0]
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class WebSafetyMiddleware:
    """Outermost guard of every HTTP request:

    * a path or query string with a NUL or invalid UTF-8 -> 422, before any route or database sees it;
    * a ``Host`` not in ``trusted_hosts`` -> 400 (DNS rebinding; ``*`` serves any host);
    * a state-changing request (POST/PUT/PATCH/DELETE) from a browser on another site -> 403: its
      ``Origin`` must be this server's own origin or one of ``allowed_origins`` (without an Origin,
      ``Sec-Fetch-Site: cross-site`` is refused; clients that send neither are not browsers);
    * ``/metrics`` is for operators: with ``metrics_key`` set only that key opens it, else only
      callers on the server's own host that send no API key;
    * every answer carries ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY``, a
      ``Content-Security-Policy`` with ``frame-ancestors 'none'`` and ``Referrer-Policy``;
    * a request body that stalls for ``body_timeout_s`` -> 408 and the connection is closed.
    """

    def __init__(self, app, *, settings, key_hashes: frozenset[str] = frozenset()):
        self.app = app
        self.key_hashes = key_hashes
        hosts = [h.strip().lower() for h in settings.trusted_hosts if h.strip()]
        self.any_host = "*" in hosts
        self.hosts = {_host_of(h) for h in hosts}
        self.origins = {o.strip().rstrip("/").lower() for o in settings.allowed_origins if o.strip()}
        self.metrics_hash = hash_key(settings.metrics_key) if settings.metrics_key else None
        self.body_timeout_s = settings.body_timeout_s

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        docs = path in ("/docs", "/redoc", "/docs/oauth2-redirect")

        async def secured(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers") or [])
                names = {k.lower() for k, _ in headers}
                headers += [h for h in SECURITY_HEADERS if h[0] not in names]
                if b"content-security-policy" not in names:
                    headers.append((b"content-security-policy", (DOCS_CSP if docs else CSP).encode()))
                message = {**message, "headers": headers}
            await send(message)

        refusal = self._refusal(scope, path)
        if refusal is not None:
            status, detail = refusal
            return await send_json(secured, status, detail)
        if scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, secured)
        receive = self._timed(receive)
        ctype = dict(scope.get("headers") or []).get(b"content-type", b"")
        if ctype.split(b";")[0].strip().lower() == b"multipart/form-data":
            receive = FormTextCheck.wrap(receive, ctype)
        return await self.app(scope, receive, secured)

    def _refusal(self, scope, path: str) -> tuple[int, str] | None:
        for what, raw, form in (("path", scope.get("raw_path") or path.encode("utf-8", "surrogateescape"), False),
                                ("query string", scope.get("query_string") or b"", True)):
            why = bad_text(raw, form=form)
            if why:
                return 422, f"the request {what} {why}"
        headers = dict(scope.get("headers") or [])
        host = headers.get(b"host", b"").decode("latin-1")
        if not self.any_host and _host_of(host) not in self.hosts:
            return 400, (f"host {host[:100]!r} is not served here (trusted hosts: {', '.join(sorted(self.hosts))}; "
                         "set PACKSHOT_TRUSTED_HOSTS)")
        if scope.get("method") in UNSAFE_METHODS:
            origin = headers.get(b"origin", b"").decode("latin-1").strip().rstrip("/").lower()
            site = headers.get(b"sec-fetch-site", b"").decode("latin-1").strip().lower()
            own = f"{scope.get('scheme', 'http')}://{host.lower()}"
            if origin and origin != own and origin not in self.origins:
                return 403, f"cross-site request from origin {origin[:100]!r} refused (allowed: this server's own pages)"
            if not origin and site == "cross-site":
                return 403, "cross-site request refused (Sec-Fetch-Site: cross-site)"
        if path == "/metrics":
            return self._metrics_refusal(scope, headers)
        return None

    def _metrics_refusal(self, scope, headers) -> tuple[int, str] | None:
        key = headers.get(b"x-api-key", b"").decode("latin-1").strip()
        auth = headers.get(b"authorization", b"").decode("latin-1").strip()
        if not key and auth[:7].lower() == "bearer ":
            key = auth[7:].strip()
        if self.metrics_hash is not None:
            if key and hash_key(key) == self.metrics_hash:
                scope["packshot.operator"] = True
                return None
            if not key:
                return 401, "missing API key: /metrics needs the metrics key (X-API-Key)"
            if hash_key(key) not in self.key_hashes:
                return 401, "invalid API key"
            return 403, "/metrics is for operators: send the metrics key (PACKSHOT_METRICS_KEY)"
        client = (scope.get("client") or ("?", 0))[0]
        if client in LOOPBACK and not key:
            scope["packshot.operator"] = True
            return None
        return 403, ("/metrics is for operators: call it from the server's own host without an API key, "
                     "or set PACKSHOT_METRICS_KEY")

    def _timed(self, receive):
        import asyncio

        timeout = self.body_timeout_s
        done = False

        async def wrapped():
            nonlocal done
            if done:  # the body is complete: later calls wait for a disconnect, untimed
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), timeout)
            except asyncio.TimeoutError:
                raise HTTPException(408, f"request body stalled for {timeout:g} s",
                                    headers={"Connection": "close"}) from None
            done = message["type"] != "http.request" or not message.get("more_body", False)
            return message

        return wrapped


class FormTextCheck:
    """Checks the text fields of a multipart form as it streams in (files pass untouched): a NUL
    or bytes that are not UTF-8 -> 422. Needed because Starlette decodes a field that is not UTF-8
    as Latin-1, silently garbling it, and that cannot be told afterwards."""

    MAX_FIELD = 64 * 1024

    def __init__(self, boundary: bytes):
        from python_multipart.multipart import MultipartParser

        self.error: str | None = None
        self._headers: list[bytes] = []
        self._field, self._data, self._is_file = b"", bytearray(), False
        self.parser = MultipartParser(boundary, {
            "on_part_begin": self._begin, "on_header_value": self._header, "on_headers_finished": self._headers_done,
            "on_part_data": self._part_data, "on_part_end": self._end})

    @classmethod
    def wrap(cls, receive, content_type: bytes):
        from python_multipart.multipart import parse_options_header

        _, params = parse_options_header(content_type)
        boundary = params.get(b"boundary")
        if not boundary:
            return receive  # the form parser reports it
        check = cls(boundary)

        async def wrapped():
            message = await receive()
            if message["type"] == "http.request" and check.error is None:
                try:
                    check.parser.write(message.get("body", b""))
                except Exception:  # malformed: the real form parser answers for it
                    check.error = ""
                if check.error:
                    raise HTTPException(422, check.error)
            return message

        return wrapped

    def _begin(self) -> None:
        self._headers, self._field, self._data, self._is_file = [], b"", bytearray(), False

    def _header(self, data: bytes, start: int, end: int) -> None:
        self._headers.append(data[start:end])

    def _headers_done(self) -> None:
        disposition = b"".join(h for h in self._headers if b"form-data" in h.lower())
        self._is_file = b"filename=" in disposition
        name = disposition.split(b'name="', 1)[1].split(b'"', 1)[0] if b'name="' in disposition else b""
        self._field = name

    def _part_data(self, data: bytes, start: int, end: int) -> None:
        if not self._is_file and len(self._data) < self.MAX_FIELD:
            self._data += data[start:end]

    def _end(self) -> None:
        if self._is_file or self.error is not None:
            return
        field = self._field.decode("utf-8", "replace")[:40]
        if b"\x00" in self._data:
            self.error = f"form field {field!r} contains a NUL character"
        else:
            try:
                bytes(self._data).decode("utf-8")
            except UnicodeDecodeError:
                self.error = f"form field {field!r} is not valid UTF-8"
