"""The SSRF guard for webhook URLs: only http/https, no credentials, never a private address.

Checked twice. When a URL is saved, a literal address in a refused range is a 400 naming the field
(a hostname cannot be judged then: it may resolve elsewhere at delivery). At delivery the host is
resolved by :class:`VettedResolver`, which drops every refused address, so the connection goes to
a vetted one or not at all — the resolved address is the one connected to, so a DNS answer that
changes between check and connect (rebinding) cannot slip through.

``allow_hosts`` (``EMBAN_WEBHOOK_ALLOW_HOSTS``) exempts named hosts or literal addresses, for
development and tests.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Ranges that are never a public endpoint. ``is_global`` covers most; the list keeps the intent
# readable and covers what ``is_global`` classifies differently across Python versions.
_REFUSED_NETWORKS = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",  # "this network", unspecified
        "10.0.0.0/8",  # RFC 1918
        "100.64.0.0/10",  # CGNAT
        "127.0.0.0/8",  # loopback
        "169.254.0.0/16",  # link-local, cloud metadata (169.254.169.254)
        "172.16.0.0/12",  # RFC 1918
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # TEST-NET-1
        "192.88.99.0/24",  # 6to4 relay anycast
        "192.168.0.0/16",  # RFC 1918
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",  # TEST-NET-2
        "203.0.113.0/24",  # TEST-NET-3
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved
        "255.255.255.255/32",  # broadcast
        "::/128",  # unspecified
        "::1/128",  # loopback
        "64:ff9b::/96",  # NAT64 (embeds an IPv4 address)
        "64:ff9b:1::/48",  # local-use NAT64
        "100::/64",  # discard
        "2001::/23",  # IETF protocol assignments (Teredo, ORCHID ...)
        "2001:db8::/32",  # documentation
        "2002::/16",  # 6to4 (embeds an IPv4 address)
        "fc00::/7",  # unique local
        "fe80::/10",  # link-local
        "fec0::/10",  # site-local (deprecated)
        "ff00::/8",  # multicast
    )
)


class UnsafeURL(ValueError):
    """The URL may not be called; the message says why."""


def refused_address(address: IPAddress) -> bool:
    """True for every address a webhook may not reach (IPv4-mapped/compatible forms included)."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return refused_address(address.ipv4_mapped)
        if address.sixtofour is not None or address.teredo is not None:
            return True
        # Deprecated IPv4-compatible form ::a.b.c.d
        if int(address) >> 32 == 0 and int(address) > 1:
            return refused_address(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    if any(address in network for network in _REFUSED_NETWORKS):
        return True
    return not address.is_global


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]").split("%", 1)[0])
    except ValueError:
        pass
    # Forms the resolver would accept as an IPv4 address: 2130706433, 0x7f.1, 017700000001 ...
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host))
    except (OSError, ValueError):
        return None


def _allowed(host: str, allow_hosts: Iterable[str]) -> bool:
    host = host.lower().rstrip(".").strip("[]")
    return any(host == a.lower().rstrip(".").strip("[]") for a in allow_hosts if a)


def check_url(raw: str, *, allow_hosts: Iterable[str] = ()) -> URL:
    """The URL if it may be saved: http/https, a host, no user info, no refused literal address.

    Raises :class:`UnsafeURL` with the reason otherwise.
    """
    if len(raw) > 2048:
        raise UnsafeURL("is longer than 2048 characters")
    try:
        url = URL(raw)
    except (ValueError, TypeError) as exc:
        raise UnsafeURL("is not a URL") from exc
    if url.scheme not in ("http", "https"):
        raise UnsafeURL("must be an http or https URL")
    if not url.host:
        raise UnsafeURL("has no host")
    if url.user is not None or url.password is not None or "@" in (url.raw_authority or ""):
        raise UnsafeURL("must not carry credentials")
    if url.fragment:
        raise UnsafeURL("must not have a fragment")
    host = url.host
    if _allowed(host, allow_hosts):
        return url
    if host.lower().rstrip(".") in ("localhost",) or host.lower().endswith(".localhost"):
        raise UnsafeURL("points to a loopback host")
    literal = _literal(host)
    if literal is not None and refused_address(literal):
        raise UnsafeURL(f"points to a refused address ({literal})")
    return url


class VettedResolver(AbstractResolver):
    """Resolves like aiohttp's default resolver, then keeps only addresses a webhook may reach.

    A host with no remaining address raises ``OSError`` (aiohttp reports it as a connection
    error, recorded on the delivery). Hosts in ``allow_hosts`` are passed through untouched.
    """

    def __init__(self, allow_hosts: Iterable[str] = ()) -> None:
        self._inner = DefaultResolver()
        self._allow = tuple(allow_hosts)

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        if _allowed(host, self._allow):
            return results
        kept = [r for r in results if not refused_address(ipaddress.ip_address(r["host"]))]
        if not kept:
            raise OSError(f"refused: {host} resolves only to private or reserved addresses")
        return kept

    async def close(self) -> None:
        await self._inner.close()


def describe(exc: BaseException) -> str:
    """One line for a delivery's ``error``."""
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:300] if text else type(exc).__name__


__all__ = ["UnsafeURL", "VettedResolver", "check_url", "describe", "refused_address"]
