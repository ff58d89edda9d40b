"""Which URLs outbound webhooks may call (server-side request forgery guard).

A target is refused when its host is, or resolves to, an address that is not public: loopback,
private (RFC 1918, IPv6 ULA), link-local, shared (RFC 6598), multicast, reserved, unspecified, or a cloud
metadata address (169.254.169.254, fd00:ec2::254, 100.100.100.200…). An IPv4-mapped, 6to4 or Teredo IPv6
address is judged by the IPv4 address it carries. Every address a name resolves to must pass: a name
with one private record is refused.

Names are resolved with the system resolver (``getaddrinfo``), which also reads the numeric spellings
libc accepts (``2130706433``, ``0177.0.0.1``, ``0x7f.1``) as the addresses they are, so they are judged as
such. The delivery worker resolves once per delivery and connects to the address it checked (DNS
rebinding cannot swap it afterwards); it follows no redirects.

``settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS`` (local development, tests) allows private and loopback
targets; metadata addresses are refused even then.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from engagement.errors import ValidationFailed

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean…
        "169.254.170.2",  # AWS ECS task metadata
        "169.254.169.253",  # AWS DNS
        "fd00:ec2::254",  # AWS IPv6 IMDS
        "fd00:ec2::253",
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud
    )
)

# What ``WEBHOOKS_ALLOW_PRIVATE_TARGETS`` allows: loopback and the private ranges (RFC 1918, RFC 6598,
# RFC 4193), nothing reserved or link-local.
_DEVELOPMENT_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in (
        "127.0.0.0/8",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "::1/128",
        "fc00::/7",
    )
)

Resolver = Callable[[str, int], Sequence[str]]


class WebhookTargetRefused(ValidationFailed):
    """The endpoint URL may not be called (scheme, credentials, or an address that is not public)."""

    code = "webhook_target_refused"
    status = 400


@dataclass(frozen=True)
class Target:
    """A checked target: connect to ``address`` (never resolve ``host`` again), send ``Host: host``."""

    scheme: str
    host: str
    port: int
    path: str  # with the query
    address: str


def system_resolve(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (system resolver, both families)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise WebhookTargetRefused(f"the host {host!r} does not resolve ({exc})", field="url") from exc
    return [str(info[4][0]) for info in infos]


def address_refusal(address: IPAddress, *, allow_private: bool) -> str | None:
    """Why ``address`` may not be called, or None. Pure."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id:
            return "a scoped (zone) IPv6 address"
        carried = address.ipv4_mapped or address.sixtofour or (address.teredo[1] if address.teredo else None)
        if carried is not None:
            return address_refusal(carried, allow_private=allow_private)
        nat64 = ipaddress.ip_network("64:ff9b::/96")
        if address in nat64:
            return address_refusal(
                ipaddress.IPv4Address(int(address) & 0xFFFFFFFF), allow_private=allow_private
            )
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    if address.is_multicast:
        return "a multicast address"
    if address.is_unspecified:
        return "an unspecified address"
    if address.is_global:
        return None
    if allow_private and any(address in net for net in _DEVELOPMENT_NETWORKS):
        return None
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address"
    if address.is_private:
        return "a private address"
    return "a reserved or non-public address"


def webhook_target_check(*, url: str, allow_private: bool, resolve: Resolver | None = None) -> Target:
    """Parse and check ``url``; resolve its host once and return the address to connect to.

    Raises :class:`WebhookTargetRefused` (400, field ``url``) for another scheme than http/https,
    credentials in the URL, a host that does not resolve, or any resolved address that
    :func:`address_refusal` refuses.
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise WebhookTargetRefused(f"not a valid URL: {exc}", field="url") from exc
    if parts.scheme not in {"http", "https"}:
        raise WebhookTargetRefused("the URL must start with https:// (or http://)", field="url")
    if parts.username is not None or parts.password is not None:
        raise WebhookTargetRefused("the URL may not carry credentials", field="url")
    host = parts.hostname or ""
    if not host:
        raise WebhookTargetRefused("the URL has no host", field="url")
    port = port or (443 if parts.scheme == "https" else 80)
    resolver: Resolver = resolve or system_resolve
    addresses = list(dict.fromkeys(resolver(host.rstrip("."), port)))
    if not addresses:
        raise WebhookTargetRefused(f"the host {host!r} does not resolve", field="url")
    for raw in addresses:
        try:
            address = ipaddress.ip_address(raw)
        except ValueError as exc:
            raise WebhookTargetRefused(f"the host {host!r} resolves to {raw!r}", field="url") from exc
        reason = address_refusal(address, allow_private=allow_private)
        if reason is not None:
            shown = host if host == raw else f"{host} ({raw})"
            hint = (
                ""
                if allow_private or reason == "a cloud metadata address"
                else " (for local development, set WEBHOOKS_ALLOW_PRIVATE_TARGETS=1)"
            )
            raise WebhookTargetRefused(f"the URL's host {shown} is {reason}{hint}", field="url")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return Target(scheme=parts.scheme, host=host, port=port, path=path, address=addresses[0])


def webhook_target_check_setting(*, url: str, resolve: Resolver | None = None) -> Target:
    """:func:`webhook_target_check` with ``settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS``."""
    from django.conf import settings

    return webhook_target_check(
        url=url, allow_private=bool(settings.WEBHOOKS_ALLOW_PRIVATE_TARGETS), resolve=resolve
    )
