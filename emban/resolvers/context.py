"""Typed GraphQL context: the runtime, the request, and the caller resolved once per request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web
from strawberry.extensions.field_extension import AsyncExtensionResolver, FieldExtension
from strawberry.types import Info
from strawberry.types.base import get_object_definition

from emban.auth.client_address import request_client_address
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
