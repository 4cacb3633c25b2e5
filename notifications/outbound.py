"""Where a webhook may point: the one check for URLs that the service will POST to.

A unit's `webhook_url` is typed in by a unit administrator, and the sweep later POSTs to it from
inside the unions' network: without a check that is a request forgery (SSRF) to the cloud
metadata service, to loopback or to any intranet host. Only https:// is accepted (http:// when
the operator allows it), without userinfo, to a public address; an optional allow-list of host
names (the WeCom, DingTalk and Feishu robot hosts) is then the only list accepted.

The check runs twice: where the URL comes in (so an administrator hears about it at once) and
when a message is sent, after DNS resolution, every resolved address checked and the
connection made to a checked address (channels.WebhookSender), so a name that resolves
differently later (DNS rebinding) cannot swap the destination.

Settings come in as arguments (WebhookPolicy): this package reads no configuration itself.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

Resolver = Callable[[str, int], list[str]]
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f]")


@dataclass(frozen=True)
class WebhookPolicy:
    allow_http: bool = False  # JINQIU_WEBHOOK_ALLOW_HTTP: plain http:// to public addresses
    allowed_hosts: frozenset[str] = frozenset()  # JINQIU_WEBHOOK_ALLOWED_HOSTS; empty: any host
    allow_private: bool = False  # tests only: a receiver on loopback; no operator setting


class WebhookRefused(Exception):
    """The URL may not be used; `code` is stable, `message` is for people (Chinese)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class WebhookTarget:
    scheme: str  # "https" or "http"
    host: str  # ASCII (IDNA) host name or IP literal, without brackets
    port: int
    path: str  # path and query: what the request line carries

    @property
    def is_ip_literal(self) -> bool:
        return _ip(self.host) is not None


def parse_host_list(text: str) -> frozenset[str]:
    """ "qyapi.weixin.qq.com, oapi.dingtalk.com open.feishu.cn" → the set of lower-case names."""
    return frozenset(h.strip().rstrip(".").lower() for h in re.split(r"[,\s]+", text) if h.strip())


def resolve_host(host: str, port: int) -> list[str]:
    """Every address the system resolver gives for `host` (raises OSError when it cannot)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _ip(text: str) -> IpAddress | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def _public(ip: IpAddress) -> bool:
    return ip.is_global and not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
    )


def check_address(address: str) -> None:
    """Refuses any address that is not a public unicast one, looking inside IPv4-mapped and
    6to4 IPv6 addresses too (::ffff:127.0.0.1 is loopback)."""
    ip = _ip(address)
    candidates: list[IpAddress] = [] if ip is None else [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        candidates += [v4 for v4 in (ip.ipv4_mapped, ip.sixtofour) if v4 is not None]
    if not candidates or not all(_public(c) for c in candidates):
        raise WebhookRefused(
            "webhook_address_not_allowed",
            f"webhook 地址指向内网、本机或保留地址（{address}），不允许",
        )


def parse_target(url: str, policy: WebhookPolicy) -> WebhookTarget:
    """The URL's scheme, host, port and path, or WebhookRefused. No network access."""
    if _CONTROL_OR_SPACE.search(url):
        raise WebhookRefused("webhook_url_invalid", "webhook 地址中不能有空白或控制字符")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise WebhookRefused("webhook_url_invalid", "webhook 地址格式不正确") from None
    scheme = parts.scheme.lower()
    if scheme != "https" and not (scheme == "http" and policy.allow_http):
        allowed = "https:// 或 http://" if policy.allow_http else "https://"
        raise WebhookRefused("webhook_scheme_not_allowed", f"webhook 地址须以 {allowed} 开头")
    if "@" in parts.netloc:
        raise WebhookRefused("webhook_userinfo_not_allowed", "webhook 地址中不能含用户名或密码")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise WebhookRefused("webhook_host_missing", "webhook 地址缺少主机名")
    try:  # 中文域名 → punycode: the form DNS, the Host header and TLS use
        host = host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise WebhookRefused("webhook_url_invalid", "webhook 主机名格式不正确") from None
    if policy.allowed_hosts and host not in policy.allowed_hosts:
        raise WebhookRefused(
            "webhook_host_not_allowed",
            f"webhook 主机 {host} 不在允许的列表中（{'、'.join(sorted(policy.allowed_hosts))}）",
        )
    if not policy.allow_private:
        if host == "localhost" or host.endswith(".localhost"):  # RFC 6761: always loopback
            raise WebhookRefused(
                "webhook_address_not_allowed", f"webhook 地址指向本机（{host}），不允许"
            )
        if _ip(host) is not None:
            check_address(host)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return WebhookTarget(scheme, host, port or (443 if scheme == "https" else 80), path)


def checked_addresses(target: WebhookTarget, policy: WebhookPolicy, resolve: Resolver) -> list[str]:
    """The addresses to connect to, every one checked (one private address refuses the name).
    Raises OSError when the name does not resolve: a temporary failure, not a refusal."""
    addresses = [target.host] if target.is_ip_literal else resolve(target.host, target.port)
    if not addresses:
        raise OSError(f"{target.host} resolves to no address")
    if not policy.allow_private:
        for address in addresses:
            check_address(address)
    return addresses


def check_webhook_url(url: str, policy: WebhookPolicy, resolve: Resolver = resolve_host) -> None:
    """The check where a URL comes in. A name that does not resolve now is accepted (DNS may
    be out of reach from where the administrator works); the send-time check still applies."""
    target = parse_target(url, policy)
    try:
        checked_addresses(target, policy, resolve)
    except (OSError, UnicodeError):
        return
