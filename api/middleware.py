"""Guards before any handler: a body above its size limit is a 413 (LimitBody), and input
PostgreSQL cannot store — a NUL character anywhere in the path, the query or
the body is a 422 on every database alike, before any handler (or login throttle) sees it."""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_ESCAPED_NUL = re.compile(rb"\\u0000|%00", re.IGNORECASE)


class RejectNul:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        where = None
        if "\x00" in scope.get("path", "") or _ESCAPED_NUL.search(scope.get("query_string", b"")):
            where = "query"
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            more = bool(message.get("more_body"))
        body = b"".join(chunks)
        if where is None and (b"\x00" in body or _ESCAPED_NUL.search(body)):
            where = "body"
        if where is not None:
            await _refuse(send, where)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _refuse(send: Send, where: str) -> None:
    payload: dict[str, Any] = {
        "code": "validation_error",
        "message": "输入有误：不能包含空字符（\\u0000）",
        "details": [{"field": where, "code": "nul_character", "message": "不能包含空字符"}],
    }
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    await send({"type": "http.response.start", "status": 422,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


MAX_BODY_BYTES = 1024 * 1024  # JSON bodies and forms: the largest real one (a 500-case bulk) is ~40 KB
MAX_UPLOAD_BYTES = 20 * 1024 * 1024  # multipart/form-data: room for scanned documents


class LimitBody:
    """Refuses a request body above its limit before anything parses it, signed in or not:
    at once when Content-Length says so, otherwise by counting the chunks as they arrive
    (chunked bodies); the rest is never read. 413 in the contract's shape, connection closed.
    The accepted body is buffered (at most the limit) and replayed to the application."""

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES,
                 max_upload_bytes: int = MAX_UPLOAD_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_upload_bytes = max_upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.lower(): v for k, v in scope.get("headers", [])}
        upload = headers.get(b"content-type", b"").lower().startswith(b"multipart/form-data")
        limit = self.max_upload_bytes if upload else self.max_bytes
        declared = headers.get(b"content-length", b"").strip()
        if declared.isdigit() and int(declared) > limit:
            await _too_large(send, limit)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: let the app see it
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                await _too_large(send, limit)
                return
            chunks.append(chunk)
            more = bool(message.get("more_body"))
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _too_large(send: Send, limit: int) -> None:
    payload: dict[str, Any] = {
        "code": "too_large",
        "message": f"请求内容过大：最多 {limit // (1024 * 1024)} MB",
        "details": {"max_bytes": limit},
    }
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})  # the unread rest of the body is dropped
    await send({"type": "http.response.body", "body": body})
