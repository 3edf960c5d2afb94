"""The ``@route`` declaration of a ``/v1`` handler: method, path, who may call it, what it answers.

A declaration sits on its handler and registers it; ``routes.ROUTES`` collects them, the app
mounts them and ``schema/openapi.json`` is generated from them. The declaration is also what
the request path enforces before the handler runs:

- ``auth="console"`` (the default) with ``service=``: the service the handler calls, declared
  ``@requires(role)`` (services/access.py). Its role is the route's role: a console session or
  admin key with at least that role passes, anyone else gets 403 (ingest keys included) before
  the body is read, and ``x-emban-role`` in ``schema/openapi.json`` says the same. The role is
  written once, on the service, which enforces it again for the GraphQL edge and jobs.
- ``auth="public"``: no credentials read (register, login, accept-invite, plans, demo embed
  URL: there is no caller yet).
- ``auth="any"``: any API key or session (401 without); the rest is not a member role, so it
  stays with the service: ``/v1/auth/me`` answers ingest keys too and refuses embed tokens
  (``accounts.whoami``), ``/v1/events`` needs an admin or ingest key's scope rather than a role
  (``events.check_can_ingest``, called before the body is read).
- the handler returns an instance of ``response`` (or ``None`` for a 204), which is encoded
  through that type: the JSON sent is the JSON the schema describes.

Rules beyond the least role stay in the service body and answer from there: logging out needs a
console session, not a key (``accounts.logout``, 403 not_a_session); only an owner removes an
owner and the last owner stays (``team.remove_member``). tests/rest_compat/test_rest_matrix.py
holds the declarations to an independent role x route matrix, and checks that each handler calls
the service it names.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar, overload

import msgspec
from aiohttp import web

from emban.auth.cross_site import SAFE_METHODS, refuse_cross_site
from emban.auth.principal import Principal, Role
from emban.rest_compat.http import actor
from emban.runtime import RUNTIME_KEY
from emban.services.access import RoleGated
from emban.services.boundary import transaction

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Auth = Literal["public", "any", "console"]
Service = RoleGated[..., Any]
R = TypeVar("R")

_CALLER: web.RequestKey[Principal] = web.RequestKey("emban.route_caller")


@dataclass(frozen=True)
class Reply(Generic[R]):
    """A handler's answer when the response needs more than its body.

    ``build`` is called off the event loop when ``off_loop`` (large analytics answers);
    ``finish`` adjusts the response before it is sent (session cookies).
    """

    build: Callable[[], R]
    off_loop: bool = False
    finish: Callable[[web.Response], None] | None = None


TypedHandler = Callable[[web.Request], Awaitable[Any]]


@dataclass(frozen=True)
class RestRoute:
    method: str
    path: str
    handler: TypedHandler
    summary: str
    status: int = 200
    body: type | None = None
    response: type | None = None
    auth: Auth = "console"
    service: Service | None = None  # console routes: the @requires service the handler calls
    tag: str = "misc"
    errors: tuple[int, ...] = ()
    # Mutations run in one transaction; ingest opts out (it holds no metadata rows open while
    # it waits for the group commit).
    transaction: bool | None = None
    # Ingest is governed by the plan's monthly events cap, not by the request budget.
    budgeted: bool = True

    @property
    def name(self) -> str:
        return self.handler.__name__

    @property
    def role(self) -> Role | None:
        """The least role of a console route: its service's declaration."""
        return self.service.required_role if self.service is not None else None

    @property
    def error_statuses(self) -> tuple[int, ...]:
        """The documented error statuses: every authenticated route can also answer 429, as it
        spends the caller's request budget (services/budgets.py), and 401/403 as declared; every
        state-changing route 403 ``cross_site_request`` (auth/cross_site.py); every route 503
        ``unavailable`` when a dependency it needs is down (emban/dependencies.py)."""
        declared: set[int] = {*self.errors, 503}
        if self.auth != "public":
            declared.update((401, 429))
        if self.auth == "console" or self.method not in SAFE_METHODS:
            declared.add(403)
        return tuple(sorted(declared))

    @property
    def transactional(self) -> bool:
        return self.method != "GET" if self.transaction is None else self.transaction

    def aiohttp_handler(self) -> Handler:
        """The request path: refuse a cross-site state change (:mod:`emban.auth.cross_site`),
        enforce the declared auth, run the handler (in a transaction when
        the route is transactional), encode its answer through ``response``."""

        async def run(request: web.Request) -> web.StreamResponse:
            if self.method not in SAFE_METHODS:
                refuse_cross_site(request, request.app[RUNTIME_KEY].settings)
            if self.auth != "public":
                principal = await actor(request, budgeted=self.budgeted)
                if self.role is not None:
                    principal.require_role(self.role)
                request[_CALLER] = principal
            if self.transactional:
                async with transaction():
                    answer = await self.handler(request)
            else:
                answer = await self.handler(request)
            return await self._encode(answer)

        run.__name__ = self.name
        return run

    async def _encode(self, answer: Any) -> web.Response:
        reply = answer if isinstance(answer, Reply) else None
        if self.response is None:
            value = reply.build() if reply is not None else answer
            if value is not None:
                raise TypeError(f"{self.name} answers {self.status} but returned {value!r}")
            response = web.Response(status=self.status)
        elif reply is not None and reply.off_loop:
            body = await asyncio.to_thread(lambda: _encode_checked(self.response, reply.build()))
            response = self._json(body)
        else:
            value = reply.build() if reply is not None else answer
            response = self._json(_encode_checked(self.response, value))
        if reply is not None and reply.finish is not None:
            reply.finish(response)
        return response

    def _json(self, body: bytes) -> web.Response:
        return web.Response(body=body, status=self.status, content_type="application/json")


