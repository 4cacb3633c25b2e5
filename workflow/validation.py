"""Turning pydantic's validation errors into the contract's error details: each names the
field (dotted path), a stable code and a Chinese message."""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, Field, ValidationError

from jinqiu.workflow.errors import ValidationFailed

MAX_DB_INT = 2**31 - 1  # PostgreSQL INTEGER: ids, versions and counts larger than this cannot exist
# An id or version in a JSON body is a JSON integer: true, 1.0 and "1" are refused, not read as 1.
DbId = Annotated[int, Field(strict=True, ge=1, le=MAX_DB_INT)]

_MESSAGES = {
    "missing": "必填项缺失",
    "extra_forbidden": "不允许的字段",
    "string_too_short": "不能为空",
    "string_too_long": "过长",
    "int_parsing": "须为整数",
    "int_type": "须为整数",
    "date_from_datetime_parsing": "须为 YYYY-MM-DD 格式的日期",
    "date_parsing": "须为 YYYY-MM-DD 格式的日期",
    "date_type": "须为 YYYY-MM-DD 格式的日期",
    "literal_error": "取值不在允许范围内",
    "enum": "取值不在允许范围内",
    "greater_than_equal": "数值过小",
    "less_than_equal": "数值过大",
    "decimal_parsing": "须为数字",
    "too_short": "至少需要一项",
    "too_long": "项数过多",
    "string_type": "须为字符串",
    "bool_type": "须为布尔值",
    "list_type": "须为列表",
    "dict_type": "须为对象",
    "model_type": "须为对象",
    "finite_number": "须为有限的数",
    "decimal_type": "须为数字",
    "float_type": "须为数字",
    "string_pattern_mismatch": "格式不正确",
    "date_from_datetime_inexact": "须为 YYYY-MM-DD 格式的日期",
    "int_from_float": "须为整数",
}


def field_path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "body"


def problems(exc: ValidationError, prefix: tuple[Any, ...] = ()) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for err in exc.errors():
        kind = err["type"]
        if kind == "value_error":
            message = str(err.get("ctx", {}).get("error", err["msg"]))
            code = "invalid"
        else:
            message = _MESSAGES.get(kind, err["msg"])
            code = kind
        out.append(
            {"field": field_path(prefix + tuple(err["loc"])), "code": code, "message": message}
        )
    return out


def validation_failed(exc: ValidationError, prefix: tuple[Any, ...] = ()) -> ValidationFailed:
    details = problems(exc, prefix)
    first = details[0] if details else {"field": "body", "message": "输入无效"}
    return ValidationFailed(f"输入有误：{first['field']} {first['message']}", details)


M = TypeVar("M", bound=BaseModel)


def parse(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_failed(exc) from exc
