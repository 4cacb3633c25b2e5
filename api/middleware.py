"""Guards around every request: the browser-side security headers (SecurityHeaders); a body
above its size limit is a 413 (LimitBody); and input PostgreSQL cannot store — a NUL character
anywhere in the path, the query or the body — is a 422 on every database alike (RejectNul),
before any handler (or login throttle) sees it."""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from jinqiu.api.errors import HtmlError, wants_html

_ESCAPED_NUL = re.compile(rb"\\u0000|%00", re.IGNORECASE)


class HttpOnly:
    """An ASGI middleware that sees HTTP requests only (`handle`); anything else (the lifespan)
    passes straight through to the application. `html_error`: how a refusal looks to a page
    (a browser asking for HTML), as the application's own handlers render it."""

    def __init__(self, app: ASGIApp, html_error: HtmlError | None = None) -> None:
        self.app = app
        self.html_error = html_error

    async def refuse(
        self,
        scope: Scope,
        send: Send,
        status: int,
        payload: dict[str, Any],
        *headers: tuple[bytes, bytes],
    ) -> None:
        """The contract's JSON body; for a page, the error page with the same message."""
        if self.html_error is not None and wants_html(Request(scope)):
            page = self.html_error(Request(scope), status, payload["code"], payload["message"])
            page.raw_headers.extend(headers)
            await page(scope, _nothing_more, send)
            return
        await refuse(send, status, payload, *headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        await self.handle(scope, receive, send)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError


async def read_body(receive: Receive, limit: int | None = None) -> bytes | None:
    """The whole request body, chunk by chunk; None as soon as it passes `limit` (the rest is
    never read)."""
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] != "http.request":  # the client went away: let the app see it
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if limit is not None and size > limit:
            return None
        chunks.append(chunk)
        more = bool(message.get("more_body"))
    return b"".join(chunks)


async def _nothing_more() -> Message:  # a refusal reads no more of the request
    return {"type": "http.disconnect"}


def replaying(body: bytes, receive: Receive) -> Receive:
    """The application's `receive` once a middleware has read the body: that body in one
    message, then whatever the server says next."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def refuse(
    send: Send, status: int, payload: dict[str, Any], *headers: tuple[bytes, bytes]
) -> None:
    """A refusal in the contract's JSON shape, answered before the application sees anything."""
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RejectNul(HttpOnly):
    """A NUL in the path, the query or the body (raw or escaped): 422, whatever the route. In
    a multipart body, the files' own bytes are exempt (a PDF or JPEG holds NULs): their routes
    judge them by their content."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        where = None
        if "\x00" in scope.get("path", "") or _ESCAPED_NUL.search(scope.get("query_string", b"")):
            where = "query"
        body = await read_body(receive)
        assert body is not None  # no limit, never refused
        if where is None and _has_nul(body, _multipart_boundary(scope)):
            where = "body"
        if where is not None:
            details = [{"field": where, "code": "nul_character", "message": "不能包含空字符"}]
            await self.refuse(
                scope,
                send,
                422,
                {
                    "code": "validation_error",
                    "message": "输入有误：不能包含空字符（\\u0000）",
                    "details": details,
                },
            )
            return
        await self.app(scope, replaying(body, receive), send)


_BOUNDARY = re.compile(rb'boundary="?([^";,]+)"?', re.IGNORECASE)


def _multipart_boundary(scope: Scope) -> bytes | None:
    for name, value in scope.get("headers", []):
        if name == b"content-type" and value.lower().startswith(b"multipart/form-data"):
            found = _BOUNDARY.search(value)
            return None if found is None else found.group(1)
    return None


def _has_nul(body: bytes, boundary: bytes | None) -> bool:
    """A NUL anywhere but inside an uploaded file's bytes (documents are binary; their text
    fields and part headers are not)."""
    if boundary is None:
        return b"\x00" in body or _ESCAPED_NUL.search(body) is not None
    for part in body.split(b"--" + boundary):
        headers, _, content = part.partition(b"\r\n\r\n")
        if b"\x00" in headers or _ESCAPED_NUL.search(headers):
            return True
        if b"filename=" not in headers.lower() and (
            b"\x00" in content or _ESCAPED_NUL.search(content)
        ):
            return True
    return False


MAX_BODY_BYTES = (
    1024 * 1024
)  # JSON bodies and forms: the largest real one (a 500-case bulk) is ~40 KB
MAX_UPLOAD_BYTES = 20 * 1024 * 1024  # multipart/form-data: room for scanned documents


class LimitBody(HttpOnly):
    """Refuses a request body above its limit before anything parses it, signed in or not:
    at once when Content-Length says so, otherwise by counting the chunks as they arrive
    (chunked bodies); the rest is never read. 413 in the contract's shape, connection closed.
    The accepted body is buffered (at most the limit) and replayed to the application."""

    def __init__(
        self,
        app: ASGIApp,
        html_error: HtmlError | None = None,
        max_bytes: int = MAX_BODY_BYTES,
        max_upload_bytes: int = MAX_UPLOAD_BYTES,
    ) -> None:
        super().__init__(app, html_error)
        self.max_bytes = max_bytes
        self.max_upload_bytes = max_upload_bytes

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        upload = headers.get(b"content-type", b"").lower().startswith(b"multipart/form-data")
        limit = self.max_upload_bytes if upload else self.max_bytes
        declared = headers.get(b"content-length", b"").strip()
        too_large = declared.isdigit() and (len(declared) > 12 or int(declared) > limit)
        body = None if too_large else await read_body(receive, limit)
        if body is None:
            payload: dict[str, Any] = {
                "code": "too_large",
                "message": f"请求内容过大：最多 {limit // (1024 * 1024)} MB",
                "details": {"max_bytes": limit},
            }
            # The unread rest of the body is dropped with the connection.
            await self.refuse(scope, send, 413, payload, (b"connection", b"close"))
            return
        await self.app(scope, replaying(body, receive), send)


# Scripts, styles, images and fetches from this origin only: no inline script or style (the
# pages keep theirs in /static), no framing, no plugins, forms post only here.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
_SECURITY_HEADERS = [
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),  # a page's address (and its ?flash=) stays on this site
]


class SecurityHeaders(HttpOnly):
    """The browser-side protections on every response. Everything but /static is personal or
    per-user (pages, API answers with case data, errors naming them), so no cache keeps it:
    Cache-Control no-store unless the response set its own."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        static = str(scope.get("path", "")).startswith("/static/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    h
                    for h in message.get("headers", [])
                    if h[0].lower() not in {name for name, _ in _SECURITY_HEADERS}
                ]
                headers += _SECURITY_HEADERS
                if not static and not any(h[0].lower() == b"cache-control" for h in headers):
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)
