"""Bearer tokens and page cookies (signed JWT with an expiry and the user's token generation),
the signing key, the client's address, and the login throttle (rows in the database)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

import jwt
from fastapi import Request
from sqlalchemy import Connection, Engine, delete, func, insert, select
from sqlalchemy.engine import make_url

from jinqiu.api.errors import TooManyAttempts, Unauthorized
from jinqiu.workflow.config import Settings, normalise_url
from jinqiu.workflow.db import transaction
from jinqiu.workflow.errors import DomainError
from jinqiu.workflow.users.models import LoginFailure, User
from jinqiu.workflow.users.service import DUMMY_HASH, password_matches

failure_t = LoginFailure.__table__  # type: ignore[attr-defined]
user_t = User.__table__  # type: ignore[attr-defined]
ALGORITHM = "HS256"
THROTTLE_WINDOW = dt.timedelta(minutes=15)
THROTTLE_LIMIT = 5  # failures per username or per address inside the window
MIN_KEY_BYTES = 32  # HS256 wants a key as long as its 256-bit output
KEY_VARIABLE = "JINQIU_SECRET_KEY"
KEY_HINT = 'python3 -c "import secrets; print(secrets.token_urlsafe(48))"'


class InvalidSetting(DomainError):
    """A setting the service cannot safely start with; the message names the variable."""

    code = "invalid_setting"
    status = 500


class SecretKeyProblem(InvalidSetting):
    """The signing key is missing, too short, or its file is unsafe: nothing may be signed."""

    code = "secret_key_invalid"


def check_settings(settings: Settings, database_url: str | None = None) -> Settings:
    """What `serve` and every app check before starting: the settings with the signing key
    resolved (see resolve_secret_key) and the proxy list readable. InvalidSetting otherwise."""
    key = resolve_secret_key(settings, database_url or settings.database_url)
    proxy_networks(settings.trusted_proxies)
    return settings.model_copy(update={"secret_key": key})


# -- the signing key ------------------------------------------------------------------------------


def resolve_secret_key(settings: Settings, database_url: str) -> str:
    """The key tokens are signed with: JINQIU_SECRET_KEY (at least 32 bytes), or for a SQLite
    file a key generated once and kept beside it as `<file>.secret` (mode 0600). A shared or
    in-memory database has no safe place for a generated key, so it needs the variable."""
    if settings.secret_key is not None:
        size = len(settings.secret_key.encode())
        if size < MIN_KEY_BYTES:
            raise SecretKeyProblem(
                f"{KEY_VARIABLE} 过短：须至少 {MIN_KEY_BYTES} 字节的随机字符串（当前 {size} 字节），"
                f"可用 {KEY_HINT} 生成"
            )
        return settings.secret_key
    url = make_url(normalise_url(database_url))
    if url.get_backend_name() != "sqlite":
        raise SecretKeyProblem(
            f"未设置 {KEY_VARIABLE}：{url.get_backend_name()} 数据库可由多台主机共用，"
            f"各服务进程须使用同一密钥，请设置至少 {MIN_KEY_BYTES} 字节的随机字符串"
            f"（可用 {KEY_HINT} 生成）"
        )
    database = url.database or ""
    if database in {"", ":memory:"} or url.query.get("mode") == "memory":
        raise SecretKeyProblem(
            f"未设置 {KEY_VARIABLE}：内存数据库无处保存生成的密钥，"
            f"请设置至少 {MIN_KEY_BYTES} 字节的随机字符串"
        )
    return key_beside(Path(database.removeprefix("file:")).absolute())


def key_beside(database: Path) -> str:
    path = database.with_name(database.name + ".secret")
    try:
        if not path.exists():
            _create_key_file(path)
        return _read_key_file(path)
    except OSError as exc:
        raise SecretKeyProblem(
            f"无法读写密钥文件 {path}（{exc.strerror or exc}）；或请设置 {KEY_VARIABLE}"
        ) from exc


def _create_key_file(path: Path) -> None:
    """Written under a temporary name, then linked into place: a concurrent start either wins
    the link or reads the complete key the winner wrote, never a half-written one."""
    temporary = path.with_name(f"{path.name}.{secrets.token_hex(8)}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        os.write(fd, (secrets.token_urlsafe(48) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    try:
        os.link(temporary, path)
    except FileExistsError:
        pass  # another process made it first: use theirs
    finally:
        temporary.unlink()


def _read_key_file(path: Path) -> str:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise SecretKeyProblem(
            f"密钥文件 {path} 的权限 {mode:o} 过宽，其他用户可读取：请执行 chmod 600 {path}"
        )
    key = path.read_text(encoding="utf-8").strip()
    if len(key.encode()) < MIN_KEY_BYTES:
        raise SecretKeyProblem(
            f"密钥文件 {path} 中的密钥不足 {MIN_KEY_BYTES} 字节：请删除该文件以重新生成"
            f"（所有登录将失效），或设置 {KEY_VARIABLE}"
        )
    return key


def signing_key(settings: Settings) -> str:
    """The key itself, refused when missing or short: no code path signs or checks with less."""
    key = settings.secret_key
    if key is None or len(key.encode()) < MIN_KEY_BYTES:
        raise SecretKeyProblem(f"{KEY_VARIABLE} 未设置或不足 {MIN_KEY_BYTES} 字节")
    return key


# -- tokens and cookies ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Bearer:
    """Who a valid token or cookie names, and the token generation it was issued under."""

    username: str
    generation: int


def issue_token(settings: Settings, username: str, now: dt.datetime, generation: int = 0) -> str:
    claims: dict[str, Any] = {
        "sub": username,
        "iat": int(now.timestamp()),
        "exp": int((now + dt.timedelta(minutes=settings.token_minutes)).timestamp()),
        "typ": "access",
        "gen": generation,
    }
    return jwt.encode(claims, signing_key(settings), algorithm=ALGORITHM)


def session_token(
    settings: Settings, username: str, now: dt.datetime, generation: int = 0
) -> tuple[str, str]:
    """A token for the pages' cookie, carrying the CSRF secret its forms must echo back."""
    csrf = secrets.token_urlsafe(24)
    claims: dict[str, Any] = {
        "sub": username,
        "iat": int(now.timestamp()),
        "typ": "session",
        "csrf": csrf,
        "exp": int((now + dt.timedelta(minutes=settings.token_minutes)).timestamp()),
        "gen": generation,
    }
    return jwt.encode(claims, signing_key(settings), algorithm=ALGORITHM), csrf


