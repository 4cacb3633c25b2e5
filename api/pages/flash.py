"""Messages the pages carry across a redirect (?flash=, ?refusal=). The value is signed by the
server for the signed-in user and lives a few minutes, so a link can never make a page show
text an attacker wrote ("call this number…"), nor show one user's message to another. An
unsigned, altered, expired or someone else's value is simply not shown."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac

import jwt

from jinqiu.api.security import signing_key
from jinqiu.workflow.config import Settings

MESSAGE_MINUTES = 10
_ALGORITHM = "HS256"


def _key(settings: Settings) -> bytes:
    # A key of its own: a message can never pass for a session or an access token, nor back.
    return hmac.new(
        signing_key(settings).encode("utf-8"), b"jinqiu page message", hashlib.sha256
    ).digest()


def sign_message(settings: Settings, username: str, text: str, now: dt.datetime) -> str:
    expires = now + dt.timedelta(minutes=MESSAGE_MINUTES)
    claims = {"sub": username, "msg": text, "exp": int(expires.timestamp())}
    return jwt.encode(claims, _key(settings), algorithm=_ALGORITHM)


def read_message(
    settings: Settings, username: str, value: str | None, now: dt.datetime
) -> str | None:
    """The text the server signed for this user less than MESSAGE_MINUTES ago, else None."""
    if not value or len(value) > 8000:
        return None
    try:
        claims = jwt.decode(
            value,
            _key(settings),
            algorithms=[_ALGORITHM],
            options={"require": ["sub", "msg", "exp"], "verify_exp": False},
        )
    except jwt.PyJWTError:
        return None
    # Expiry by the injected clock, not the wall clock.
    if (
        claims["sub"] != username
        or not isinstance(claims["msg"], str)
        or not isinstance(claims["exp"], int)
        or claims["exp"] <= int(now.timestamp())
    ):
        return None
    return claims["msg"]
