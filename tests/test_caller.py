"""The caller is resolved once per request by a middleware that both edges read, and every
GraphQL mutation is one metadata transaction unless it opts out."""

from __future__ import annotations

from typing import Any

import pytest
import strawberry
from strawberry.types.base import get_object_definition

from emban import caller
from emban.auth.principal import Principal
from emban.models import ApiKey, AuditLog
from emban.resolvers.context import (
    InTransaction,
    OwnTransaction,
    SameSiteOnly,
    transactional_by_default,
)
from emban.resolvers.schema import schema
from emban.services import audit
from emban.services.api_key_cache import ApiKeyCache
from tests.conftest import ClientFactory, bearer, create_key, register
from tests.gql_client import error_of, gql

ME = "{ me { org { name } } }"


@pytest.fixture
def authentications(monkeypatch: pytest.MonkeyPatch) -> list[str | None]:
    """The Authorization header of every credential resolution, in order."""
    seen: list[str | None] = []
    real = caller.accounts.authenticate

    async def counting(
        *,
        authorization: str | None,
        session_cookie: str | None,
        ip: str | None,
        api_keys: ApiKeyCache | None = None,
    ) -> Principal | None:
        seen.append(authorization)
        return await real(
            authorization=authorization, session_cookie=session_cookie, ip=ip, api_keys=api_keys
        )

    monkeypatch.setattr(caller.accounts, "authenticate", counting)
    return seen


async def test_each_edge_reads_the_caller_the_middleware_resolved(
    make_client: ClientFactory, authentications: list[str | None]
) -> None:
    owner = await make_client()
    await register(owner)
    key = await create_key(owner, "admin")
    anonymous = await make_client()
    authentications.clear()

    response = await anonymous.get("/v1/auth/me", headers=bearer(key))
    assert response.status == 200
    assert (await response.json())["org"]["name"] == "Acme"
    assert authentications == [f"Bearer {key}"]

    body = await gql(anonymous, ME, headers=bearer(key))
    assert body == {"data": {"me": {"org": {"name": "Acme"}}}}
    assert authentications == [f"Bearer {key}"] * 2

    # Pages that never read a caller cost no lookup.
    assert (await anonymous.get("/healthz", headers=bearer(key))).status == 200
    assert authentications == [f"Bearer {key}"] * 2

    # Bad credentials are kept, not raised, by the middleware: a route that needs a caller
    # answers 401 with their code, a public operation still runs.
    response = await anonymous.get("/v1/auth/me", headers=bearer("emb_nope"))
    assert response.status == 401
    assert (await response.json())["code"] == "invalid_api_key"
    error = await error_of(anonymous, ME, headers=bearer("emb_nope"))
    assert error["extensions"] == {"code": "UNAUTHENTICATED", "reason": "invalid_api_key"}
    body = await gql(anonymous, "{ plans { name } }", headers=bearer("emb_nope"))
    assert [p["name"] for p in body["data"]["plans"]] == ["free", "starter", "pro", "enterprise"]
    assert authentications == [f"Bearer {key}"] * 2 + ["Bearer emb_nope"] * 3


async def test_a_graphql_mutation_that_fails_after_writing_leaves_nothing(
    make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    owner = await make_client()
    await register(owner)
    audit_before = await AuditLog.all().count()

    async def failing_audit(*args: Any, **kwargs: Any) -> None:
        # The key row is already written when the audit row fails.
        assert await ApiKey.filter(label="doomed").count() == 1
        raise RuntimeError("audit store unavailable")

    monkeypatch.setattr(audit, "record", failing_audit)
    error = await error_of(
        owner, 'mutation { createApiKey(label: "doomed", scope: "ingest") { key } }'
    )
    assert error["message"] == "Unexpected error."
    assert error["path"] == ["createApiKey"]
    assert await ApiKey.filter(label="doomed").count() == 0
    assert await AuditLog.all().count() == audit_before


OPTED_OUT = {
    "register",
    "login",
    "accept_invite",
    "ingest_events",
    "auto_create_dashboard",
    "evaluate_alert",  # reads the engine, then writes its transitions in a short transaction
    "run_report",  # the run commits before its job is enqueued
}


def test_every_mutation_runs_in_a_transaction_unless_it_opts_out() -> None:
    fields = get_object_definition(schema.mutation, strict=True).fields
    assert len(fields) > 30
    for field in fields:
        kinds = [type(e) for e in field.extensions]
        # Every mutation also refuses cross-site callers (tests/auth/test_cross_site.py).
        assert kinds.count(SameSiteOnly) == 1, field.name
        if field.name in OPTED_OUT:
            assert kinds == [OwnTransaction, SameSiteOnly], field.name
            opt_out = field.extensions[0]
            assert isinstance(opt_out, OwnTransaction) and opt_out.why
        else:
            assert kinds.count(InTransaction) == 1, field.name
            assert OwnTransaction not in kinds, field.name


def test_a_new_mutation_gets_a_transaction_without_asking() -> None:
    @strawberry.type
    class Mutations:
        @strawberry.mutation
        async def plain(self) -> bool:
            return True

        @strawberry.mutation(extensions=[OwnTransaction("test")])
        async def own(self) -> bool:
            return True

    transactional_by_default(Mutations)
    transactional_by_default(Mutations)  # idempotent
    by_name = {
        f.name: [type(e) for e in f.extensions]
        for f in get_object_definition(Mutations, strict=True).fields
    }
    assert by_name == {"plain": [InTransaction], "own": [OwnTransaction]}
