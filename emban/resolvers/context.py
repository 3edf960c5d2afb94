"""Typed GraphQL context: the runtime, the request, and the caller resolved once per request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web
from strawberry.extensions.field_extension import AsyncExtensionResolver, FieldExtension
from strawberry.types import Info
from strawberry.types.base import get_object_definition

from emban.auth.client_address import request_client_address
from emban.auth.cross_site import refuse_cross_site
from emban.auth.principal import Principal
from emban.caller import Caller
from emban.errors import EmbanError
from emban.runtime import Runtime
from emban.services.boundary import transaction

T = TypeVar("T")


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
        """The caller (``caller_middleware``'s, or a live socket's token), else the credentials'
        error, else 401 ``unauthenticated``."""
        return Caller(self.principal, self.auth_error).require()


GqlInfo = Info[EmbanContext, None]


class InTransaction(FieldExtension):
    """Runs a mutation field in one metadata transaction: an error rolls back everything it
    wrote, its audit row included. Every mutation gets it (:func:`transactional_by_default`),
    as every REST non-GET route runs in one."""

    async def resolve_async(
        self, next_: AsyncExtensionResolver, source: Any, info: Info, **kwargs: Any
    ) -> Any:
        async with transaction():
            return await next_(source, info, **kwargs)


class OwnTransaction(FieldExtension):
    """The explicit opt-out (REST's ``transaction=False``): the service does work that must not
    run inside a metadata transaction (argon2 hashing, ClickHouse reads, ingest's group commit)
    and then writes in a short transaction of its own. ``why`` says which."""

    def __init__(self, why: str) -> None:
        self.why = why


class SameSiteOnly(FieldExtension):
    """Refuses a mutation sent from another site with ambient credentials (the session cookie),
    before it runs: 403 ``cross_site_request`` in ``extensions.reason`` (the rule is in
    :mod:`emban.auth.cross_site`; REST applies it to every unsafe method). A mutation over a
    live socket is checked against the upgrade request's headers, whose ``Origin`` the view has
    already checked too."""

    async def resolve_async(
        self, next_: AsyncExtensionResolver, source: Any, info: Info, **kwargs: Any
    ) -> Any:
        context = ctx(info)
        refuse_cross_site(context.request, context.runtime.settings)
        return await next_(source, info, **kwargs)


def same_site_only(mutation: T) -> T:
    """Give each field of the root ``Mutation`` type :class:`SameSiteOnly` (queries stay
    readable cross-site: a page on another site cannot read the answer without CORS, which
    this server never grants). GET never runs a mutation (Strawberry refuses it)."""
    for field in get_object_definition(mutation, strict=True).fields:
        if not any(isinstance(e, SameSiteOnly) for e in field.extensions):
            field.extensions.append(SameSiteOnly())
    return mutation


def transactional_by_default(mutation: T) -> T:
    """Give each field of the root ``Mutation`` type :class:`InTransaction`, unless it declares
    :class:`OwnTransaction`. Each field is one transaction, so in a document with several
    mutation fields the ones that succeeded keep their writes."""
    for field in get_object_definition(mutation, strict=True).fields:
        if not any(isinstance(e, InTransaction | OwnTransaction) for e in field.extensions):
            field.extensions.append(InTransaction())
    return mutation


def ctx(info: Any) -> EmbanContext:
    context: EmbanContext = info.context
    return context
