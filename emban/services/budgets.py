"""Request budgets: how many requests one embed session or one admin API key may make.

A token bucket per caller (``EMBAN_EMBED_RATE_*`` per embed session, keyed by the token's ``jti``;
``EMBAN_API_KEY_RATE_*`` per admin API key), spent once per request where the edge resolves the
caller, so one viewer or one integration cannot take the service from the others. Over budget is
429 ``rate_limited`` with ``Retry-After``.

Not budgeted: console sessions (people at a keyboard), ingest-scoped keys and ingest itself
(``POST /v1/events``), which the plan's monthly events cap governs.
"""

from __future__ import annotations

from emban.auth.principal import Principal
from emban.errors import RateLimited
from emban.runtime import Runtime


def budget_of(rt: Runtime, principal: Principal) -> tuple[str, int, int] | None:
    """The bucket key, refill rate (per second) and burst that bound ``principal``, if any."""
    settings = rt.settings
    if principal.kind == "embed" and principal.embed is not None:
        return (
            f"embed:{principal.embed.jti}",
            settings.embed_rate_per_second,
            settings.embed_rate_burst,
        )
    if principal.kind == "api_key" and principal.scope == "admin":
        return (
            f"api_key:{principal.api_key_id}",
            settings.api_key_rate_per_second,
            settings.api_key_rate_burst,
        )
    return None


async def charge_request(rt: Runtime, principal: Principal) -> None:
    """Spend one request from the caller's budget; 429 with Retry-After when it is empty."""
    budget = budget_of(rt, principal)
    if budget is None:
        return
    key, rate, burst = budget
    wait = await rt.budgets.take(key, rate=rate, burst=burst)
    if wait is not None:
        who = "embed session" if principal.kind == "embed" else "API key"
        raise RateLimited(f"request budget of this {who} exceeded; slow down", retry_after=wait)