def _encode_checked(response: type | None, value: Any) -> bytes:
    if response is not None and not isinstance(value, response):
        raise TypeError(f"expected a {response.__name__}, got {type(value).__name__}")
    return msgspec.json.encode(value)


_REGISTERED: list[RestRoute] = []


def registered() -> tuple[RestRoute, ...]:
    return tuple(_REGISTERED)


def caller(request: web.Request) -> Principal:
    """The principal the route's declaration authenticated (only on non-public routes)."""
    return request[_CALLER]


@overload
def route(
    method: str,
    path: str,
    *,
    response: type[R],
    status: int = 200,
    body: type | None = None,
    auth: Auth = "console",
    service: Service | None = None,
    tag: str,
    errors: tuple[int, ...] = (),
    transaction: bool | None = None,
    budgeted: bool = True,
) -> Callable[
    [Callable[[web.Request], Awaitable[R | Reply[R]]]],
    Callable[[web.Request], Awaitable[R | Reply[R]]],
]: ...


@overload
def route(
    method: str,
    path: str,
    *,
    response: None,
    status: int = 204,
    body: type | None = None,
    auth: Auth = "console",
    service: Service | None = None,
    tag: str,
    errors: tuple[int, ...] = (),
    transaction: bool | None = None,
    budgeted: bool = True,
) -> Callable[
    [Callable[[web.Request], Awaitable[Reply[None] | None]]],
    Callable[[web.Request], Awaitable[Reply[None] | None]],
]: ...


def route(
    method: str,
    path: str,
    *,
    response: type | None,
    status: int | None = None,
    body: type | None = None,
    auth: Auth = "console",
    service: Service | None = None,
    tag: str,
    errors: tuple[int, ...] = (),
    transaction: bool | None = None,
    budgeted: bool = True,
) -> Callable[[Any], Any]:
    """Declare and register a ``/v1`` handler; its docstring's first paragraph is the summary.

    A console route names the ``@requires`` service its handler calls (``service=``): the role
    enforced before the handler and documented in the schema is that service's."""
    if (auth == "console") != (service is not None):
        raise ValueError(f"{method} {path}: console routes name their service, others do not")
    if service is not None and getattr(service, "required_role", None) is None:
        raise ValueError(f"{method} {path}: {service!r} declares no role (@requires)")

    def register(handler: TypedHandler) -> TypedHandler:
        summary = " ".join((handler.__doc__ or "").strip().split("\n\n")[0].split())
        if not summary:
            raise ValueError(f"{method} {path}: the handler needs a docstring (the summary)")
        _REGISTERED.append(
            RestRoute(
                method=method,
                path=path,
                handler=handler,
                summary=summary,
                status=status if status is not None else (200 if response else 204),
                body=body,
                response=response,
                auth=auth,
                service=service,
                tag=tag,
                errors=errors,
                transaction=transaction,
                budgeted=budgeted,
            )
        )
        return handler

    return register