def _generation(claims: Mapping[str, Any]) -> int:
    gen = claims.get("gen")
    if not isinstance(gen, int) or isinstance(gen, bool):
        raise Unauthorized("登录令牌无效")
    return gen


_ACCESS_CLAIMS = ("sub", "exp", "iat", "gen")
_SESSION_CLAIMS = ("sub", "exp", "csrf", "gen")


@lru_cache(maxsize=4096)
def _verified(key: str, token: str, required: tuple[str, ...]) -> MappingProxyType[str, Any]:
    """The claims of a token whose signature and shape check out. A pure function of its
    arguments, so a token a process has checked once is not checked again (~0.2 ms of CPU each
    signed-in request): its expiry and generation are still checked on every request, against
    the clock and the database, by the callers. A refused token raises and is not kept; the key
    is part of what is looked up, so a new key checks every token again."""
    claims = jwt.decode(
        token, key, algorithms=[ALGORITHM], options={"require": list(required), "verify_exp": False}
    )
    return MappingProxyType(claims)


def read_session(settings: Settings, token: str, now: dt.datetime) -> tuple[Bearer, str]:
    """(who, csrf secret) of a valid session cookie; Unauthorized otherwise."""
    try:
        claims = _verified(signing_key(settings), token, _SESSION_CLAIMS)
    except jwt.PyJWTError as exc:
        raise Unauthorized("登录已失效") from exc
    if (
        claims.get("typ") != "session"
        or not isinstance(claims["exp"], int)
        or claims["exp"] <= int(now.timestamp())
    ):
        raise Unauthorized("登录已过期，请重新登录")
    if not isinstance(claims["sub"], str) or not isinstance(claims["csrf"], str):
        raise Unauthorized("登录已失效")
    return Bearer(claims["sub"], _generation(claims)), claims["csrf"]


