"""Which webhook URLs creditstream may POST signed limit updates to.

Issue 11 found ``file://``, ``gopher://``, ``http://169.254.169.254/...`` (a cloud metadata
service) and the worker's own loopback ports accepted at registration, and signed bodies
posted to them: the dispatcher was a request-forgery tool pointed inside the network.

Rules: HTTPS only; no user info in the URL; every address the host resolves to must be
public. Loopback is allowed only under the development flag (and then plain HTTP too, to
loopback only), private networks (RFC 1918, unique local, shared CGNAT space) only under
their own flag; link-local, multicast, unspecified and reserved addresses never. A URL is
checked at registration and again before every attempt, since DNS can change; the
dispatcher's connector re-checks each address it actually connects to
(:class:`GuardedResolver`), so a name cannot pass the check and then resolve elsewhere.
Redirects are never followed (``allow_redirects=False``): a 3xx is a failed attempt.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from connectors.errors import ConnectorError
from schemas import config

LOOPBACK_ENV = config.WEBHOOKS_LOOPBACK_ENV
PRIVATE_ENV = config.WEBHOOKS_PRIVATE_ENV
MAX_URL = 2048
IP = ipaddress.IPv4Address | ipaddress.IPv6Address
# 100.64.0.0/10 (carrier-grade NAT) is neither global nor "private" to ipaddress.
_SHARED = ipaddress.ip_network("100.64.0.0/10")


class WebhookUrlError(ConnectorError, ValueError):
    """A webhook URL creditstream will not call; the message says why."""


@dataclass(frozen=True)
class UrlPolicy:
    allow_loopback: bool = False  # development only: a receiver on this machine
    allow_private: bool = False   # lenders reached over a private network

    @classmethod
    def from_env(cls) -> UrlPolicy:
        """The flags as the deployment sets them (``=1``); both off when unset."""
        settings = config.load()
        return cls(settings.webhooks_allow_loopback, settings.webhooks_allow_private)


def refused_address(ip: IP, policy: UrlPolicy) -> str | None:
    """Why ``ip`` may not be called, or None."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    if ip.is_loopback:
        return None if policy.allow_loopback else f"{ip} is a loopback address (development flag {LOOPBACK_ENV}=1)"
    if ip.is_link_local:
        return f"{ip} is a link-local address (cloud metadata services live there)"
    if ip.is_multicast or ip.is_unspecified or ip.is_reserved:
        return f"{ip} is not a unicast host address"
    if ip.is_private or ip in _SHARED or not ip.is_global:
        return None if policy.allow_private else f"{ip} is a private address ({PRIVATE_ENV}=1 allows it)"
    return None


def parse(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of a syntactically acceptable webhook URL."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL:
        raise WebhookUrlError(f"a webhook URL is 1 to {MAX_URL} characters")
    if not url.isascii() or any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise WebhookUrlError("a webhook URL has no spaces, control or non-ASCII characters (use punycode)")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise WebhookUrlError(f"not a URL: {exc}") from None
    if parts.scheme not in ("https", "http"):
        raise WebhookUrlError(f"scheme {parts.scheme or '(none)'!r}: webhooks are https:// only")
    if parts.username is not None or parts.password is not None:
        raise WebhookUrlError("a webhook URL carries no user name or password")
    if not parts.hostname:
        raise WebhookUrlError("a webhook URL needs a host")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


async def addresses(host: str, port: int) -> list[IP]:
    """Every address ``host`` stands for (an IP literal is itself)."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise WebhookUrlError(f"host {host!r} does not resolve: {exc}") from None
    # A scoped IPv6 address comes back as "fe80::1%eth0": the scope is not part of the address.
    return [ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos]


async def check(url: str, policy: UrlPolicy) -> None:
    """Raise :class:`WebhookUrlError` unless ``url`` may be called now under ``policy``."""
    scheme, host, port = parse(url)
    found = await addresses(host, port)
    if not found:
        raise WebhookUrlError(f"host {host!r} has no address")
    for ip in found:
        why = refused_address(ip, policy)
        if why:
            raise WebhookUrlError(f"{host!r} resolves to {why}")
    if scheme == "http" and not (policy.allow_loopback and all(_loopback(ip) for ip in found)):
        raise WebhookUrlError("webhooks are https:// only (plain http only to loopback, under the development flag)")


def _loopback(ip: IP) -> bool:
    mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
    return ip.is_loopback or (mapped is not None and mapped.is_loopback)


class GuardedResolver(AbstractResolver):
    """aiohttp's resolver, refusing any answer with an address the policy refuses: what the
    connector connects to is what was checked (no DNS rebinding between check and send)."""

    def __init__(self, policy: UrlPolicy) -> None:
        self.policy = policy
        self._inner = DefaultResolver()

    async def resolve(self, host: str, port: int = 0, family: Any = socket.AF_INET) -> list[ResolveResult]:
        found = await self._inner.resolve(host, port, family)
        for r in found:
            why = refused_address(ipaddress.ip_address(r["host"].split("%")[0]), self.policy)
            if why:
                raise OSError(f"webhook host {host!r} resolved to {why}")
        return found

    async def close(self) -> None:
        await self._inner.close()
