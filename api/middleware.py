"""Refusing input PostgreSQL cannot store: a NUL character anywhere in the path, the query or
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
