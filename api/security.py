"""Bearer tokens (signed JWT with an expiry) and the login throttle (rows in the database)."""

from __future__ import annotations

import datetime as dt
import secrets
from typing import Any

import jwt
from sqlalchemy import Connection, delete, func, insert, select

from api.errors import TooManyAttempts, Unauthorized
from workflow.config import Settings
from workflow.users.models import LoginFailure

failure_t = LoginFailure.__table__  # type: ignore[attr-defined]
ALGORITHM = "HS256"
THROTTLE_WINDOW = dt.timedelta(minutes=15)
THROTTLE_LIMIT = 5  # failures per username or per address inside the window


def issue_token(settings: Settings, username: str, now: dt.datetime) -> str:
    claims: dict[str, Any] = {
        "sub": username,
        "iat": int(now.timestamp()),
        "exp": int((now + dt.timedelta(minutes=settings.token_minutes)).timestamp()),
        "typ": "access",
    }
    return jwt.encode(claims, settings.secret_key, algorithm=ALGORITHM)


def session_token(settings: Settings, username: str, now: dt.datetime) -> tuple[str, str]:
    """A token for the pages' cookie, carrying the CSRF secret its forms must echo back."""
    csrf = secrets.token_urlsafe(24)
    claims: dict[str, Any] = {
        "sub": username, "iat": int(now.timestamp()), "typ": "session", "csrf": csrf,
        "exp": int((now + dt.timedelta(minutes=settings.token_minutes)).timestamp()),
    }
    return jwt.encode(claims, settings.secret_key, algorithm=ALGORITHM), csrf


def read_session(settings: Settings, token: str, now: dt.datetime) -> tuple[str, str]:
    """(username, csrf secret) of a valid session cookie; Unauthorized otherwise."""
    try:
        claims = jwt.decode(token, settings.secret_key, algorithms=[ALGORITHM],
                            options={"require": ["sub", "exp", "csrf"], "verify_exp": False})
    except jwt.PyJWTError as exc:
        raise Unauthorized("登录已失效") from exc
    if claims.get("typ") != "session" or int(claims["exp"]) <= int(now.timestamp()):
        raise Unauthorized("登录已过期，请重新登录")
    return str(claims["sub"]), str(claims["csrf"])


def read_token(settings: Settings, token: str, now: dt.datetime) -> str:
    """The username a valid token names; Unauthorized for a bad signature, expiry or shape."""
    try:
        claims = jwt.decode(
            token, settings.secret_key, algorithms=[ALGORITHM],
            options={"require": ["sub", "exp", "iat"], "verify_exp": False},
        )
    except jwt.PyJWTError as exc:
        raise Unauthorized("登录令牌无效") from exc
    # Expiry is checked against the injected clock, not the wall clock.
    if not isinstance(claims.get("exp"), int) or claims["exp"] <= int(now.timestamp()):
        raise Unauthorized("登录已过期，请重新登录")
    if claims.get("typ") != "access" or not isinstance(claims.get("sub"), str):
        raise Unauthorized("登录令牌无效")
    return str(claims["sub"])


def throttle_keys(username: str, address: str | None) -> list[str]:
    keys = [f"user:{username.lower()}"]
    if address:
        keys.append(f"addr:{address}")
    return keys


def check_throttle(conn: Connection, keys: list[str], now: dt.datetime) -> None:
    since = now - THROTTLE_WINDOW
    for key in keys:
        count, oldest = conn.execute(
            select(func.count(), func.min(failure_t.c.at)).where(
                failure_t.c.key == key, failure_t.c.at > since
            )
        ).one()
        if count >= THROTTLE_LIMIT:
            retry = int(((oldest + THROTTLE_WINDOW) - now).total_seconds()) + 1 if oldest else 900
            raise TooManyAttempts(
                "登录失败次数过多，请稍后再试", {"retry_after_seconds": max(retry, 1)}
            )


def record_failure(conn: Connection, keys: list[str], now: dt.datetime) -> None:
    conn.execute(insert(failure_t), [{"key": k, "at": now} for k in keys])
    # Old rows are never needed again; trimming here keeps the table small without a job.
    conn.execute(delete(failure_t).where(failure_t.c.at < now - 2 * THROTTLE_WINDOW))


def clear_failures(conn: Connection, username: str) -> None:
    conn.execute(delete(failure_t).where(failure_t.c.key == f"user:{username.lower()}"))
