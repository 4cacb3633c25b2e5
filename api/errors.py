"""Every error leaves as docs/CONTRACT.md's body: {"code", "message" (zh-CN), "details"}."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from jinqiu.workflow.errors import DomainError
from jinqiu.workflow.masking import masked_data, masked_text
from jinqiu.workflow.validation import field_path

log = logging.getLogger("jinqiu.api")


class ErrorBody(BaseModel):
    code: str
    message: str
    details: Any = None


class Unauthorized(DomainError):
    code = "unauthorized"
    status = 401


class TooManyAttempts(DomainError):
    code = "too_many_attempts"
    status = 429


_HTTP_CODES = {
    400: ("bad_request", "请求无效"),
    401: ("unauthorized", "未登录或登录已过期"),
    403: ("forbidden", "无权执行该操作"),
    404: ("not_found", "资源不存在"),
    405: ("method_not_allowed", "不支持该请求方法"),
    406: ("not_acceptable", "不支持的响应格式"),
    413: ("too_large", "请求内容过大"),
    415: ("unsupported_media_type", "不支持的请求格式"),
}

_FIELD_MESSAGES = {
    "missing": "必填项缺失",
    "extra_forbidden": "不允许的字段",
    "json_invalid": "JSON 格式错误",
    "int_parsing": "须为整数",
    "int_type": "须为整数",
    "string_type": "须为字符串",
    "enum": "取值不在允许范围内",
    "literal_error": "取值不在允许范围内",
    "model_attributes_type": "须为对象",
    "dict_type": "须为对象",
    "list_type": "须为列表",
    "bool_parsing": "须为布尔值",
    "greater_than_equal": "数值过小",
    "less_than_equal": "数值过大",
    "string_too_short": "不能为空",
    "string_too_long": "过长",
    "date_from_datetime_parsing": "须为 YYYY-MM-DD 格式的日期",
    "date_parsing": "须为 YYYY-MM-DD 格式的日期",
    "string_pattern_mismatch": "格式不正确",
    "too_short": "至少需要一项",
}

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "请求体无法解析（例如不是 UTF-8）"},
    401: {"model": ErrorBody, "description": "未登录或令牌无效"},
    403: {"model": ErrorBody, "description": "角色无权执行"},
    404: {"model": ErrorBody, "description": "不存在或不在本单位管辖范围内"},
    409: {"model": ErrorBody, "description": "版本冲突、状态不允许或重复"},
    422: {"model": ErrorBody, "description": "输入有误（details 指明字段）或不满足办理条件"},
}


def error_response(
    status: int, code: str, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> JSONResponse:
    # Whatever echoed the input, no full identity or card number leaves in an error.
    return JSONResponse(
        {"code": code, "message": masked_text(message), "details": masked_data(details)},
        status_code=status,
        headers=headers,
    )


def wants_html(request: Request) -> bool:
    """Pages get an HTML error; the API (and anything asking for JSON) gets the contract body."""
    path = request.url.path
    if path.startswith(("/api/", "/docs", "/openapi", "/static/")):
        return False
    return "text/html" in request.headers.get("accept", "")


HtmlError = Callable[[Request, int, str, str], Response]


def install(app: FastAPI, html_error: HtmlError) -> None:
    """The handlers that turn every refusal into the contract's body, or, for a page asking for
    HTML, into the page `html_error` renders (the pages' own template: passed in, so this module
    needs nothing of the pages)."""

    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError) -> Response:
        if wants_html(request):
            return html_error(request, exc.status, exc.code, exc.message)
        headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
        if isinstance(exc, TooManyAttempts) and isinstance(exc.details, dict):
            headers = {"Retry-After": str(exc.details.get("retry_after_seconds", 900))}
        return error_response(exc.status, exc.code, exc.message, exc.details, headers)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        details = []
        seen: set[tuple[Any, ...]] = set()
        for err in exc.errors():
            # A body that a scope dependency takes too (api.deps.after_body, so that it is
            # checked before any lookup) is validated twice: each problem is reported once.
            key = (tuple(err.get("loc", ())), err.get("type"), str(err.get("msg")))
            if key in seen:
                continue
            seen.add(key)
            loc = tuple(err.get("loc", ()))
            if loc and loc[0] in {"body", "query", "path", "header", "cookie"}:
                loc = loc[1:] if loc[0] == "body" else loc
            kind = str(err.get("type", "invalid"))
            if kind == "json_invalid":  # the location is a byte offset, not a field
                loc = ("body",)
            if kind == "value_error":
                message = str(err.get("ctx", {}).get("error", err.get("msg", "")))
                kind = "invalid"
            else:
                message = _FIELD_MESSAGES.get(kind, str(err.get("msg", "输入无效")))
            details.append({"field": field_path(loc), "code": kind, "message": message})
        first = details[0] if details else {"field": "body", "message": "输入无效"}
        message = f"输入有误：{first['field']} {first['message']}"
        if wants_html(request):  # a page's link or form: a page, as for every other refusal
            return html_error(request, 422, "validation_error", message)
        return error_response(422, "validation_error", message, details)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code, message = _HTTP_CODES.get(exc.status_code, ("http_error", "请求无法处理"))
        if wants_html(request):
            return html_error(request, exc.status_code, code, message)
        return error_response(exc.status_code, code, message, None, getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error", exc_info=exc)
        if wants_html(request):
            return html_error(request, 500, "internal_error", "服务器内部错误，请稍后重试")
        return error_response(500, "internal_error", "服务器内部错误，请稍后重试")
