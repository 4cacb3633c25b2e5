"""Settings from the environment (`JINQIU_` prefix), in one class."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from jinqiu.notifications.outbound import WebhookPolicy, parse_host_list
from jinqiu.workflow.errors import InvalidDatabaseUrl

DEFAULT_DATABASE_URL = "sqlite:///./jinqiu.db"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="JINQIU_", extra="ignore")

    database_url: str = DEFAULT_DATABASE_URL
    # No usable default: `api.security.resolve_secret_key` demands one of at least 32 bytes, or
    # generates one beside a SQLite file. A known default would let anyone sign as an admin.
    secret_key: str | None = None
    token_minutes: int = 480
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_from: str = "jinqiu@localhost"
    # SMTP connections a delivering process keeps busy side by side (one thread and one batch
    # each): with one, every message waits for the server's answers before the next is written.
    delivery_connections: int = Field(default=2, ge=1, le=16)
    base_url: str = "http://127.0.0.1:8000"
    sqlite_synchronous: str = "NORMAL"  # WAL + NORMAL: durable across process crashes
    run_scheduler: bool = False  # `jinqiu serve` turns it on: a sweep every minute, one at start
    sweep_interval_seconds: int = 60
    # A unit's code: this process sweeps only the campaigns organised by that unit or below it
    # (one sweeper per group of provinces, docs/SCALING.md). Unset: every campaign. Delivery is
    # not split: the outbox's leases share it among every process.
    sweep_within: str | None = Field(default=None, min_length=1, max_length=64)
    # Reminders the sweep writes per transaction; unset: 2,000 on PostgreSQL, 500 on SQLite
    # (workflow.deadlines.sweep.CHUNK).
    sweep_chunk: int | None = Field(default=None, ge=50, le=10_000)
    # Comma-separated IPs or CIDRs of the reverse proxies whose X-Forwarded-For is believed.
    trusted_proxies: str = ""
    webhook_allow_http: bool = False  # webhooks are https:// only unless the operator says so
    # Comma-separated host names (qyapi.weixin.qq.com, oapi.dingtalk.com, open.feishu.cn): when
    # set, the only hosts a webhook may point to.
    webhook_allowed_hosts: str = ""
    # Where uploaded documents are kept (by content hash). Default: beside a SQLite database
    # file; with PostgreSQL it must be set (a directory every `serve` host shares).
    attachments_dir: str | None = None
    # "s3": an S3-compatible object store instead (workflow/attachments/s3.py): its endpoint
    # (https, or http with s3_allow_http), bucket and region; the credentials come from the
    # environment (JINQIU_S3_ACCESS_KEY_ID, JINQIU_S3_SECRET_ACCESS_KEY) and have no default.
    attachments_store: Literal["file", "s3"] = "file"
    s3_endpoint_url: str | None = None
    s3_bucket: str | None = None
    s3_region: str = "us-east-1"
    s3_access_key_id: str | None = None
    s3_secret_access_key: SecretStr | None = None
    s3_allow_http: bool = False

    def webhook_policy(self) -> WebhookPolicy:
        return WebhookPolicy(
            allow_http=self.webhook_allow_http,
            allowed_hosts=parse_host_list(self.webhook_allowed_hosts),
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


@dataclass(frozen=True)
class DatabaseChoice:
    url: str  # a SQLite file's path made absolute: what is printed is where it is
    source: str  # "--database", "JINQIU_DATABASE_URL" or "default"


def resolve_database(explicit: str | None = None) -> DatabaseChoice:
    """The one place the database is chosen: `--database`, else JINQIU_DATABASE_URL, else
    ./jinqiu.db in the current folder. A relative SQLite path becomes absolute here, once, so
    `jinqiu --version` and `jinqiu doctor` print the file every command then opens."""
    if explicit:
        url, source = explicit, "--database"
    elif os.environ.get("JINQIU_DATABASE_URL"):
        url, source = get_settings().database_url, "JINQIU_DATABASE_URL"
    else:
        url, source = get_settings().database_url, "default"
    return DatabaseChoice(_absolute_sqlite(readable_url(url)), source)


def normalise_url(url: str) -> str:
    """Accept `postgresql://` and `postgres://` and use psycopg 3 for them."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def readable_url(url: str) -> str:
    """`url` if SQLAlchemy can read it (as `normalise_url` makes it) and knows its database; else
    InvalidDatabaseUrl saying which part is wrong (SQLAlchemy's own message may quote the URL,
    password and all)."""
    try:
        parsed = make_url(normalise_url(url))  # ValueError for a port that is not a number
    except (ArgumentError, ValueError):
        raise InvalidDatabaseUrl(
            "无法解析，应形如 postgresql://用户@主机:端口/数据库 或 sqlite:///文件路径"
        ) from None
    try:
        parsed.get_dialect()
    except ArgumentError:  # NoSuchModuleError: no such database or driver
        raise InvalidDatabaseUrl("不支持的数据库类型（可用 postgresql 或 sqlite）") from None
    return url


def _absolute_sqlite(url: str) -> str:
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        return url
    path, _, query = url[len(prefix) :].partition("?")
    if path in ("", ":memory:") or path.startswith("file:") or Path(path).is_absolute():
        return url
    absolute = Path(path).absolute()
    return f"{prefix}{absolute}" + (f"?{query}" if query else "")
