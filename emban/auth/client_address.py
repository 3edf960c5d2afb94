"""The caller's source address, the key of every per-IP limit.

Behind a load balancer every request arrives from the balancer, so per-IP limits would become one
global limit (and a stranger could exhaust it for everyone). ``X-Forwarded-For`` is believed only
when the socket peer is a configured trusted proxy (``EMBAN_TRUSTED_PROXIES``); the address is then
the right-most entry that is not itself a trusted proxy. Entries further left are written by the
client and are never trusted, so a client cannot choose its own rate-limit key.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from aiohttp import web

from emban.settings import IPNetwork


def _trusted(address: str, proxies: Sequence[IPNetwork]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in proxies)


def trusted_peer(remote: str | None, proxies: Sequence[IPNetwork]) -> bool:
    """Whether the socket peer is a configured trusted proxy (whose forwarded headers count)."""
    return remote is not None and bool(proxies) and _trusted(remote, proxies)


def client_address(
    remote: str | None, forwarded_for: str | None, proxies: Sequence[IPNetwork]
) -> str | None:
    """``remote`` unless it is a trusted proxy; then walk ``X-Forwarded-For`` from the right."""
    if remote is None or not proxies or not _trusted(remote, proxies):
        return remote
    hops = [hop.strip() for hop in (forwarded_for or "").split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, proxies):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return remote  # a malformed hop: fall back to the proxy, never to client text
    return hops[0] if hops else remote


def request_client_address(request: web.Request, proxies: Sequence[IPNetwork]) -> str | None:
    """The source address of an aiohttp request (both edges use this one function)."""
    return client_address(request.remote, request.headers.get("X-Forwarded-For"), proxies)
