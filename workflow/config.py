"""Settings from the environment (`JINQIU_` prefix), in one class."""

from __future__ import annotations

from functools import lru_cache

from pydantic_settings import BaseSettings, SettingsConfigDict

from jinqiu.notifications.outbound import WebhookPolicy, parse_host_list


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="JINQIU_", extra="ignore")

    database_url: str = "sqlite:///./jinqiu.db"
    # No usable default: `api.security.resolve_secret_key` demands one of at least 32 bytes, or
    # generates one beside a SQLite file. A known default would let anyone sign as an admin.
    secret_key: str | None = None
    token_minutes: int = 480
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_from: str = "jinqiu@localhost"
    base_url: str = "http://127.0.0.1:8000"
    sqlite_synchronous: str = "NORMAL"  # WAL + NORMAL: durable across process crashes
    run_scheduler: bool = False  # `jinqiu serve` turns it on: a sweep every minute, one at start
    sweep_interval_seconds: int = 60
    # Comma-separated IPs or CIDRs of the reverse proxies whose X-Forwarded-For is believed.
    trusted_proxies: str = ""
    webhook_allow_http: bool = False  # webhooks are https:// only unless the operator says so
    # Comma-separated host names (qyapi.weixin.qq.com, oapi.dingtalk.com, open.feishu.cn): when
    # set, the only hosts a webhook may point to.
    webhook_allowed_hosts: str = ""
    # Where uploaded documents are kept (by content hash). Default: beside a SQLite database
    # file; with PostgreSQL it must be set (a directory every `serve` host shares).
    attachments_dir: str | None = None

    def webhook_policy(self) -> WebhookPolicy:
        return WebhookPolicy(
            allow_http=self.webhook_allow_http,
            allowed_hosts=parse_host_list(self.webhook_allowed_hosts),
        )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
