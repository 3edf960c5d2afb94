"""Typed GraphQL context: the runtime, the request, and the caller resolved once per request."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, ParamSpec, TypeVar

from aiohttp import web
from strawberry.types import Info

from emban.auth.client_address import request_client_address
from emban.auth.principal import Principal
from emban.errors import EmbanError, Unauthenticated
from emban.runtime import Runtime
from emban.services.boundary import transaction

P = ParamSpec("P")
R = TypeVar("R")


@dataclass
class EmbanContext:
    runtime: Runtime
    request: web.Request
    response: web.StreamResponse | None
    principal: Principal | None
    auth_error: EmbanError | None = None
    # Set by the graphql-transport-ws handler from connection_init's payload.
    connection_params: dict[str, Any] | None = None

    @property
    def ip(self) -> str | None:
        return request_client_address(self.request, self.runtime.settings.trusted_proxies)

    def actor(self) -> Principal:
        """The caller, or the authentication error found while building the context."""
        if self.auth_error is not None:
            raise self.auth_error
        if self.principal is None:
            raise Unauthenticated("authentication required", code="unauthenticated")
        return self.principal


GqlInfo = Info[EmbanContext, None]


def transactional(resolver: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Run a mutation resolver in one transaction: an error rolls back everything it wrote."""

    @wraps(resolver)
    async def run(*args: P.args, **kwargs: P.kwargs) -> R:
        async with transaction():
            return await resolver(*args, **kwargs)

    return run


def ctx(info: Any) -> EmbanContext:
    context: EmbanContext = info.context
    return context
