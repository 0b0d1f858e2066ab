"""Pure ASGI middleware: API-key check, request-body size limit (both answer in OpenAI's error shape) and
request counting. Pure ASGI, not Starlette's BaseHTTPMiddleware, so that `receive` reaches the routes
untouched and they can see a client disconnect."""

from __future__ import annotations

import hmac

from prometheus_client import Counter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.errors import APIError

PUBLIC_PATHS = frozenset({"/health"})


class ApiKeyMiddleware:
    """With a key configured, every route but /health needs `Authorization: Bearer <key>` (constant-time compare)."""

    def __init__(self, app: ASGIApp, api_key: str):
        self.app = app
        self.expected = f"Bearer {api_key}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in PUBLIC_PATHS:
            return await self.app(scope, receive, send)
        given = dict(scope["headers"]).get(b"authorization", b"")
        if not hmac.compare_digest(given, self.expected):
            message = ("Incorrect API key provided." if given
                       else "You didn't provide an API key (Authorization: Bearer ...).")
            err = APIError(401, message, code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"})
            return await err.response()(scope, receive, send)
        await self.app(scope, receive, send)


class BodyTooLarge(APIError):
    def __init__(self, limit: int):
        super().__init__(413, f"Request body too large: the limit is {limit} bytes.", code="request_too_large")


class BodySizeLimitMiddleware:
    """413 for bodies over `limit` bytes: at once from Content-Length, else while the body is being read."""

    def __init__(self, app: ASGIApp, limit: int):
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            return await BodyTooLarge(self.limit).response()(scope, receive, send)
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge(self.limit)  # answered by the app's APIError handler
            return message

        await self.app(scope, limited_receive, send)


class RequestCounterMiddleware:
    """Counts answered HTTP requests by route template and status."""

    def __init__(self, app: ASGIApp, counter: Counter):
        self.app = app
        self.counter = counter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                route = getattr(scope.get("route"), "path", "unmatched")
                self.counter.labels(route, str(message["status"])).inc()
            await send(message)

        await self.app(scope, receive, counting_send)
