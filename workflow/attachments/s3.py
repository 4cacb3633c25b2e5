"""Attachments' bytes in an S3-compatible object store (JINQIU_ATTACHMENTS_STORE=s3), addressed
by their SHA-256 as on the filesystem (store.py): the key is `attachments/<2 hex>/<sha256>`.

Hostile by default: the endpoint must be https (http only with JINQIU_S3_ALLOW_HTTP, for a store
on a private network or a test emulator), carry no credentials, query or fragment; the bucket
name is S3's; the credentials are the two JINQIU_S3_* variables, never a default, and never
boto3's own search (config files, instance metadata). Timeouts and retries are bounded, a read
takes at most MAX_BYTES + 1 bytes, and what is read must match its hash. Any failure of the
store is `attachments_store_unavailable` (503), the request rolled back."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from jinqiu.workflow.attachments.content import MAX_BYTES
from jinqiu.workflow.config import Settings
from jinqiu.workflow.errors import DomainError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_HEX = frozenset("0123456789abcdef")
# S3's bucket names: 3–63 lowercase letters, digits, dots and hyphens, a letter or digit at each end.
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_REGION = re.compile(r"^[a-z0-9-]{1,32}$")
PREFIX = "attachments/"


class StoreMisconfigured(DomainError):
    """The S3 settings are missing or unsafe: named, with the reason."""

    code = "attachments_not_configured"
    status = 503


class StoreUnavailable(DomainError):
    code = "attachments_store_unavailable"
    status = 503


@dataclass(frozen=True)
class S3Settings:
    endpoint_url: str
    bucket: str
    region: str
    access_key_id: str
    secret_access_key: str = field(repr=False)

    @classmethod
    def of(cls, settings: Settings) -> S3Settings:
        """The settings checked, every problem named by its variable; nothing is contacted."""
        secret = settings.s3_secret_access_key
        problems = []
        endpoint = settings.s3_endpoint_url
        if not endpoint:
            problems.append("JINQIU_S3_ENDPOINT_URL 未设置")
        else:
            problems += _endpoint_problems(endpoint, allow_http=settings.s3_allow_http)
        if not settings.s3_bucket or not _BUCKET.match(settings.s3_bucket):
            problems.append("JINQIU_S3_BUCKET 须为 3–63 位小写字母、数字、点或连字符")
        if not _REGION.match(settings.s3_region):
            problems.append("JINQIU_S3_REGION 无效")
        if not settings.s3_access_key_id:
            problems.append("JINQIU_S3_ACCESS_KEY_ID 未设置")
        if secret is None or not secret.get_secret_value():
            problems.append("JINQIU_S3_SECRET_ACCESS_KEY 未设置")
        if problems:
            raise StoreMisconfigured("附件对象存储配置有误：" + "；".join(problems), problems)
        assert endpoint and settings.s3_bucket and settings.s3_access_key_id and secret
        return cls(
            endpoint_url=endpoint.rstrip("/"),
            bucket=settings.s3_bucket,
            region=settings.s3_region,
            access_key_id=settings.s3_access_key_id,
            secret_access_key=secret.get_secret_value(),
        )


def _endpoint_problems(url: str, *, allow_http: bool) -> list[str]:
    if len(url) > 300:
        return ["JINQIU_S3_ENDPOINT_URL 过长"]
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a port that is not a number or out of range
    except ValueError:
        return ["JINQIU_S3_ENDPOINT_URL 不是有效的网址"]
    schemes = ("https", "http") if allow_http else ("https",)
    problems = []
    if parts.scheme not in schemes:
        problems.append(
            "JINQIU_S3_ENDPOINT_URL 须以 https:// 开头"
            + ("" if allow_http else "（http 仅在 JINQIU_S3_ALLOW_HTTP=true 时允许）")
        )
    if not parts.hostname:
        problems.append("JINQIU_S3_ENDPOINT_URL 缺少主机名")
    if parts.username is not None or parts.password is not None:
        problems.append("JINQIU_S3_ENDPOINT_URL 不能包含用户名或密码（凭据另行设置）")
    if parts.query or parts.fragment or parts.path not in ("", "/"):
        problems.append("JINQIU_S3_ENDPOINT_URL 只能是协议、主机和端口")
    if port == 0:
        problems.append("JINQIU_S3_ENDPOINT_URL 的端口无效")
    return problems


@lru_cache(maxsize=4)
def _client(config: S3Settings) -> S3Client:
    """One client per configuration (they are thread-safe, and dear to build)."""
    session = boto3.session.Session()  # a session of its own: no shared default state
    return session.client(
        "s3",
        endpoint_url=config.endpoint_url,
        region_name=config.region,
        aws_access_key_id=config.access_key_id,
        aws_secret_access_key=config.secret_access_key,
        config=Config(
            connect_timeout=5,
            read_timeout=30,
            retries={"max_attempts": 3, "mode": "standard"},
            signature_version="s3v4",
            s3={"addressing_style": "path"},  # S3-compatible servers rarely route by host name
        ),
    )


@dataclass(frozen=True)
class S3Store:
    config: S3Settings

    def put(self, content: bytes) -> str:
        digest = hashlib.sha256(content).hexdigest()
        key = self._key(digest)
        client = _client(self.config)
        try:
            try:
                client.head_object(Bucket=self.config.bucket, Key=key)
                return digest  # the same bytes are there already
            except ClientError as exc:
                if _status(exc) != 404:
                    raise
            client.put_object(
                Bucket=self.config.bucket,
                Key=key,
                Body=content,
                ContentLength=len(content),
                ContentType="application/octet-stream",
            )
        except (BotoCoreError, ClientError) as exc:
            raise _unavailable(exc, "保存") from exc
        return digest

    def get(self, digest: str) -> bytes:
        key = self._key(digest)
        try:
            answer = _client(self.config).get_object(Bucket=self.config.bucket, Key=key)
            with answer["Body"] as body:
                content = body.read(MAX_BYTES + 1)
        except (BotoCoreError, ClientError) as exc:
            raise _unavailable(exc, "读取") from exc
        if len(content) > MAX_BYTES or hashlib.sha256(content).hexdigest() != digest:
            raise OSError(f"attachment {digest} does not match its hash")  # never serve it
        return content

    def _key(self, digest: str) -> str:
        if len(digest) != 64 or not set(digest) <= _HEX:
            raise ValueError("not a SHA-256 hex digest")
        return f"{PREFIX}{digest[:2]}/{digest}"


def _status(exc: ClientError) -> int | None:
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return int(status) if status is not None else None


def _unavailable(exc: BotoCoreError | ClientError, doing: str) -> StoreUnavailable:
    """The store's failure, named without its address or credentials (they stay in the log)."""
    if isinstance(exc, ClientError):
        reason = str(exc.response.get("Error", {}).get("Code", "error"))[:64]
    else:
        reason = type(exc).__name__
    return StoreUnavailable(
        f"附件对象存储暂不可用，未能{doing}文件（{reason}）", {"reason": reason}
    )
