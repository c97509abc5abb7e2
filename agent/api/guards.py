"""Limits that run before any work: who is asking, how big, how often, how many at once.

ASGI middleware so a request is refused before its body is read or parsed (the key check used
to run after FastAPI had read and validated a 38 MB body), plus small in-process limiters for
websockets: live connections per client address and token buckets for message rates.
"""

from __future__ import annotations

import hmac
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

PUBLIC_API_PATHS = ("/healthz",)


async def _json_response(send: Send, status: int, payload: dict[str, object],
                         headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps(payload).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()), *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


class ApiKeyFirst:
    """401 for ``/api/v1`` requests without the right bearer key, before the body is read.

    The route dependency still checks (and documents the scheme in OpenAPI); this is the cheap
    gate in front of it. ``key`` is a callable so a rotated key needs no restart.
    """

    def __init__(self, app: ASGIApp, key: Callable[[], str]) -> None:
        self.app = app
        self.key = key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope.get("path", "").startswith("/api/v1/"):
            await self.app(scope, receive, send)
            return
        header = next((v for k, v in scope.get("headers", []) if k == b"authorization"), b"")
        scheme, _, token = header.partition(b" ")
        expected = self.key().encode()
        if scheme.lower() != b"bearer" or not hmac.compare_digest(token.strip(), expected):
            detail = ("missing API key: send Authorization: Bearer <HUIKUAN_API_KEY>"
                      if not token else "invalid API key")
            await _json_response(send, 401, {"detail": detail},
                                 [(b"www-authenticate", b"Bearer")])
            return
        await self.app(scope, receive, send)


class ControlCharacters:
    """400 for a NUL or other control character in the path or query: no id contains one, and
    PostgreSQL refuses NUL in text (it was a 500)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            path = scope.get("path", "")
            query = scope.get("query_string", b"").lower()
            if any(ord(ch) < 32 for ch in path) or b"%00" in query or b"\x00" in query:
                if scope["type"] == "websocket":
                    await send({"type": "websocket.close", "code": 4400})
                    return
                await _json_response(send, 400, {
                    "detail": "control characters are not allowed in the path or query"})
                return
        await self.app(scope, receive, send)


class BodyTooLarge(Exception):
    pass


class BodySizeLimit:
    """413 when Content-Length or the streamed body exceeds the route's cap: portfolio uploads
    and call recordings may be large, everything else is small."""

    def __init__(self, app: ASGIApp, max_bytes: int, small_bytes: int,
                 large_prefixes: tuple[str, ...] = ("/api/v1/portfolio",
                                                    "/api/v1/qa/recordings")) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.small_bytes = small_bytes
        self.large_prefixes = large_prefixes

    def limit_for(self, path: str) -> int:
        return self.max_bytes if path.startswith(self.large_prefixes) else self.small_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope.get("path", ""))
        for name, value in scope.get("headers", []):
            if name == b"content-length" and value.isdigit() and int(value) > limit:
                await self._reject(send, limit)
                return
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            if not started:
                await self._reject(send, limit)

    @staticmethod
    async def _reject(send: Send, limit: int) -> None:
        await _json_response(send, 413,
                             {"detail": f"request body exceeds the limit of {limit} bytes"})


CONSOLE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
               "media-src 'self' blob:; connect-src 'self'; frame-ancestors 'none'; "
               "base-uri 'none'; form-action 'self'")


class SecurityHeaders:
    """Headers a security review expects on every page and answer."""

    def __init__(self, app: ASGIApp, widget_frame_ancestors: str = "*") -> None:
        self.app = app
        self.widget_frame_ancestors = widget_frame_ancestors

    def headers_for(self, path: str) -> list[tuple[bytes, bytes]]:
        headers = [(b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer")]
        if path.startswith("/console"):
            headers += [(b"content-security-policy", CONSOLE_CSP.encode()),
                        (b"x-frame-options", b"DENY"), (b"cache-control", b"no-store")]
        elif path.startswith("/widget"):
            headers.append((b"content-security-policy",
                            f"frame-ancestors {self.widget_frame_ancestors}".encode()))
        elif path.startswith("/api/"):
            headers.append((b"cache-control", b"no-store"))
        elif path.startswith(("/docs", "/redoc", "/openapi.json")):
            headers.append((b"x-frame-options", b"DENY"))
        return headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = self.headers_for(scope.get("path", ""))

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, with_headers)


class ConnectionLimiter:
    """Live websocket connections per client address, capped (one process's view)."""

    def __init__(self, per_client: int) -> None:
        self.per_client = per_client
        self._live: dict[str, int] = {}
        self._lock = threading.Lock()

    def acquire(self, client: str) -> bool:
        with self._lock:
            count = self._live.get(client, 0)
            if count >= self.per_client:
                return False
            self._live[client] = count + 1
            return True

    def release(self, client: str) -> None:
        with self._lock:
            count = self._live.get(client, 0) - 1
            if count <= 0:
                self._live.pop(client, None)
            else:
                self._live[client] = count


class RateLimiter:
    """Token buckets by key (a chat token, a client address): ``rate`` per second, ``burst``
    at once. Old keys are forgotten so the table stays bounded."""

    def __init__(self, rate: float, burst: int, max_keys: int = 100_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        now = self.clock()
        with self._lock:
            tokens, last = self._buckets.pop(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            allowed = tokens >= 1.0
            if allowed:
                tokens -= 1.0
            self._buckets[key] = (tokens, now)
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
            return allowed
