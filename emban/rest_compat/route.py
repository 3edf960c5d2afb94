"""A documented ``/v1`` route: method, path, handler and what OpenAPI says about it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class RestRoute:
    method: str
    path: str
    handler: Handler
    summary: str
    status: int = 200
    body: type | None = None
    auth: str = "console"  # public | any | console
    tag: str = "misc"
    errors: tuple[int, ...] = ()
    # Mutations run in one transaction; ingest opts out (it holds no metadata rows open while
    # it waits for the group commit).
    transaction: bool | None = None

    @property
    def error_statuses(self) -> tuple[int, ...]:
        """The documented error statuses: every authenticated route can also answer 429, as it
        spends the caller's request budget (services/budgets.py)."""
        budget = () if self.auth == "public" else (429,)
        return tuple(sorted({*self.errors, *budget}))

    @property
    def transactional(self) -> bool:
        return self.method != "GET" if self.transaction is None else self.transaction
