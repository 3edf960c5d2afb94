"""The tarpit: a refusal of the anonymous attempt limits is answered late.

Measured: 4 anonymous clients calling ``POST /v1/auth/register`` in a tight loop were refused
(429) ~2,900 times a second, and answering that many refusals took most of a core of the event
loop, so another org's requests got 2-3x slower. A refusal by the login, sign-up and
invite-acceptance limits (:class:`emban.errors.TooManyAttempts`) now waits
``min(Retry-After, EMBAN_AUTH_REFUSAL_DELAY)`` seconds before it is sent: a sleeping coroutine
costs no CPU, and a client that waits for its answers makes about one attempt a second.

A client that does not wait for its answers (many connections at once) must not park unbounded
coroutines: at most :data:`MAX_PENDING_PER_ADDRESS` refusals wait per client address, and one
beyond them is answered at once with ``Connection: close``, so each further attempt costs that
client a new connection. The per-caller request budgets of API keys and embed sessions are not
tarpitted: their callers are authenticated and a delay there would hold a customer's requests.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web

from emban.auth.client_address import request_client_address
from emban.settings import Settings

MAX_PENDING_PER_ADDRESS = 32

Sleep = Callable[[float], Awaitable[None]]


class RefusalTarpit:
    """Delayed refusals waiting in this process, counted per client address."""

    def __init__(
        self, *, max_pending: int = MAX_PENDING_PER_ADDRESS, sleep: Sleep = asyncio.sleep
    ) -> None:
        self.max_pending = max_pending
        self._sleep = sleep
        self._pending: dict[str | None, int] = {}

    def pending(self, address: str | None) -> int:
        """How many refusals to ``address`` are waiting now."""
        return self._pending.get(address, 0)

    async def hold(self, address: str | None, seconds: float) -> bool:
        """Wait ``seconds`` before a refusal to ``address`` is sent and return True; return
        False at once when ``address`` already has ``max_pending`` refusals waiting (the caller
        then closes the connection after the answer). ``seconds <= 0`` returns True at once."""
        if seconds <= 0:
            return True
        waiting = self._pending.get(address, 0)
        if waiting >= self.max_pending:
            return False
        self._pending[address] = waiting + 1
        try:
            await self._sleep(seconds)
        finally:
            left = self._pending[address] - 1
            if left:
                self._pending[address] = left
            else:
                del self._pending[address]
        return True


async def hold_refusal(
    tarpit: RefusalTarpit, settings: Settings, request: web.Request, retry_after: int
) -> bool:
    """Delay the refusal of ``request`` (an attempt limit's 429) by
    ``min(retry_after, EMBAN_AUTH_REFUSAL_DELAY)``, counted against the client address the limits
    count (:func:`request_client_address`). False: too many are waiting for that address, answer
    now and close the connection (``response.force_close()``)."""
    address = request_client_address(request, settings.trusted_proxies)
    return await tarpit.hold(address, min(float(retry_after), settings.auth_refusal_delay))
