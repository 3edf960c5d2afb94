"""``@requires(role)``: the one place a service's least member role is written.

A service coroutine declared ``@requires("admin")`` checks ``actor.require_role("admin")`` before
its body runs, on every edge that calls it (REST handlers, GraphQL resolvers, jobs), and carries
the role as ``required_role``. A REST route names the service it calls
(``@route(..., service=api_keys.create_api_key)``) and takes its role from there: the 403 before
the body is read and the ``x-emban-role`` of ``schema/openapi.json`` come from this declaration,
so no route keeps a second copy of it.

The decorator carries the least role only. Rules that depend on more than the caller's role stay
in the service body after it: only an owner removes an owner (``team.remove_member``), logging
out needs a console session rather than a key (``accounts.logout``).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, Protocol, TypeVar, cast

from emban.auth.principal import Principal, Role

P = ParamSpec("P")
R = TypeVar("R")
R_co = TypeVar("R_co", covariant=True)


class RoleGated(Protocol[P, R_co]):
    """A service coroutine declared with :func:`requires`."""

    required_role: Role
    __name__: str
    __qualname__: str
    __module__: str

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Coroutine[Any, Any, R_co]: ...


def requires(role: Role) -> Callable[[Callable[P, Coroutine[Any, Any, R]]], RoleGated[P, R]]:
    """Declare the least role a service needs; it takes the caller as the keyword ``actor``."""

    def declare(service: Callable[P, Coroutine[Any, Any, R]]) -> RoleGated[P, R]:
        if not inspect.iscoroutinefunction(service):
            raise TypeError(f"@requires({role!r}) declares coroutines; {service!r} is not one")
        actor = inspect.signature(service).parameters.get("actor")
        if actor is None or actor.kind is not inspect.Parameter.KEYWORD_ONLY:
            raise TypeError(f"{service.__qualname__} must take the caller as keyword-only actor=")

        @functools.wraps(service)
        async def gated(*args: P.args, **kwargs: P.kwargs) -> R:
            caller = kwargs.get("actor")
            if not isinstance(caller, Principal):
                raise TypeError(f"{service.__qualname__} needs actor=<Principal>, got {caller!r}")
            caller.require_role(role)
            return await service(*args, **kwargs)

        declared = cast(RoleGated[P, R], gated)
        declared.required_role = role
        return declared

    return declare