def read_token(settings: Settings, token: str, now: dt.datetime) -> Bearer:
    """Who a valid token names; Unauthorized for a bad signature, expiry or shape."""
    try:
        claims = _verified(signing_key(settings), token, _ACCESS_CLAIMS)
    except jwt.PyJWTError as exc:
        raise Unauthorized("登录令牌无效") from exc
    # Expiry is checked against the injected clock, not the wall clock.
    if not isinstance(claims.get("exp"), int) or claims["exp"] <= int(now.timestamp()):
        raise Unauthorized("登录已过期，请重新登录")
    if claims.get("typ") != "access" or not isinstance(claims.get("sub"), str):
        raise Unauthorized("登录令牌无效")
    return Bearer(str(claims["sub"]), _generation(claims))


# -- the client's address -------------------------------------------------------------------------

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def proxy_networks(setting: str) -> tuple[Network, ...]:
    """JINQIU_TRUSTED_PROXIES parsed: "10.0.0.1, 10.8.0.0/16, ::1". InvalidSetting names the
    variable and the entry."""
    networks = []
    for entry in (e.strip() for e in setting.split(",")):
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise InvalidSetting(
                f"JINQIU_TRUSTED_PROXIES 中的 {entry!r} 不是 IP 地址或网段（如 10.0.0.1 或 10.8.0.0/16）"
            ) from None
    return tuple(networks)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def client_address(request: Request, settings: Settings) -> str | None:
    """The address the throttle counts: the TCP peer, unless the peer is a trusted proxy; then
    the rightmost X-Forwarded-For hop that is not itself a trusted proxy (what a client writes
    to the left of it cannot move it)."""
    peer = request.client.host if request.client else None
    networks = proxy_networks(settings.trusted_proxies)
    if peer is None or not networks:
        return peer

    def trusted(ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None) -> bool:
        return ip is not None and any(ip in net for net in networks)

    if not trusted(_ip(peer)):
        return peer
    hops = [h for v in request.headers.getlist("x-forwarded-for") for h in v.split(",")]
    address = peer
    for hop in reversed(hops):
        ip = _ip(hop)
        if ip is None:
            return address  # garbage where an address was due: stop at the last sure hop
        address = str(ip)
        if not trusted(ip):
            return address
    return address


# -- the throttle ---------------------------------------------------------------------------------


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


def clear_failures(conn: Connection, username: str) -> int:
    """Lifts a username's lock (a success, `jinqiu user unlock`, an administrator)."""
    result = conn.execute(delete(failure_t).where(failure_t.c.key == f"user:{username.lower()}"))
    return int(result.rowcount)


def clear_address(conn: Connection, address: str) -> int:
    """Lifts an address's lock (`jinqiu user unlock --address`)."""
    result = conn.execute(delete(failure_t).where(failure_t.c.key == f"addr:{address}"))
    return int(result.rowcount)


# -- signing in (the API's token and the pages' cookie) ---------------------------------------------


def sign_in(
    engine: Engine, username: str, password: str, keys: list[str], now: dt.datetime
) -> int | None:
    """The user's token generation when `password` is theirs and they are active; None
    otherwise, the failure recorded against `keys`. TooManyAttempts before anything is checked.

    The one request that is two short transactions instead of one unit of work: the password
    check between them is Argon2, slow on purpose, and a write transaction held across it
    (SQLite's single write lock) would let anyone stall every writer just by signing in."""
    with engine.connect() as conn:
        check_throttle(conn, keys, now)
        row = conn.execute(
            select(user_t.c.password_hash, user_t.c.is_active, user_t.c.token_generation).where(
                user_t.c.username == username
            )
        ).first()
    # Unknown users cost one Argon2 verification too: timing must not tell which names exist.
    known_hash = row.password_hash if row is not None else DUMMY_HASH
    accepted = password_matches(known_hash, password) and row is not None and row.is_active
    with transaction(engine) as conn:
        if accepted:
            clear_failures(conn, username)
        else:
            record_failure(conn, keys, now)
    return int(row.token_generation) if accepted and row is not None else None
